// Package e2e drives the reference system's end-to-end cases over HTTP against every service,
// started together on the harness broker (a Testcontainers Kafka when Docker is reachable,
// else the in-process broker).
package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ecosystem/ecotest"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

// start runs the whole ecosystem on a fresh namespace of the harness broker and returns the
// REST base URL once every service is ready.
func start(t *testing.T, env *kafkatest.Env) string {
	t.Helper()
	return ecotest.Start(t, env).URL
}

func setStock(t *testing.T, env *kafkatest.Env, stock map[domain.Product]int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sampledata.SetStock(ctx, env.Client, env.Names, stock); err != nil {
		t.Fatal(err)
	}
}

func postAndAwait(t *testing.T, base string, o domain.Order) domain.Order {
	t.Helper()
	return ecotest.PostAndAwait(t, base, o)
}

func getOrder(t *testing.T, url string, want int) domain.Order {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	var o domain.Order
	if want == http.StatusOK {
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return o
}

func referenceOrder(i int) domain.Order {
	return domain.Order{ID: fmt.Sprint(i), CustomerID: 2, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1.0}
}

// The reference's end-to-end test: with stock, ten orders come back VALIDATED; without, FAILED.
func TestTenOrdersValidatedOrFailedByStock(t *testing.T) {
	cases := []struct {
		name    string
		jumpers int32
		want    domain.OrderState
	}{
		{"stock 10 validates", 10, domain.OrderValidated},
		{"stock 0 fails", 0, domain.OrderFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := kafkatest.New(t, kafkatest.Options{PreferDocker: true})
			setStock(t, env, map[domain.Product]int32{domain.Underpants: 75, domain.Jumpers: c.jumpers})
			base := start(t, env)
			for i := 0; i < 10; i++ {
				posted := referenceOrder(i)
				got := postAndAwait(t, base, posted)
				want := posted
				want.State = c.want
				if got != want {
					t.Fatalf("order %d came back %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

func TestMissingOrderTimesOut(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{PreferDocker: true})
	base := start(t, env)
	getOrder(t, base+"/v1/orders/1?timeout=100", http.StatusGatewayTimeout)
}

// An order posted to one Orders instance can be read through another.
func TestTwoOrdersInstances(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{PreferDocker: true})
	setStock(t, env, map[domain.Product]int32{domain.Jumpers: 100})
	base := start(t, env)

	cfg := orders.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.Kafka.StateDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Aggregator = false // the ecosystem runs it already
	second, err := orders.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	kafkatest.Eventually(t, 60*time.Second, "second instance ready", func() bool { return second.Health.Ready() == nil })
	secondURL := "http://" + second.Addr()

	for i := 0; i < 10; i++ {
		posted := referenceOrder(100 + i)
		via, other := base, secondURL
		if i%2 == 1 {
			via, other = secondURL, base
		}
		got := postAndAwait(t, via, posted)
		if got.State != domain.OrderValidated {
			t.Fatalf("order %s: %s", posted.ID, got.State)
		}
		if read := getOrder(t, other+"/v1/orders/"+posted.ID+"/validated?timeout=20000", http.StatusOK); read != got {
			t.Fatalf("read through the other instance: %+v, want %+v", read, got)
		}
	}
}

// Sample data (stock and customers) and orders with payments: every order is decided, and
// each paid order is enriched once onto its customer's level topic by the email service.
func TestSampleDataRunWithEmail(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{PreferDocker: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	setStock(t, env, sampledata.DefaultStock())
	customers := sampledata.SampleCustomers()
	if err := sampledata.ProduceCustomers(ctx, env.Client, env.Names, customers); err != nil {
		t.Fatal(err)
	}
	base := start(t, env)

	levels := map[int64]string{}
	for _, c := range customers {
		levels[c.ID] = c.Level
	}
	codecs := platform.StaticCodecs()
	const n = 6
	for i := 0; i < n; i++ {
		o := domain.Order{ID: fmt.Sprintf("sample-%d", i), CustomerID: int64(i % 6), State: domain.OrderCreated, Product: domain.Underpants, Quantity: 1, Price: 1}
		got := postAndAwait(t, base, o)
		if got.State != domain.OrderValidated && got.State != domain.OrderFailed {
			t.Fatalf("order %s undecided: %+v", o.ID, got)
		}
		pay, _ := codecs.Payment.Marshal(domain.Payment{ID: "Payment:" + o.ID, OrderID: o.ID, Ccy: "EUR", Amount: 1})
		env.Produce(t, env.Names.Topic(string(platform.TopicPayments)), "Payment:"+o.ID, pay)
	}

	// Every paid order shows up exactly once across the level topics, on its customer's level.
	readLevels := func() (map[string]string, []string) {
		seen := map[string]string{}
		var problems []string
		for _, level := range []string{"platinum", "gold", "silver", "bronze"} {
			for _, r := range readAll(t, env, env.Names.Topic(level)) {
				e, err := codecs.OrderEnriched.Unmarshal(r.Value)
				if err != nil {
					t.Fatal(err)
				}
				if prev, dup := seen[e.ID]; dup {
					problems = append(problems, fmt.Sprintf("order %s enriched twice (%s and %s)", e.ID, prev, level))
				}
				seen[e.ID] = level
				if want := levels[e.CustomerID]; want != level {
					problems = append(problems, fmt.Sprintf("order %s of a %s customer went to %s", e.ID, want, level))
				}
			}
		}
		return seen, problems
	}
	kafkatest.Eventually(t, 30*time.Second, "every order enriched", func() bool {
		seen, _ := readLevels()
		return len(seen) >= n
	})
	time.Sleep(time.Second) // a duplicate would show up by now
	seen, problems := readLevels()
	if len(problems) > 0 || len(seen) != n {
		t.Fatalf("%d of %d orders enriched %v; problems: %v", len(seen), n, seen, problems)
	}
}

// readAll returns every record topic holds now.
func readAll(t *testing.T, env *kafkatest.Env, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := env.Admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	return env.Consume(t, topic, 10*time.Second, kafkatest.CountOf(total))
}

// With a schema registry every service registers and reads the registry's ids; an order still
// goes all the way to VALIDATED, and its record carries a registry id.
func TestSchemaRegistryMode(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	env := kafkatest.New(t, kafkatest.Options{PreferDocker: true})
	env.Config.SchemaRegistryURL = reg.URL()
	setStock(t, env, map[domain.Product]int32{domain.Jumpers: 10})
	base := start(t, env)

	got := postAndAwait(t, base, referenceOrder(7))
	if got.State != domain.OrderValidated {
		t.Fatalf("order in registry mode: %+v", got)
	}
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := client.SchemaByVersion(context.Background(), env.Names.Topic(string(platform.TopicOrders))+"-value", -1)
	if err != nil {
		t.Fatalf("orders-value not registered: %v", err)
	}
	recs := readAll(t, env, env.Names.Topic(string(platform.TopicOrders)))
	for _, r := range recs {
		if id := int(binary.BigEndian.Uint32(r.Value[1:5])); id != ss.ID {
			t.Fatalf("record %s carries schema id %d, registry says %d", r.Key, id, ss.ID)
		}
	}
}
