package platform_test

import (
	"context"
	"fmt"
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

// ownNamespace provisions a fresh namespace on b, for tests that need kfake's controls and so
// a broker of their own rather than the shared harness broker.
func ownNamespace(t *testing.T, b *broker.Broker, name string) (platform.Config, *kgo.Client) {
	t.Helper()
	cfg := platform.DefaultConfig()
	cfg.Brokers = b.Addrs()
	cfg.Partitions = 4
	cfg.Replication = 1
	cfg.StateDir = t.TempDir()
	cfg.TopicPrefix = fmt.Sprintf("%s%d-", name, time.Now().UnixNano())
	cfg.ClientID = "test"
	cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := platform.Provision(ctx, kadm.NewClient(cl), cfg.Names(), cfg.Partitions, 1); err != nil {
		t.Fatal(err)
	}
	return cfg, cl
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
			cfg, _ := ownNamespace(t, b, "storm")
			names := cfg.Names()
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
			rec := &sessionCounter{}
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
			gens := rec.generations()
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
			cfg, cl := ownNamespace(t, b, "later")
			names := cfg.Names()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
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
			rec := &sessionCounter{}
			g.ConsumerGroupBuilder = rec.builder(g.SaramaConsumerGroupBuilder())
			p, err := g.NewProcessor(graph)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- p.Run(context.Background()) }()
			deadline := time.Now().Add(30 * time.Second)
			for len(rec.generations()) < 1 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			// End session 1 without an error: the next heartbeat answers REBALANCE_IN_PROGRESS.
			cluster.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
				resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
				resp.ErrorCode = kerr.RebalanceInProgress.Code
				return resp, nil, true
			})
			for len(rec.generations()) < 2 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := len(rec.generations()); n < 2 {
				t.Fatalf("only %d sessions", n)
			}
			time.Sleep(500 * time.Millisecond)
			rec2 := &kgo.Record{Topic: string(in), Key: []byte("poison"), Value: []byte("x")}
			if err := cl.ProduceSync(ctx, rec2).FirstErr(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				t.Logf("sessions %v; Run returned: %.300v", rec.generations(), err)
				if err == nil {
					t.Fatal("processor ended without an error")
				}
			case <-time.After(90 * time.Second):
				t.Fatalf("sessions %v: processor kept running after a failure in a later session", rec.generations())
			}
		})
	}
}
