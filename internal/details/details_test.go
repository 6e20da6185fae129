package details_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/details"
	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

var codecs = platform.StaticCodecs()

func order(id string, qty int32, price float64) domain.Order {
	return domain.Order{ID: id, CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: qty, Price: price}
}

func encode(t testing.TB, o domain.Order) []byte {
	t.Helper()
	b, err := codecs.Order.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name  string
		order domain.Order
		want  domain.ValidationResult
	}{
		{"valid", order("1", 1, 1.0), domain.Pass},
		{"quantity zero", order("2", 0, 1.0), domain.Pass},
		{"price zero", order("3", 1, 0), domain.Pass},
		{"negative quantity", order("4", -1, 1.0), domain.Fail},
		{"negative price", order("5", 1, -0.01), domain.Fail},
		{"missing product", domain.Order{ID: "6", State: domain.OrderCreated, Quantity: 1, Price: 1}, domain.Fail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := details.Check(c.order); got != c.want {
				t.Fatalf("Check = %s, want %s", got, c.want)
			}
		})
	}
}

func TestProcessorEmitsOneVerdictPerCreatedOrder(t *testing.T) {
	tt := kafkatest.StartTester(t, details.Graph(platform.Names{}, codecs))

	verdicts := tt.NewQueueTracker(string(platform.TopicOrderValidations))
	dead := tt.NewQueueTracker(string(platform.TopicDeadLetters))

	validated := order("9", 1, 1)
	validated.State = domain.OrderValidated
	inputs := []struct {
		key  string
		data []byte
		want domain.ValidationResult // "" means no verdict
	}{
		{"1", encode(t, order("1", 1, 1)), domain.Pass},
		{"2", encode(t, order("2", -1, 1)), domain.Fail},
		{"3", encode(t, order("3", 1, -5)), domain.Fail},
		{"9", encode(t, validated), ""},
		{"1", encode(t, order("1", 1, 1)), domain.Pass}, // redelivered: the same verdict again
	}
	for _, in := range inputs {
		tt.Consume(string(platform.TopicOrders), in.key, in.data)
		key, value, ok := verdicts.Next()
		if in.want == "" {
			if ok {
				t.Fatalf("order %s (not CREATED) got verdict %v", in.key, value)
			}
			continue
		}
		if !ok {
			t.Fatalf("no verdict for order %s", in.key)
		}
		v := value.(domain.OrderValidation)
		if key != in.key || v.OrderID != in.key || v.CheckType != domain.OrderDetailsCheck || v.ValidationResult != in.want {
			t.Fatalf("order %s: verdict %s %+v, want %s", in.key, key, v, in.want)
		}
	}

	// Garbage goes to the dead-letter topic with its reason, and processing continues.
	tt.Consume(string(platform.TopicOrders), "junk", []byte("not avro"))
	key, value, ok := dead.Next()
	if !ok || key != "junk" || string(value.([]byte)) != "not avro" {
		t.Fatalf("dead letter = %q %v %v", key, value, ok)
	}
	tt.Consume(string(platform.TopicOrders), "10", encode(t, order("10", 2, 2)))
	if _, _, ok := verdicts.Next(); !ok {
		t.Fatal("no verdict after a poison record")
	}
}

// Through real topics with several partitions: verdicts, the dead-letter topic, and a restart
// that does not validate answered orders again.
func TestServiceOnBroker(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	cfg := details.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.AdminAddr = ""
	orders := env.Names.Topic(string(platform.TopicOrders))
	validations := env.Names.Topic(string(platform.TopicOrderValidations))

	start := func() (stop func()) {
		svc, err := details.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return kafkatest.StartService(t, svc, svc.Health.Ready)
	}

	stop := start()
	env.Produce(t, orders, "junk", []byte{0, 0, 0, 0})
	want := map[string]domain.ValidationResult{}
	for i := 0; i < 20; i++ {
		id := string(rune('a' + i))
		qty := int32(1)
		if i%3 == 0 {
			qty = -1
		}
		env.Produce(t, orders, id, encode(t, order(id, qty, 1)))
		want[id] = details.Check(order(id, qty, 1))
	}
	recs := env.Consume(t, validations, 30*time.Second, kafkatest.CountOf(20))
	checkVerdicts(t, recs, want)
	dead := env.Consume(t, env.Names.Topic(string(platform.TopicDeadLetters)), 30*time.Second, kafkatest.CountOf(1))
	if reason := kafkatest.Header(dead[0], platform.HeaderDLQError); !strings.Contains(reason, "too short") {
		t.Fatalf("dead letter reason %q", reason)
	}
	stop()

	// Restart: committed offsets mean no order is validated twice; a new order still is.
	stop = start()
	defer stop()
	env.Produce(t, orders, "z", encode(t, order("z", 1, 1)))
	want["z"] = domain.Pass
	time.Sleep(time.Second) // let any duplicate verdict show up before counting
	recs = env.Consume(t, validations, 30*time.Second, kafkatest.CountOf(21))
	if len(recs) != 21 {
		t.Fatalf("%d verdicts after restart, want 21 (no re-validation)", len(recs))
	}
	checkVerdicts(t, recs, want)
}

func checkVerdicts(t *testing.T, recs []*kgo.Record, want map[string]domain.ValidationResult) {
	t.Helper()
	for _, r := range recs {
		v, err := codecs.OrderValidation.Unmarshal(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != v.OrderID || v.ValidationResult != want[v.OrderID] || v.CheckType != domain.OrderDetailsCheck {
			t.Errorf("verdict %s: %+v, want %s", r.Key, v, want[v.OrderID])
		}
		if r.Partition != platform.PartitionFor(string(r.Key), 4) {
			t.Errorf("verdict %s on partition %d, want %d", r.Key, r.Partition, platform.PartitionFor(string(r.Key), 4))
		}
	}
}

func TestBinaryHelpAndRunsAgainstKafkaBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := kafkatest.BuildBinary(t, "./cmd/details")
	kafkatest.CheckHelp(t, bin, "-brokers", "-state-dir", "-schema-registry", "-admin-addr", "-partitions")

	env := kafkatest.New(t, kafkatest.Options{})
	kafkatest.StartOnEnv(t, bin, env)
	env.Produce(t, env.Names.Topic(string(platform.TopicOrders)), "b1", encode(t, order("b1", 1, 1)))
	recs := env.Consume(t, env.Names.Topic(string(platform.TopicOrderValidations)), 60*time.Second, kafkatest.CountOf(1))
	checkVerdicts(t, recs, map[string]domain.ValidationResult{"b1": domain.Pass})
}

// Issue 13 item 1: a later CREATED under an id, with other content, gets no verdict: the
// first CREATED is the order. A redelivered first CREATED is answered again.
func TestLaterCreatedOfOtherContentIsIgnoredOnBroker(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	defer startService(t, env)()
	orders := env.Names.Topic(string(platform.TopicOrders))
	env.Produce(t, orders, "dup", encode(t, order("dup", 1, 1)))
	env.Produce(t, orders, "dup", encode(t, order("dup", -5, 1))) // would FAIL
	env.Produce(t, orders, "dup", encode(t, order("dup", 1, 1)))  // the first again
	log := kafkatest.NewVerdictLog(t, env, domain.OrderDetailsCheck)
	log.Await(t, 2)
	if n := log.Settle(t, 500*time.Millisecond); n != 2 || log.ByID["dup"][0] != domain.Pass || log.ByID["dup"][1] != domain.Pass {
		t.Fatalf("%d verdicts %v, want PASS twice (the first content and its redelivery)", n, log.ByID)
	}
}

// Found by review: a refused record whose dead letter would not fit the producer's message
// limit (a 300 KB key of control bytes, quoted into the reason; a value near 1 MB) failed the
// processor, which replayed it for ever. The reason is now clipped, and a record too large to
// copy is dead-lettered without its value, which stays at its source offset.
func TestRecordsTooLargeToCopyAreDeadLetteredAndPassedOnBroker(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 1})
	defer startService(t, env)()
	orders := env.Names.Topic(string(platform.TopicOrders))
	env.Produce(t, orders, strings.Repeat("\x01", 300_000), encode(t, order("victim", 1, 1)))
	env.Produce(t, orders, "big", append([]byte{0, 0, 0, 0, 99}, make([]byte, 950_000)...))
	env.Produce(t, orders, "good", encode(t, order("good", 1, 1)))
	env.AwaitCaughtUp(t, 30*time.Second, string(env.Names.Group(platform.GroupDetails)), orders)
	dead := env.Consume(t, env.Names.Topic(string(platform.TopicDeadLetters)), 30*time.Second, kafkatest.CountOf(2))
	if reason := kafkatest.Header(dead[0], platform.HeaderDLQError); len(reason) > 1100 || !strings.Contains(reason, "300000 bytes") {
		t.Fatalf("reason of the mismatched key (%d bytes): %.200s", len(reason), reason)
	}
	if omitted := kafkatest.Header(dead[1], platform.HeaderDLQValueOmitted); string(dead[1].Key) != "big" || omitted != "950005" || len(dead[1].Value) != 0 {
		t.Fatalf("dead letter of the large record: key %q, %d value bytes, omitted %q", dead[1].Key, len(dead[1].Value), omitted)
	}
}

// startService runs the Order Details service on env until the returned stop is called.
func startService(t *testing.T, env *kafkatest.Env) (stop func()) {
	t.Helper()
	cfg := details.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.AdminAddr = ""
	svc, err := details.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kafkatest.StartService(t, svc, svc.Health.Ready)
}
