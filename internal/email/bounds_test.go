package email_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/email"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// 10,000 orders with 240-byte ids naming one customer that does not exist once grew that
// customer's list of waiting orders past Kafka's 1 MiB record limit, and the processor
// crash-looped: nobody's order was emailed any more. Now the list stays within its budget,
// other customers' orders are emailed meanwhile, and when the customer arrives every one of
// its orders is enriched — listed ones at once, the rest by the sweep.
func TestOneCustomerFloodOnBroker(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	cfg := email.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.AdminAddr = ""
	cfg.SweepInterval = time.Second
	emailer := &recordingEmailer{}
	svc, err := email.New(context.Background(), cfg, email.WithEmailer(emailer))
	if err != nil {
		t.Fatal(err)
	}
	stop := kafkatest.StartService(t, svc, svc.Health.Ready)
	defer stop()
	topic := func(s string) string { return env.Names.Topic(s) }
	env.Produce(t, topic(string(platform.TopicCustomers)), platform.CustomerKey(franz.ID), marshal(t, codecs.Customer, franz))

	const flood, missing = 10000, int64(66)
	long := strings.Repeat("x", 235)
	var recs []*kgo.Record
	known := 0
	for i := range flood {
		o := order0
		o.ID, o.CustomerID = fmt.Sprintf("%s%05d", long, i), missing
		recs = append(recs, &kgo.Record{Topic: topic(string(platform.TopicOrders)), Key: []byte(o.ID), Value: marshal(t, codecs.Order, o)})
		if i%500 == 0 {
			k, p := order0, payment0
			k.ID = fmt.Sprintf("known-%d", i)
			p.ID, p.OrderID = "pay-"+k.ID, k.ID
			recs = append(recs,
				&kgo.Record{Topic: topic(string(platform.TopicOrders)), Key: []byte(k.ID), Value: marshal(t, codecs.Order, k)},
				&kgo.Record{Topic: topic(string(platform.TopicPayments)), Key: []byte(p.ID), Value: marshal(t, codecs.Payment, p)})
			known++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for rest := recs; len(rest) > 0; {
		n := min(len(rest), 500)
		if err := env.Client.ProduceSync(ctx, rest[:n]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	kafkatest.Eventually(t, 2*time.Minute, fmt.Sprintf("%d emails of the known customer", known),
		func() bool { return len(emailer.Sent()) >= known })
	group := string(env.Names.Group(platform.GroupEmail))
	env.AwaitCaughtUp(t, 2*time.Minute, group, topic(string(platform.TopicOrders)), topic(string(platform.TopicPayments)))
	env.AwaitCaughtUp(t, 2*time.Minute, group, env.Names.Topic(platform.LoopTopic(platform.GroupEmail)))

	c := franz
	c.ID, c.Level = missing, "silver"
	env.Produce(t, topic(string(platform.TopicCustomers)), platform.CustomerKey(missing), marshal(t, codecs.Customer, c))
	silver := env.Consume(t, topic(string(platform.TopicSilver)), 2*time.Minute, kafkatest.CountOf(flood))
	ids := map[string]bool{}
	for _, r := range silver {
		ids[string(r.Key)] = true
	}
	if len(ids) != flood {
		t.Fatalf("%d distinct orders enriched for the customer that arrived, want %d", len(ids), flood)
	}
	if unlisted := svc.Counters.HoldsUnlisted.Load(); unlisted == 0 {
		t.Fatal("no order was left off the full list: the budget was never reached")
	}

	largest, written := 0, 0
	for _, r := range env.ConsumeToEnd(t, string(env.Names.Group(platform.GroupEmail))+"-table", 2*time.Minute) {
		written++
		largest = max(largest, len(r.Value))
	}
	if largest > 64<<10+4096 {
		t.Fatalf("largest table record %d bytes, want the list's budget of 64 KiB at most", largest)
	}
	t.Logf("%d orders left off the list; %d table records, the largest %d bytes",
		svc.Counters.HoldsUnlisted.Load(), written, largest)
}
