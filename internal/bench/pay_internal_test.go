package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Payments are produced without waiting, and kgo's Flush reports only its context's error, so
// a failed payment must be counted by pay's callback for the phase to see it (found by a
// reviewer: a step whose every payment failed passed with 0 errors). Here the payments topic
// does not exist and the broker does not create topics.
func TestFailedPaymentsAreCounted(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordDeliveryTimeout(2*time.Second), kgo.UnknownTopicRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r := &runner{cfg: Config{Logs: &lockedWriter{w: &logs}}}
	svc := &services{payer: cl, codecs: platform.StaticCodecs(), payments: "payments-that-do-not-exist"}
	defer r.stopServices(svc)
	before := r.payFailures.Load()
	for i := range 5 {
		r.pay(context.Background(), svc, benchOrder("o-"+string(rune('a'+i)), i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed, err := r.paymentsSettled(ctx, svc, before)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 5 {
		t.Fatalf("%d payments counted as failed, want 5; log:\n%s", failed, logs.String())
	}
}
