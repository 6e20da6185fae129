package email_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/email"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

func marshal[T any](t testing.TB, c *platform.AvroCodec[T], v T) []byte {
	t.Helper()
	b, err := c.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Through real topics with four partitions: the worked case end to end, orders held for
// customers that arrive later (their registrations travel through the loop topic to the
// customers' partitions), and a restart that sends nothing twice.
func TestServiceOnBroker(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	cfg := email.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.AdminAddr = ""
	emailer := &recordingEmailer{}
	topic := func(s string) string { return env.Names.Topic(s) }

	start := func() (svc *email.Service, stop func()) {
		svc, err := email.New(context.Background(), cfg, email.WithEmailer(emailer))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		kafkatest.Eventually(t, 30*time.Second, "service ready", func() bool { return svc.Health.Ready() == nil })
		return svc, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
	}
	waitForEmails := func(n int) []email.Email {
		t.Helper()
		kafkatest.Eventually(t, 30*time.Second, fmt.Sprintf("%d emails", n), func() bool { return len(emailer.Sent()) >= n })
		return emailer.Sent()
	}

	svc, stop := start()
	env.Produce(t, topic(string(platform.TopicCustomers)), platform.CustomerKey(15), marshal(t, codecs.Customer, franz))
	env.Produce(t, topic(string(platform.TopicOrders)), "0", marshal(t, codecs.Order, order0))
	env.Produce(t, topic(string(platform.TopicPayments)), payment0.ID, marshal(t, codecs.Payment, payment0))

	sent := waitForEmails(1)
	if want := (email.Email{Order: order0, Payment: payment0, Customer: franz}); sent[0] != want {
		t.Fatalf("email %+v, want %+v", sent[0], want)
	}
	recs := env.Consume(t, topic(string(platform.TopicGold)), 30*time.Second, kafkatest.CountOf(1))
	checkEnriched(t, recs[0], domain.OrderEnriched{ID: "0", CustomerID: 15, CustomerLevel: "gold"})

	// Orders of customers that do not exist yet, spread over the partitions.
	const held = 6
	for i := 0; i < held; i++ {
		id := fmt.Sprintf("held-%d", i)
		o, p := order0, payment0
		o.ID, o.CustomerID = id, int64(100+i)
		p.ID, p.OrderID = "pay-"+id, id
		env.Produce(t, topic(string(platform.TopicOrders)), o.ID, marshal(t, codecs.Order, o))
		env.Produce(t, topic(string(platform.TopicPayments)), p.ID, marshal(t, codecs.Payment, p))
	}
	// Let the holds register before their customers arrive.
	time.Sleep(500 * time.Millisecond)
	if n := len(emailer.Sent()); n != 1 {
		t.Fatalf("%d emails before the customers exist, want 1", n)
	}
	for i := 0; i < held; i++ {
		c := franz
		c.ID, c.Level = int64(100+i), "silver"
		env.Produce(t, topic(string(platform.TopicCustomers)), platform.CustomerKey(c.ID), marshal(t, codecs.Customer, c))
	}
	waitForEmails(1 + held)
	silver := env.Consume(t, topic(string(platform.TopicSilver)), 30*time.Second, kafkatest.CountOf(held))
	for _, r := range silver {
		var i int
		if _, err := fmt.Sscanf(string(r.Key), "held-%d", &i); err != nil {
			t.Fatalf("silver record key %q", r.Key)
		}
		checkEnriched(t, r, domain.OrderEnriched{ID: string(r.Key), CustomerID: int64(100 + i), CustomerLevel: "silver"})
	}
	if got := svc.Counters.EmailsSent.Load(); got != 1+held {
		t.Fatalf("emails counted %d, want %d", got, 1+held)
	}
	stop()

	// Restart on the same state: order "0" turning VALIDATED sends nothing, a new order does.
	_, stop = start()
	defer stop()
	validated := order0
	validated.State = domain.OrderValidated
	env.Produce(t, topic(string(platform.TopicOrders)), "0", marshal(t, codecs.Order, validated))
	o1, p1 := order0, payment0
	o1.ID, p1.ID, p1.OrderID = "1", "Payment:1", "1"
	env.Produce(t, topic(string(platform.TopicOrders)), "1", marshal(t, codecs.Order, o1))
	env.Produce(t, topic(string(platform.TopicPayments)), p1.ID, marshal(t, codecs.Payment, p1))
	sent = waitForEmails(2 + held)
	time.Sleep(300 * time.Millisecond) // let a duplicate show up before counting
	if sent = emailer.Sent(); len(sent) != 2+held || sent[len(sent)-1].Order.ID != "1" {
		t.Fatalf("after restart: %d emails, last %+v; want %d, the last for order 1", len(sent), sent[len(sent)-1], 2+held)
	}
	gold := env.Consume(t, topic(string(platform.TopicGold)), 30*time.Second, kafkatest.CountOf(2))
	if len(gold) != 2 {
		t.Fatalf("%d gold records, want 2", len(gold))
	}
}

func checkEnriched(t *testing.T, r *kgo.Record, want domain.OrderEnriched) {
	t.Helper()
	got, err := codecs.OrderEnriched.Unmarshal(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Key) != want.ID || got != want {
		t.Fatalf("enriched %q %+v, want %+v", r.Key, got, want)
	}
	if p := platform.PartitionFor(want.ID, 4); r.Partition != p {
		t.Fatalf("enriched %s on partition %d, want %d", want.ID, r.Partition, p)
	}
}

func TestBinaryHelpAndRunsAgainstKafkaBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := kafkatest.BuildBinary(t, "./cmd/email")
	help := kafkatest.StartBinary(t, bin, nil, "--help")
	if code := help.Wait(30 * time.Second); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, flag := range []string{"-brokers", "-state-dir", "-admin-addr", "-emailer", "-smtp-addr", "-smtp-from",
		"-hold-timeout", "-join-retention", "-dedup-retention", "-sweep-interval", "SMTP_PASSWORD", ":9104"} {
		if !strings.Contains(help.Output(), flag) {
			t.Errorf("--help does not list %s:\n%s", flag, help.Output())
		}
	}

	env := kafkatest.New(t, kafkatest.Options{})
	proc := kafkatest.StartBinary(t, bin, []string{
		"KAFKA_BROKERS=" + strings.Join(env.Brokers, ","),
		"TOPIC_PREFIX=" + env.Names.Prefix,
		"STATE_DIR=" + t.TempDir(),
		"ADMIN_ADDR=127.0.0.1:0",
	})
	topic := func(s string) string { return env.Names.Topic(s) }
	env.Produce(t, topic(string(platform.TopicCustomers)), platform.CustomerKey(15), marshal(t, codecs.Customer, franz))
	env.Produce(t, topic(string(platform.TopicOrders)), "0", marshal(t, codecs.Order, order0))
	env.Produce(t, topic(string(platform.TopicPayments)), payment0.ID, marshal(t, codecs.Payment, payment0))
	recs := env.Consume(t, topic(string(platform.TopicGold)), 60*time.Second, kafkatest.CountOf(1))
	checkEnriched(t, recs[0], domain.OrderEnriched{ID: "0", CustomerID: 15, CustomerLevel: "gold"})
	kafkatest.Eventually(t, 30*time.Second, "the log emailer's line", func() bool {
		out := proc.Output()
		return strings.Contains(out, `"msg":"email sent"`) && strings.Contains(out, "Payment:1234") &&
			strings.Contains(out, "frans@thedarkside.net")
	})
}
