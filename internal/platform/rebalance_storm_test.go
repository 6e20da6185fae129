package platform_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordersys/ecosystem/internal/broker"
	"github.com/ordersys/ecosystem/internal/platform"
)

// genRecorder sees every session's generation.
type genRecorder struct {
	mu   sync.Mutex
	gens []int32
}

func (r *genRecorder) builder(base goka.ConsumerGroupBuilder) goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := base(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		return &genGroup{ConsumerGroup: cg, r: r}, nil
	}
}

type genGroup struct {
	sarama.ConsumerGroup
	r *genRecorder
}

func (g *genGroup) Consume(ctx context.Context, topics []string, h sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, &genHandler{ConsumerGroupHandler: h, r: g.r})
}

type genHandler struct {
	sarama.ConsumerGroupHandler
	r *genRecorder
}

func (h *genHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.r.mu.Lock()
	h.r.gens = append(h.r.gens, s.GenerationID())
	h.r.mu.Unlock()
	return h.ConsumerGroupHandler.Setup(s)
}

func (r *genRecorder) snapshot() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int32(nil), r.gens...)
}

// One partition whose consumer cannot start (ListOffsets answers NOT_LEADER_OR_FOLLOWER, as for
// a crashed leader not fenced yet) ends every session right after Setup, and the group
// leader's rejoin starts a new generation: every member loses all its partitions each time.
// goka's 5 s pause used to space the rejoins; continuousGroup backs off instead (found by
// review: 39 generations in 4 s before the backoff).
func TestAPartitionThatCannotStartDoesNotStormTheGroup(t *testing.T) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cluster := b.Cluster()

	for _, variant := range []string{"continuousGroup", "goka's plain sarama group (before)"} {
		t.Run(variant, func(t *testing.T) {
			cfg := platform.DefaultConfig()
			cfg.Brokers = b.Addrs()
			cfg.Partitions = 4
			cfg.Replication = 1
			cfg.StateDir = t.TempDir()
			cfg.TopicPrefix = fmt.Sprintf("storm%d-", time.Now().UnixNano())
			cfg.ClientID = "review"
			names := cfg.Names()
			cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := platform.Provision(ctx, kadm.NewClient(cl), names, cfg.Partitions, 1); err != nil {
				t.Fatal(err)
			}
			topic := string(names.Stream(platform.TopicOrders))

			var failing atomic.Bool
			cluster.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				r := req.(*kmsg.ListOffsetsRequest)
				if !failing.Load() || len(r.Topics) != 1 || r.Topics[0].Topic != topic ||
					len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Partition != 0 {
					return nil, nil, false
				}
				resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
				for _, rt := range r.Topics {
					st := kmsg.NewListOffsetsResponseTopic()
					st.Topic = rt.Topic
					for _, rp := range rt.Partitions {
						sp := kmsg.NewListOffsetsResponseTopicPartition()
						sp.Partition = rp.Partition
						sp.ErrorCode = kerr.NotLeaderForPartition.Code
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})

			g := platform.NewGoka(cfg)
			rec := &genRecorder{}
			if variant == "continuousGroup" {
				g.ConsumerGroupBuilder = rec.builder(g.SaramaConsumerGroupBuilder())
			} else {
				g.ConsumerGroupBuilder = rec.builder(func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
					c := platform.SaramaConfig(clientID)
					return sarama.NewConsumerGroup(brokers, group, c)
				})
			}
			graph := goka.DefineGroup(goka.Group(cfg.TopicPrefix+"storm"), goka.Input(goka.Stream(topic), new(codec.Bytes), func(goka.Context, any) {}))
			p, err := g.NewProcessor(graph)
			if err != nil {
				t.Fatal(err)
			}
			failing.Store(true)
			pctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(pctx) }()
			const window = 4 * time.Second
			time.Sleep(window)
			failing.Store(false)
			gens := rec.snapshot()
			stop()
			<-done
			t.Logf("%s: %d sessions in %v while one partition could not start; generations %v", variant, len(gens), window, gens)
			if len(gens) > 5 {
				t.Errorf("%d sessions (%d generations) in %v: rejoins are not backed off", len(gens), len(distinct(gens)), window)
			}
		})
	}
}

func distinct(xs []int32) map[int32]bool {
	m := map[int32]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// An asynchronous failure (a franz-go promise failing a 2 MiB emit)
// in a later session, after continuousGroup started the next session itself, still ends the
// processor with an error, and so does ctx.Fail.
func TestFailureInALaterSessionStillStopsTheProcessor(t *testing.T) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cluster := b.Cluster()
	for _, mode := range []string{"emit fails", "ctx.Fail"} {
		t.Run(mode, func(t *testing.T) {
			cfg := platform.DefaultConfig()
			cfg.Brokers = b.Addrs()
			cfg.Partitions = 4
			cfg.Replication = 1
			cfg.StateDir = t.TempDir()
			cfg.TopicPrefix = fmt.Sprintf("later%d-", time.Now().UnixNano())
			cfg.ClientID = "review"
			names := cfg.Names()
			cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := platform.Provision(ctx, kadm.NewClient(cl), names, cfg.Partitions, 1); err != nil {
				t.Fatal(err)
			}
			in := names.Stream(platform.TopicOrders)
			out := names.Stream(platform.TopicDeadLetters)
			graph := goka.DefineGroup(goka.Group(cfg.TopicPrefix+"later"),
				goka.Input(in, new(codec.Bytes), func(ctx goka.Context, _ any) {
					if ctx.Key() != "poison" {
						return
					}
					if mode == "ctx.Fail" {
						ctx.Fail(fmt.Errorf("refused"))
					}
					ctx.Emit(out, "big", make([]byte, 2<<20))
				}),
				goka.Output(out, new(codec.Bytes)))
			g := platform.NewGoka(cfg)
			rec := &genRecorder{}
			g.ConsumerGroupBuilder = rec.builder(g.SaramaConsumerGroupBuilder())
			p, err := g.NewProcessor(graph)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- p.Run(context.Background()) }()
			deadline := time.Now().Add(30 * time.Second)
			for len(rec.snapshot()) < 1 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			// End session 1 without an error: the next heartbeat answers REBALANCE_IN_PROGRESS.
			cluster.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
				resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
				resp.ErrorCode = kerr.RebalanceInProgress.Code
				return resp, nil, true
			})
			for len(rec.snapshot()) < 2 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := len(rec.snapshot()); n < 2 {
				t.Fatalf("only %d sessions", n)
			}
			time.Sleep(500 * time.Millisecond)
			rec2 := &kgo.Record{Topic: string(in), Key: []byte("poison"), Value: []byte("x")}
			if err := cl.ProduceSync(ctx, rec2).FirstErr(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				t.Logf("sessions %v; Run returned: %.300v", rec.snapshot(), err)
				if err == nil {
					t.Fatal("processor ended without an error")
				}
			case <-time.After(90 * time.Second):
				t.Fatalf("sessions %v: processor kept running after a failure in a later session", rec.snapshot())
			}
		})
	}
}
