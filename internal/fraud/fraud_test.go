package fraud_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/fraud"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

var (
	codecs = platform.StaticCodecs()
	base   = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

func order(id string, customer int64, qty int32, price float64) domain.Order {
	return domain.Order{ID: id, CustomerID: customer, State: domain.OrderCreated, Product: domain.Underpants, Quantity: qty, Price: price}
}

func encode(t testing.TB, o domain.Order) []byte {
	t.Helper()
	b, err := codecs.Order.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// workedCase is SPEC.md's fraud example, in the order it is played.
var workedCase = []struct {
	order domain.Order
	want  domain.ValidationResult
}{
	{order("w1", 0, 3, 5), domain.Pass},    // 15
	{order("w2", 0, 15, 5), domain.Pass},   // 75, total 90
	{order("w3", 1, 15, 5), domain.Pass},   // 75
	{order("w4", 1, 3, 25), domain.Pass},   // 75, total 150
	{order("w5", 1, 75, 50), domain.Fail},  // 3750, total 3900
	{order("w6", 2, 10, 100), domain.Pass}, // 1000
	{order("w7", 2, 20, 50), domain.Fail},  // 1000, total exactly 2000
	{order("w8", 2, 1, 5), domain.Fail},    // 5, total 2005
}

// testProcessor is the fraud processor on goka's tester.
type testProcessor struct {
	tt       *tester.Tester
	verdicts *tester.QueueTracker
	dead     *tester.QueueTracker
}

func startTester(t *testing.T) *testProcessor {
	t.Helper()
	tt := kafkatest.StartTester(t, fraud.Graph(platform.Names{}, codecs))
	return &testProcessor{
		tt:       tt,
		verdicts: tt.NewQueueTracker(string(platform.TopicOrderValidations)),
		dead:     tt.NewQueueTracker(string(platform.TopicDeadLetters)),
	}
}

func (p *testProcessor) consume(t *testing.T, o domain.Order, at time.Time) {
	t.Helper()
	p.tt.Consume(string(platform.TopicOrders), o.ID, encode(t, o), tester.WithTime(at))
}

// verdict returns the next verdict, which must be a FRAUD_CHECK on orderID.
func (p *testProcessor) verdict(t *testing.T, orderID string) domain.ValidationResult {
	t.Helper()
	key, value, ok := p.verdicts.Next()
	if !ok {
		t.Fatalf("no verdict for order %s", orderID)
	}
	v := value.(domain.OrderValidation)
	if key != orderID || v.OrderID != orderID || v.CheckType != domain.FraudCheck {
		t.Fatalf("verdict %s %+v, want a FRAUD_CHECK on %s", key, v, orderID)
	}
	return v.ValidationResult
}

func (p *testProcessor) sessions(customer int64) *fraud.CustomerSessions {
	s, _ := p.tt.TableValue(goka.GroupTable(platform.GroupFraud), platform.CustomerKey(customer)).(*fraud.CustomerSessions)
	return s
}

func TestProcessorWorkedCase(t *testing.T) {
	p := startTester(t)
	hops := p.tt.NewQueueTracker(platform.LoopTopic(platform.GroupFraud))
	for i, c := range workedCase {
		at := base.Add(time.Duration(i) * time.Minute)
		p.consume(t, c.order, at)
		if got := p.verdict(t, c.order.ID); got != c.want {
			t.Errorf("order %s: %s, want %s", c.order.ID, got, c.want)
		}
		// The tester stamps loopback records with the zero time, as goka stamps them with
		// produce time: the event time must be in the payload.
		key, raw, ok := hops.Next()
		if !ok || key != platform.CustomerKey(c.order.CustomerID) {
			t.Fatalf("order %s: loopback record %q %v, want key of customer %d", c.order.ID, key, ok, c.order.CustomerID)
		}
		hop, err := platform.StateCodec[fraud.OrderHop]{}.Decode(raw.([]byte))
		if err != nil {
			t.Fatal(err)
		}
		if ms := hop.(*fraud.OrderHop).EventTimeMs; ms != at.UnixMilli() {
			t.Errorf("order %s: loopback event time %d, want %d", c.order.ID, ms, at.UnixMilli())
		}
	}
	for customer, want := range map[int64]struct {
		total  float64
		orders int
	}{0: {90, 2}, 1: {3900, 2}, 2: {2005, 1}} { // only PASSes are remembered
		s := p.sessions(customer)
		if s == nil || len(s.Sessions) != 1 || s.Sessions[0].Total != want.total || len(s.Sessions[0].Orders) != want.orders {
			t.Errorf("customer %d sessions %+v, want one session of %d orders totalling %v", customer, s, want.orders, want.total)
		}
	}
}

func TestProcessorBoundaries(t *testing.T) {
	notCreated := func(o domain.Order, s domain.OrderState) domain.Order { o.State = s; return o }
	type step struct {
		order domain.Order
		at    time.Duration
		want  domain.ValidationResult // "" means no verdict
	}
	cases := []struct {
		name     string
		steps    []step
		customer int64
		total    float64 // of the customer's latest session afterwards
	}{
		{"exactly 2000 fails", []step{
			{order("a", 5, 1, 1000), 0, domain.Pass},
			{order("b", 5, 1, 1000), time.Minute, domain.Fail},
		}, 5, 2000},
		{"quantity zero is judged on the session", []step{
			{order("a", 5, 0, 3000), 0, domain.Pass},
			{order("b", 5, 1, 2000), time.Minute, domain.Fail},
			{order("c", 5, 0, 10), 2 * time.Minute, domain.Fail},
		}, 5, 2000},
		{"gap just under an hour: same session", []step{
			{order("a", 5, 1, 1500), 0, domain.Pass},
			{order("b", 5, 1, 1500), time.Hour - time.Second, domain.Fail},
		}, 5, 3000},
		{"gap just over an hour: new session", []step{
			{order("a", 5, 1, 1500), 0, domain.Pass},
			{order("b", 5, 1, 1500), time.Hour + time.Second, domain.Pass},
		}, 5, 1500},
		// A FAIL is not remembered: its replay is judged, and fails, again (adding its value
		// again to a total already past the limit).
		{"replayed orders: same verdict, a PASS counted once", []step{
			{order("a", 5, 1, 1500), 0, domain.Pass},
			{order("b", 5, 1, 600), time.Minute, domain.Fail},
			{order("a", 5, 1, 1500), 0, domain.Pass},
			{order("b", 5, 1, 600), time.Minute, domain.Fail},
		}, 5, 2700},
		{"orders that are not CREATED are ignored", []step{
			{order("a", 5, 1, 1500), 0, domain.Pass},
			{notCreated(order("a", 5, 1, 1500), domain.OrderValidated), time.Minute, ""},
			{notCreated(order("x", 5, 1, 1500), domain.OrderFailed), time.Minute, ""},
		}, 5, 1500},
		{"a price that is not a number fails without touching the session", []step{
			{order("a", 5, 1, 100), 0, domain.Pass},
			{order("b", 5, 1, math.NaN()), time.Minute, domain.Fail},
			{order("c", 5, 1, math.Inf(1)), time.Minute, domain.Fail},
		}, 5, 100},
		{"customers are independent", []step{
			{order("a", 5, 1, 1999), 0, domain.Pass},
			{order("b", 6, 1, 1999), 0, domain.Pass},
		}, 6, 1999},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := startTester(t)
			for _, s := range c.steps {
				p.consume(t, s.order, base.Add(s.at))
				if s.want == "" {
					if key, v, ok := p.verdicts.Next(); ok {
						t.Fatalf("order %s: unexpected verdict %s %+v", s.order.ID, key, v)
					}
					continue
				}
				if got := p.verdict(t, s.order.ID); got != s.want {
					t.Fatalf("order %s: %s, want %s", s.order.ID, got, s.want)
				}
			}
			sessions := p.sessions(c.customer)
			if sessions == nil || sessions.Sessions[len(sessions.Sessions)-1].Total != c.total {
				t.Fatalf("customer %d sessions %+v, want latest total %v", c.customer, sessions, c.total)
			}
		})
	}
}

func TestProcessorDeadLettersPoisonRecords(t *testing.T) {
	p := startTester(t)
	loop := platform.LoopTopic(platform.GroupFraud)
	poison := []struct{ topic, key, value string }{
		{string(platform.TopicOrders), "junk", "not avro"},
		{loop, platform.CustomerKey(1), "{not json"},
		{loop, platform.CustomerKey(1), `{"eventTimeMs":1}`}, // no order in it
		{loop, platform.CustomerKey(1), `{"order":{"id":"v","customerId":1,"state":"VALIDATED","product":"JUMPERS","quantity":1,"price":1}}`},
		{loop, platform.CustomerKey(1), `{"order":{"id":"big","customerId":1,"state":"CREATED","product":"JUMPERS","quantity":10,"price":1e308}}`},
	}
	for _, rec := range poison {
		p.tt.Consume(rec.topic, rec.key, []byte(rec.value))
		key, value, ok := p.dead.Next()
		if !ok || key != rec.key || string(value.([]byte)) != rec.value {
			t.Fatalf("dead letter of %s = %q %v %v", rec.topic, key, value, ok)
		}
		if _, _, ok := p.verdicts.Next(); ok {
			t.Fatalf("verdict for a poison record on %s", rec.topic)
		}
	}
	p.consume(t, order("good", 1, 1, 1), base)
	if got := p.verdict(t, "good"); got != domain.Pass {
		t.Fatalf("order after poison records: %s", got)
	}
}

// brokerService runs the fraud service against the test broker, with state kept across
// restarts in the Env's state directory.
type brokerService struct {
	env *kafkatest.Env
	cfg fraud.Config
}

func newBrokerService(t *testing.T) *brokerService {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	cfg := fraud.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.AdminAddr = ""
	return &brokerService{env: env, cfg: cfg}
}

func (b *brokerService) start(t *testing.T) (stop func()) {
	t.Helper()
	svc, err := fraud.New(context.Background(), b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kafkatest.StartService(t, svc, svc.Health.Ready)
}

func (b *brokerService) topic(s goka.Stream) string { return b.env.Names.Topic(string(s)) }

// produce writes an order with its event time as the record timestamp.
func (b *brokerService) produce(t *testing.T, o domain.Order, at time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: b.topic(platform.TopicOrders), Key: []byte(o.ID), Value: encode(t, o), Timestamp: at}
	if err := b.env.Client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// judge produces an order and waits for its verdict. Orders of one customer are played one
// at a time because the service's answer depends on their order, and orders keyed by id
// spread over partitions that the service reads concurrently.
func judge(t *testing.T, l *kafkatest.VerdictLog, b *brokerService, o domain.Order, at time.Time) domain.ValidationResult {
	t.Helper()
	b.produce(t, o, at)
	l.Await(t, l.N+1)
	got := l.ByID[o.ID]
	if len(got) == 0 {
		t.Fatalf("the next verdict was not for order %s: %v", o.ID, l.ByID)
	}
	return got[len(got)-1]
}

// Through real topics with several partitions: SPEC.md's worked case, the session gap, and
// orders delivered twice.
func TestServiceOnBroker(t *testing.T) {
	b := newBrokerService(t)
	stop := b.start(t)
	defer stop()
	log := kafkatest.NewVerdictLog(t, b.env, domain.FraudCheck)

	steps := []struct {
		order domain.Order
		at    time.Time
		want  domain.ValidationResult
	}{
		{order("g1", 3, 1, 1500), base, domain.Pass},
		{order("g2", 3, 1, 1500), base.Add(time.Hour - time.Second), domain.Fail},
		{order("h1", 4, 1, 1500), base, domain.Pass},
		{order("h2", 4, 1, 1500), base.Add(time.Hour + time.Second), domain.Pass},
	}
	for i, c := range workedCase {
		steps = append(steps, struct {
			order domain.Order
			at    time.Time
			want  domain.ValidationResult
		}{c.order, base.Add(time.Duration(i) * time.Minute), c.want})
	}
	// Delivered twice (e.g. a producer retry upstream): the first verdict again, not counted
	// again — customer 0 stays at 90, so 1909 more is still under the limit.
	steps = append(steps, []struct {
		order domain.Order
		at    time.Time
		want  domain.ValidationResult
	}{
		{workedCase[0].order, base, domain.Pass},
		{workedCase[4].order, base.Add(4 * time.Minute), domain.Fail},
		{order("d1", 0, 1, 1909), base.Add(10 * time.Minute), domain.Pass},
	}...)
	for _, s := range steps {
		if got := judge(t, log, b, s.order, s.at); got != s.want {
			t.Errorf("order %s (customer %d): %s, want %s", s.order.ID, s.order.CustomerID, got, s.want)
		}
	}
}

// A restart resumes from committed offsets and local state: nothing is judged twice and the
// sessions are intact. Rewinding the committed offsets (a crash before the commit) replays
// every order: each gets its first verdict again and none is counted again.
func TestRestartOnBroker(t *testing.T) {
	b := newBrokerService(t)
	log := kafkatest.NewVerdictLog(t, b.env, domain.FraudCheck)
	stop := b.start(t)
	for i, c := range workedCase {
		if got := judge(t, log, b, c.order, base.Add(time.Duration(i)*time.Minute)); got != c.want {
			t.Fatalf("order %s: %s, want %s", c.order.ID, got, c.want)
		}
	}
	stop()

	stop = b.start(t)
	if got := judge(t, log, b, order("r1", 0, 1, 1850), base.Add(10*time.Minute)); got != domain.Pass {
		t.Fatalf("order r1 after restart: %s, want PASS (customer 0 at 1940)", got)
	}
	if n := log.Settle(t, time.Second); n != len(workedCase)+1 {
		t.Fatalf("%d verdicts after restart, want %d (no re-validation): %v", n, len(workedCase)+1, log.ByID)
	}
	stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rewind := kadm.Offsets{}
	for p := int32(0); p < 4; p++ {
		rewind.Add(kadm.Offset{Topic: b.topic(platform.TopicOrders), Partition: p, At: 0, LeaderEpoch: -1})
	}
	resp, err := b.env.Admin.CommitOffsets(ctx, string(b.env.Names.Group(platform.GroupFraud)), rewind)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("rewind committed offsets: %v", err)
	}
	stop = b.start(t)
	defer stop()
	replayed := 2 * (len(workedCase) + 1)
	log.Await(t, replayed)
	// Counted twice, customer 0 would be at 3880 and fail this.
	if got := judge(t, log, b, order("r2", 0, 1, 50), base.Add(11*time.Minute)); got != domain.Pass {
		t.Fatalf("order r2 after replay: %s, want PASS (customer 0 at 1990)", got)
	}
	if n := log.Settle(t, 500*time.Millisecond); n != replayed+1 {
		t.Fatalf("%d verdicts after replay, want %d", n, replayed+1)
	}
	for id, results := range log.ByID {
		for _, r := range results {
			if r != results[0] {
				t.Errorf("order %s answered %v: a replay changed its verdict", id, results)
			}
		}
	}
}

// Garbage on orders and on the loopback topic goes to the dead-letter topic with its reason;
// later orders are still judged.
func TestPoisonRecordsOnBroker(t *testing.T) {
	b := newBrokerService(t)
	stop := b.start(t)
	defer stop()
	loop := b.env.Names.Topic(platform.LoopTopic(platform.GroupFraud))
	b.env.Produce(t, b.topic(platform.TopicOrders), "junk", []byte{0, 0, 0, 0})
	b.env.Produce(t, loop, platform.CustomerKey(9), []byte("{not json"))
	log := kafkatest.NewVerdictLog(t, b.env, domain.FraudCheck)
	if got := judge(t, log, b, order("after", 9, 1, 1), base); got != domain.Pass {
		t.Fatalf("order after poison records: %s", got)
	}
	dead := b.env.Consume(t, b.topic(platform.TopicDeadLetters), 30*time.Second, kafkatest.CountOf(2))
	reasons := map[string]string{}
	for _, r := range dead {
		reasons[kafkatest.Header(r, platform.HeaderDLQSourceTopic)] = kafkatest.Header(r, platform.HeaderDLQError)
	}
	if !strings.Contains(reasons[b.topic(platform.TopicOrders)], "too short") ||
		!strings.Contains(reasons[loop], "JSON") {
		t.Fatalf("dead-letter reasons by source topic: %v", reasons)
	}
}

func TestBinaryHelpAndRunsAgainstKafkaBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := kafkatest.BuildBinary(t, "./cmd/fraud")
	kafkatest.CheckHelp(t, bin, "-brokers", "-state-dir", "-schema-registry", "-admin-addr", "-partitions", ":9102")

	env := kafkatest.New(t, kafkatest.Options{})
	kafkatest.StartOnEnv(t, bin, env)
	env.Produce(t, env.Names.Topic(string(platform.TopicOrders)), "b1", encode(t, order("b1", 1, 1, 1)))
	recs := env.Consume(t, env.Names.Topic(string(platform.TopicOrderValidations)), 60*time.Second, kafkatest.CountOf(1))
	v, err := codecs.OrderValidation.Unmarshal(recs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if v != (domain.OrderValidation{OrderID: "b1", CheckType: domain.FraudCheck, ValidationResult: domain.Pass}) {
		t.Fatalf("verdict %+v", v)
	}
}
