package platform

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/broker"
)

// A record emitted after Close fails its promise (sarama's producer panics), so an emitter
// stopped under a callback learns it instead of hanging.
func TestFranzProducerAfterClose(t *testing.T) {
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 4, 1, nil, "review-after-close"); err != nil {
		t.Fatal(err)
	}
	p, err := newFranzProducer(Config{Brokers: b.Addrs(), ClientID: "review"}, Hasher())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Emit("review-after-close", "k", []byte("v")).Then(func(error) {}); err == nil {
		t.Fatal("nil promise")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	p.Emit("review-after-close", "late", []byte("v")).ThenWithMessage(func(_ *sarama.ProducerMessage, err error) { done <- err })
	select {
	case err := <-done:
		t.Logf("emit after Close: promise failed with %v", err)
		if err == nil {
			t.Error("emit after Close reported written")
		}
	case <-time.After(10 * time.Second):
		t.Error("emit after Close: promise never finished (an EmitSync would hang)")
	}
}
