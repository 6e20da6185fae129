package platform_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// sessionCounter sees every Consume call goka makes and every session sarama starts under it,
// with its generation.
type sessionCounter struct {
	consumes, setups atomic.Int32

	mu   sync.Mutex
	gens []int32
}

// generations lists the generations of the sessions so far, in order.
func (c *sessionCounter) generations() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int32(nil), c.gens...)
}

func (c *sessionCounter) builder(base goka.ConsumerGroupBuilder) goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := base(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		return &countedGroup{ConsumerGroup: cg, c: c}, nil
	}
}

type countedGroup struct {
	sarama.ConsumerGroup
	c *sessionCounter
}

func (g *countedGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	g.c.consumes.Add(1)
	return g.ConsumerGroup.Consume(ctx, topics, &countedHandler{ConsumerGroupHandler: h, c: g.c})
}

type countedHandler struct {
	sarama.ConsumerGroupHandler
	c *sessionCounter
}

func (h *countedHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.c.setups.Add(1)
	h.c.mu.Lock()
	h.c.gens = append(h.c.gens, s.GenerationID())
	h.c.mu.Unlock()
	return h.ConsumerGroupHandler.Setup(s)
}

// seenKeys records the keys a group's processors handled.
type seenKeys struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (s *seenKeys) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k] = true
}

func (s *seenKeys) has(keys []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if !s.keys[k] {
			return false
		}
	}
	return true
}

// A rebalance must not send goka back through its 5 s pause: the processor's one Consume call
// carries every session, and the processor keeps handling records across members joining and
// leaving. Before continuousGroup, goka called Consume once per session.
func TestRebalanceStaysInOneConsumeCall(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	topic := env.Names.Stream(platform.TopicOrders)
	group := goka.Group(env.Config.TopicPrefix + "rebalance")
	seen := &seenKeys{keys: map[string]bool{}}
	graph := goka.DefineGroup(group, goka.Input(topic, new(codec.Bytes), func(ctx goka.Context, _ any) {
		seen.add(ctx.Key())
	}))
	produceBatch := func(name string) {
		t.Helper()
		var keys []string
		for i := range 40 { // over every partition
			k := fmt.Sprintf("%s-%d", name, i)
			env.Produce(t, string(topic), k, []byte("x"))
			keys = append(keys, k)
		}
		kafkatest.Eventually(t, 60*time.Second, "records of "+name+" handled", func() bool { return seen.has(keys) })
	}

	first := env.Goka(t)
	counter := &sessionCounter{}
	first.ConsumerGroupBuilder = counter.builder(first.SaramaConsumerGroupBuilder())
	a, err := first.NewProcessor(graph)
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.RunProcessor(t, a)
	produceBatch("alone")

	b, err := env.Goka(t).NewProcessor(graph)
	if err != nil {
		t.Fatal(err)
	}
	bctx, stopB := context.WithCancel(context.Background())
	bdone := make(chan error, 1)
	go func() { bdone <- b.Run(bctx) }()
	kafkatest.Eventually(t, 60*time.Second, "a second session after the join", func() bool { return counter.setups.Load() >= 2 })
	produceBatch("together")

	stopB()
	if err := <-bdone; err != nil {
		t.Fatalf("second member: %v", err)
	}
	kafkatest.Eventually(t, 60*time.Second, "a third session after the leave", func() bool { return counter.setups.Load() >= 3 })
	produceBatch("alone-again")

	if n := counter.consumes.Load(); n != 1 {
		t.Fatalf("goka called Consume %d times over %d sessions; want one call (no rebalance pause)", n, counter.setups.Load())
	}
}

// A processing error still ends the processor: only a session ending without an error starts
// the next one.
func TestProcessingErrorStillStopsTheProcessor(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	topic := env.Names.Stream(platform.TopicOrders)
	graph := goka.DefineGroup(goka.Group(env.Config.TopicPrefix+"failing"), goka.Input(topic, new(codec.Bytes), func(ctx goka.Context, _ any) {
		if ctx.Key() == "poison" {
			ctx.Fail(errors.New("refused"))
		}
	}))
	p, err := env.Goka(t).NewProcessor(graph)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	env.Produce(t, string(topic), "poison", []byte("x"))
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("processor ended without an error after its callback failed")
		}
	case <-time.After(90 * time.Second):
		t.Fatal("processor kept running after its callback failed")
	}
}
