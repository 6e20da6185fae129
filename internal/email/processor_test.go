package email_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/email"
	"github.com/ordersys/ecosystem/internal/platform"
)

var codecs = platform.StaticCodecs()

// The worked case of SPEC.md.
var (
	franz = domain.Customer{ID: 15, FirstName: "Franz", LastName: "Kafka", Email: "frans@thedarkside.net",
		Address: "oppression street, prague, cze", Level: "gold"}
	order0   = domain.Order{ID: "0", CustomerID: 15, State: domain.OrderCreated, Product: domain.Underpants, Quantity: 3, Price: 5.0}
	payment0 = domain.Payment{ID: "Payment:1234", OrderID: "0", Ccy: "CZK", Amount: 1000.0}
)

// t0 is an arbitrary event time; record timestamps in these tests are offsets from it.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// recordingEmailer records what it is asked to send; failures are returned by the next calls.
type recordingEmailer struct {
	mu       sync.Mutex
	sent     []email.Email
	calls    int
	failures []error
}

func (r *recordingEmailer) Send(_ context.Context, e email.Email) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.failures) > 0 {
		err := r.failures[0]
		r.failures = r.failures[1:]
		return err
	}
	r.sent = append(r.sent, e)
	return nil
}

func (r *recordingEmailer) Sent() []email.Email {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]email.Email(nil), r.sent...)
}

func (r *recordingEmailer) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// clock is the processing-time clock the processor measures retention with.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// harness runs the processor on goka's tester (one partition, synchronous).
type harness struct {
	t        *testing.T
	tt       *tester.Tester
	proc     *goka.Processor
	emailer  *recordingEmailer
	clock    *clock
	counters *email.Counters
	outputs  map[goka.Stream]*tester.QueueTracker
	dead     *tester.QueueTracker
	runErr   chan error
	cancel   context.CancelFunc
}

func newHarness(t *testing.T, emailer *recordingEmailer) *harness {
	t.Helper()
	if emailer == nil {
		emailer = &recordingEmailer{}
	}
	h := &harness{t: t, tt: tester.New(t), emailer: emailer, clock: &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		counters: &email.Counters{}, outputs: map[goka.Stream]*tester.QueueTracker{}, runErr: make(chan error, 1)}
	graph := email.Graph(platform.Names{}, codecs, email.Processing{
		Emailer: emailer, Retention: email.DefaultRetention(), Counters: h.counters,
		Now: h.clock.Now, SendBackoff: time.Millisecond,
	})
	proc, err := goka.NewProcessor(nil, graph, goka.WithTester(h.tt))
	if err != nil {
		t.Fatal(err)
	}
	h.proc = proc
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- proc.Run(ctx) }()
	for _, level := range []string{"platinum", "gold", "silver", "bronze", "unknown"} {
		topic, _ := platform.Names{}.LevelTopic(level)
		h.outputs[topic] = h.tt.NewQueueTracker(string(topic))
	}
	h.dead = h.tt.NewQueueTracker(string(platform.TopicDeadLetters))
	return h
}

// stop stops the processor and returns its error.
func (h *harness) stop() error {
	h.cancel()
	return <-h.runErr
}

func (h *harness) stopCleanly() {
	h.t.Helper()
	if err := h.stop(); err != nil {
		h.t.Fatalf("processor: %v", err)
	}
}

func (h *harness) customer(c domain.Customer, at time.Time) {
	h.t.Helper()
	b, err := codecs.Customer.Marshal(c)
	if err != nil {
		h.t.Fatal(err)
	}
	h.tt.Consume(string(platform.TopicCustomers), platform.CustomerKey(c.ID), b, tester.WithTime(at))
	// The processor's lookup view reopens its partition consumer when it switches from recovery
	// to catching up; a record pushed in between reaches it only on a later catch-up. Wait until
	// the view holds the customer, as it would when the customer exists before its orders.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, _ := h.tt.TableValue(platform.TopicCustomers, platform.CustomerKey(c.ID)).([]byte); bytes.Equal(v, b) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("customer %d never reached the lookup table", c.ID)
		}
		time.Sleep(5 * time.Millisecond)
		h.tt.Catchup()
	}
}

func (h *harness) order(o domain.Order, at time.Time) {
	h.t.Helper()
	b, err := codecs.Order.Marshal(o)
	if err != nil {
		h.t.Fatal(err)
	}
	h.tt.Consume(string(platform.TopicOrders), o.ID, b, tester.WithTime(at))
}

func (h *harness) payment(p domain.Payment, at time.Time) {
	h.t.Helper()
	b, err := codecs.Payment.Marshal(p)
	if err != nil {
		h.t.Fatal(err)
	}
	h.tt.Consume(string(platform.TopicPayments), p.ID, b, tester.WithTime(at))
}

// sweep runs the expiry visitor as of the clock's time.
func (h *harness) sweep() {
	h.t.Helper()
	if _, err := email.SweepAt(context.Background(), h.proc, h.clock.Now()); err != nil {
		h.t.Fatal(err)
	}
	h.tt.Catchup()
}

type enrichedRecord struct {
	topic goka.Stream
	key   string
	value domain.OrderEnriched
}

// enriched returns what was emitted to the level topics since the last call.
func (h *harness) enriched() []enrichedRecord {
	var got []enrichedRecord
	for topic, q := range h.outputs {
		for {
			key, value, ok := q.Next()
			if !ok {
				break
			}
			got = append(got, enrichedRecord{topic, key, value.(domain.OrderEnriched)})
		}
	}
	return got
}

func (h *harness) expectEnriched(want ...enrichedRecord) {
	h.t.Helper()
	got := h.enriched()
	if len(got) != len(want) {
		h.t.Fatalf("enriched records %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			h.t.Fatalf("enriched record %+v, want %+v", got[i], want[i])
		}
	}
}

func (h *harness) expectEmails(n int) []email.Email {
	h.t.Helper()
	sent := h.emailer.Sent()
	if len(sent) != n {
		h.t.Fatalf("%d emails sent, want %d: %+v", len(sent), n, sent)
	}
	return sent
}

func gold(id string, customer int64) enrichedRecord {
	return enrichedRecord{platform.TopicGold, id, domain.OrderEnriched{ID: id, CustomerID: customer, CustomerLevel: "gold"}}
}

func TestWorkedCaseSendsExactlyOneEmail(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	h.customer(franz, t0)
	h.order(order0, t0)
	h.payment(payment0, t0.Add(2*time.Second))

	sent := h.expectEmails(1)
	if want := (email.Email{Order: order0, Payment: payment0, Customer: franz}); sent[0] != want {
		t.Fatalf("email %+v, want %+v", sent[0], want)
	}
	h.expectEnriched(gold("0", 15))
	if _, _, ok := h.dead.Next(); ok {
		t.Fatal("unexpected dead letter")
	}
}

// The window: order and payment match when their event times are at most a minute apart,
// whichever arrives first.
func TestJoinWindow(t *testing.T) {
	cases := []struct {
		name         string
		paymentFirst bool
		gap          time.Duration // event time of the later-arriving record minus the earlier one
		wantEmail    bool
	}{
		{"payment 59s after order", false, 59 * time.Second, true},
		{"payment exactly 60s after order", false, 60 * time.Second, true},
		{"payment 61s after order", false, 61 * time.Second, false},
		{"payment first, order 59s later", true, 59 * time.Second, true},
		{"payment first, order 61s later", true, 61 * time.Second, false},
		{"payment arrives first but is 59s older", false, -59 * time.Second, true},
		{"payment arrives first but is 61s older", false, -61 * time.Second, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			defer h.stopCleanly()
			h.customer(franz, t0)
			if c.paymentFirst {
				h.payment(payment0, t0)
				h.order(order0, t0.Add(c.gap))
			} else {
				h.order(order0, t0)
				h.payment(payment0, t0.Add(c.gap))
			}
			want := 0
			if c.wantEmail {
				want = 1
			}
			h.expectEmails(want)
			// Enrichment needs no payment.
			h.expectEnriched(gold("0", 15))
		})
	}
}

func TestOneEmailPerOrder(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	h.customer(franz, t0)
	h.order(order0, t0)
	h.payment(payment0, t0.Add(time.Second))
	h.expectEmails(1)
	h.expectEnriched(gold("0", 15))

	validated := order0
	validated.State = domain.OrderValidated
	second := payment0
	second.ID = "Payment:5678"
	steps := []struct {
		name string
		do   func()
	}{
		{"order redelivered", func() { h.order(order0, t0) }},
		{"payment redelivered", func() { h.payment(payment0, t0.Add(time.Second)) }},
		{"order becomes VALIDATED", func() { h.order(validated, t0.Add(3*time.Second)) }},
		{"a second payment", func() { h.payment(second, t0.Add(4*time.Second)) }},
		{"customer changes", func() { h.customer(franz, t0.Add(5*time.Second)) }},
	}
	for _, s := range steps {
		s.do()
		h.expectEmails(1)
		if got := h.enriched(); len(got) != 0 {
			t.Fatalf("%s: enriched again: %+v", s.name, got)
		}
	}
	if got := h.counters.Duplicates.Load(); got != 4 {
		t.Fatalf("duplicates counted %d, want 4", got)
	}
}

func TestRoutingByLevel(t *testing.T) {
	cases := []struct {
		level string
		topic goka.Stream
	}{
		{"platinum", platform.TopicPlatinum},
		{"gold", platform.TopicGold},
		{"silver", platform.TopicSilver},
		{"bronze", platform.TopicBronze},
		{"diamond", platform.TopicUnknownLevel},
		{"GOLD", platform.TopicUnknownLevel}, // levels are matched exactly
		{"../orders", platform.TopicUnknownLevel},
	}
	h := newHarness(t, nil)
	defer h.stopCleanly()
	for i, c := range cases {
		customer := franz
		customer.ID = int64(100 + i)
		customer.Level = c.level
		h.customer(customer, t0)
		o := order0
		o.ID = "level-" + c.level
		o.CustomerID = customer.ID
		h.order(o, t0)
		h.expectEnriched(enrichedRecord{c.topic, o.ID, domain.OrderEnriched{ID: o.ID, CustomerID: customer.ID, CustomerLevel: c.level}})
		h.order(o, t0) // redelivered: routed once only
		h.expectEnriched()
	}
	if got := h.counters.UnknownLevel.Load(); got != 3 {
		t.Fatalf("unknown levels counted %d, want 3", got)
	}
}

func TestMissingCustomerIsHeldUntilItArrives(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	h.order(order0, t0)
	h.payment(payment0, t0.Add(time.Second))
	h.expectEmails(0)
	h.expectEnriched()

	h.clock.Advance(30 * time.Minute)
	h.sweep() // still within the hold: nothing happens
	h.expectEmails(0)

	h.customer(franz, t0.Add(30*time.Minute))
	sent := h.expectEmails(1)
	if want := (email.Email{Order: order0, Payment: payment0, Customer: franz}); sent[0] != want {
		t.Fatalf("email %+v, want %+v", sent[0], want)
	}
	h.expectEnriched(gold("0", 15))

	// Nothing is left waiting: the customer changing again releases nothing.
	h.customer(franz, t0.Add(31*time.Minute))
	h.expectEmails(1)
	h.expectEnriched()
	if keys := h.tt.GetTableKeys(goka.GroupTable(platform.GroupEmail)); len(keys) != 1 || keys[0] != "0" {
		t.Fatalf("table keys %q, want only the order", keys)
	}
}

// Several orders of one missing customer are all released by its arrival.
func TestCustomerReleasesAllWaitingOrders(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		o, p := order0, payment0
		o.ID, p.OrderID, p.ID = id, id, "pay-"+id
		h.order(o, t0)
		h.payment(p, t0)
	}
	h.expectEmails(0)
	h.customer(franz, t0)
	sent := h.expectEmails(3)
	for i, id := range ids {
		if sent[i].Order.ID != id || sent[i].Payment.ID != "pay-"+id {
			t.Fatalf("email %d: %+v", i, sent[i])
		}
	}
	if got := h.enriched(); len(got) != 3 {
		t.Fatalf("enriched %+v, want 3 records", got)
	}
}

func TestHoldExpiresAndIsCounted(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	h.order(order0, t0)
	h.payment(payment0, t0.Add(time.Second))

	h.clock.Advance(time.Hour + time.Second)
	h.sweep()
	if got := h.counters.HoldsExpired.Load(); got != 1 {
		t.Fatalf("holds expired %d, want 1", got)
	}
	// The order is abandoned: a late customer does not revive it.
	h.customer(franz, t0.Add(2*time.Hour))
	h.order(order0, t0)
	h.expectEmails(0)
	h.expectEnriched()

	// The abandoned order is forgotten after the dedup retention, and so is the waiter.
	h.clock.Advance(email.DefaultRetention().Dedup)
	h.sweep()
	if keys := h.tt.GetTableKeys(goka.GroupTable(platform.GroupEmail)); len(keys) != 0 {
		t.Fatalf("table keys %q left after retention", keys)
	}
}

// An order whose release message never came (the customer arrived while its registration was
// in flight, or the release was lost in a crash) is released by the sweep's lookup retry.
func TestSweepReleasesOrderWhoseCustomerIsInTheTable(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	h.order(order0, t0)
	h.payment(payment0, t0)
	h.expectEmails(0)

	b, err := codecs.Customer.Marshal(franz)
	if err != nil {
		t.Fatal(err)
	}
	// Straight into the lookup table, bypassing the customers input: no release message.
	h.tt.SetTableValue(platform.TopicCustomers, platform.CustomerKey(15), b)
	h.expectEmails(0)
	h.clock.Advance(time.Minute)
	h.sweep()
	h.expectEmails(1)
	h.expectEnriched(gold("0", 15))
}

func TestUnmatchedRecordsExpire(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	h.customer(franz, t0)
	lonely := payment0
	lonely.ID, lonely.OrderID = "Payment:9", "never-ordered"
	h.payment(lonely, t0)
	h.order(order0, t0) // no payment will come
	h.expectEnriched(gold("0", 15))

	table := goka.GroupTable(platform.GroupEmail)
	h.clock.Advance(email.DefaultRetention().Join - time.Second)
	h.sweep()
	if len(h.tt.GetTableKeys(table)) != 2 {
		t.Fatalf("table keys %q before the join retention", h.tt.GetTableKeys(table))
	}
	h.clock.Advance(2 * time.Second)
	h.sweep()
	if got, want := h.counters.UnmatchedPayments.Load(), int64(1); got != want {
		t.Fatalf("unmatched payments %d, want %d", got, want)
	}
	if got, want := h.counters.UnpaidOrders.Load(), int64(1); got != want {
		t.Fatalf("unpaid orders %d, want %d", got, want)
	}
	if v := h.tt.TableValue(table, "never-ordered"); v != nil {
		t.Fatalf("expired payment still stored: %+v", v)
	}
	// The order is still remembered as enriched, and a late payment no longer matches it.
	h.payment(payment0, t0)
	h.expectEmails(0)

	h.clock.Advance(email.DefaultRetention().Dedup)
	h.sweep()
	if keys := h.tt.GetTableKeys(table); len(keys) != 0 {
		t.Fatalf("table keys %q left after retention", keys)
	}
}

func TestPoisonRecordsGoToDeadLetters(t *testing.T) {
	h := newHarness(t, nil)
	defer h.stopCleanly()
	noOrder := payment0
	noOrder.OrderID = ""
	noOrderBytes, err := codecs.Payment.Marshal(noOrder)
	if err != nil {
		t.Fatal(err)
	}
	customerBytes, err := codecs.Customer.Marshal(franz)
	if err != nil {
		t.Fatal(err)
	}
	poison := []struct {
		topic, key string
		value      []byte
		reason     string
	}{
		{string(platform.TopicOrders), "junk-order", []byte("not avro"), "unknown magic byte"},
		{string(platform.TopicPayments), "junk-payment", []byte{0, 0, 0, 0}, "too short"},
		{string(platform.TopicPayments), "no-order", noOrderBytes, "no order id"},
		{string(platform.TopicCustomers), platform.CustomerKey(7), []byte{0, 0, 0, 0, 99}, "schema id"},
		{string(platform.TopicCustomers), "short-key", customerBytes, "wrong length"},
	}
	for _, p := range poison {
		h.tt.Consume(p.topic, p.key, p.value)
		headers, key, value, ok := h.dead.NextWithHeaders()
		if !ok || key != p.key || string(value.([]byte)) != string(p.value) {
			t.Fatalf("%s/%s: dead letter %q %v %v", p.topic, p.key, key, value, ok)
		}
		if reason := string(headers[platform.HeaderDLQError]); !strings.Contains(reason, p.reason) {
			t.Fatalf("%s/%s: reason %q, want it to mention %q", p.topic, p.key, reason, p.reason)
		}
	}
	// Processing goes on.
	h.customer(franz, t0)
	h.order(order0, t0)
	h.payment(payment0, t0)
	h.expectEmails(1)
}

func TestUndeliverableEmailIsNotRetried(t *testing.T) {
	emailer := &recordingEmailer{failures: []error{email.ErrUndeliverable}}
	h := newHarness(t, emailer)
	defer h.stopCleanly()
	h.customer(franz, t0)
	h.order(order0, t0)
	h.payment(payment0, t0)
	h.expectEnriched(gold("0", 15))
	h.order(order0, t0)
	if calls := emailer.Calls(); calls != 1 {
		t.Fatalf("%d send attempts, want 1", calls)
	}
	if got := h.counters.EmailsUndeliverable.Load(); got != 1 {
		t.Fatalf("undeliverable counted %d, want 1", got)
	}
}

func TestTransientSendFailureIsRetried(t *testing.T) {
	emailer := &recordingEmailer{failures: []error{errors.New("connection refused")}}
	h := newHarness(t, emailer)
	defer h.stopCleanly()
	h.customer(franz, t0)
	h.order(order0, t0)
	h.payment(payment0, t0)
	h.expectEmails(1)
	if calls := emailer.Calls(); calls != 2 {
		t.Fatalf("%d send attempts, want 2", calls)
	}
}

// When the mail server stays down, the processor stops without committing the order, so a
// restart sends the email instead of losing it.
func TestPersistentSendFailureStopsTheProcessor(t *testing.T) {
	down := errors.New("connection refused")
	emailer := &recordingEmailer{failures: []error{down, down, down}}
	h := newHarness(t, emailer)
	h.customer(franz, t0)
	h.order(order0, t0)
	h.payment(payment0, t0)
	select {
	case err := <-h.runErr:
		if err == nil || !strings.Contains(err.Error(), "send email for order 0") {
			t.Fatalf("processor stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("processor kept running after the emailer failed for good")
	}
	h.cancel()
	h.expectEmails(0)
}
