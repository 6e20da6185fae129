package email

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

var base = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestJoinPicksTheFirstPairInArrivalOrder(t *testing.T) {
	var s orderState
	created := domain.Order{ID: "o", State: domain.OrderCreated}
	validated := domain.Order{ID: "o", State: domain.OrderValidated}
	s.addOrder(created, base, base)
	s.addPayment(domain.Payment{ID: "far", OrderID: "o"}, base.Add(5*time.Minute), base)
	if s.join() {
		t.Fatal("joined a payment 5 minutes away")
	}
	s.addOrder(validated, base.Add(5*time.Minute+30*time.Second), base)
	s.addPayment(domain.Payment{ID: "near", OrderID: "o"}, base.Add(10*time.Second), base)
	if !s.join() {
		t.Fatal("no match")
	}
	// CREATED arrived first and matches "near"; VALIDATED would match "far" but comes later.
	if s.Match.Order.State != domain.OrderCreated || s.Match.Payment.ID != "near" {
		t.Fatalf("match %+v", s.Match)
	}
	if len(s.Orders) != 0 || len(s.Payments) != 0 {
		t.Fatal("candidates kept after the match")
	}
	if s.addPayment(domain.Payment{ID: "late"}, base, base) || s.join() {
		t.Fatal("a matched order took another payment")
	}
}

func TestPendingPaymentsAreBounded(t *testing.T) {
	var s orderState
	for i := 0; i < 3*maxPendingPayments; i++ {
		s.addPayment(domain.Payment{ID: fmt.Sprint(i)}, base.Add(time.Duration(i)*time.Hour), base)
	}
	if len(s.Payments) != maxPendingPayments || s.Payments[0].Payment.ID != fmt.Sprint(2*maxPendingPayments) {
		t.Fatalf("%d payments kept, first %s", len(s.Payments), s.Payments[0].Payment.ID)
	}
	if s.addPayment(domain.Payment{ID: fmt.Sprint(3*maxPendingPayments - 1)}, base, base) {
		t.Fatal("a redelivered payment was added again")
	}
}

func TestExpire(t *testing.T) {
	r := DefaultRetention()
	order := domain.Order{ID: "o", State: domain.OrderCreated}
	cases := []struct {
		name  string
		state orderState
		after time.Duration
		want  expiry
	}{
		{"fresh candidates stay", orderState{Orders: []pendingOrder{{Order: order, SeenAt: stamp{base}}}, Updated: stamp{base}},
			r.Join - time.Second, expiry{}},
		{"unpaid order without outcome is forgotten", orderState{Orders: []pendingOrder{{Order: order, SeenAt: stamp{base}}}, Updated: stamp{base}},
			r.Join, expiry{unpaidOrder: true, forget: true}},
		{"unpaid but enriched order is remembered", orderState{Orders: []pendingOrder{{Order: order, SeenAt: stamp{base}}},
			Enriched: &enrichedOutcome{}, Updated: stamp{base}}, r.Join, expiry{unpaidOrder: true}},
		{"lonely payment", orderState{Payments: []pendingPayment{{SeenAt: stamp{base}}}, Updated: stamp{base}},
			r.Join, expiry{unmatchedPayment: true, forget: true}},
		{"hold within its time", orderState{Waiting: &waiting{Since: stamp{base}}, Updated: stamp{base}}, r.Hold - time.Second, expiry{}},
		{"hold expired", orderState{Waiting: &waiting{Since: stamp{base}}, Match: &match{}, Updated: stamp{base}}, r.Hold, expiry{holdExpired: true}},
		{"finished order within dedup retention", orderState{Emailed: &outcome{}, Enriched: &enrichedOutcome{}, Updated: stamp{base}},
			r.Dedup - time.Second, expiry{}},
		{"finished order after dedup retention", orderState{Emailed: &outcome{}, Enriched: &enrichedOutcome{}, Updated: stamp{base}},
			r.Dedup, expiry{forget: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.state
			if got := s.expire(base.Add(c.after), r); got != c.want {
				t.Fatalf("expire = %+v, want %+v", got, c.want)
			}
			if c.want.holdExpired && (s.Abandoned == nil || s.Waiting != nil || s.Match != nil) {
				t.Fatalf("abandoned state %+v", s)
			}
		})
	}
}

// The list of orders waiting for one customer stops at its budget however long the ids; an
// order left off is reported so, a listed one is not listed twice, and expiry frees room.
func TestCustomerWaitListBudget(t *testing.T) {
	var c customerState
	long := strings.Repeat("<", 240) // JSON writes each as \u003c
	listed := 0
	for i := range 10000 {
		changed, fits := c.list(fmt.Sprintf("%s%05d", long, i), base)
		if changed != fits || (!fits && listed == 0) || (fits && listed != i) {
			t.Fatalf("order %d: changed=%v fits=%v after %d listed", i, changed, fits, listed)
		}
		if fits {
			listed++
		}
	}
	if changed, fits := c.list(fmt.Sprintf("%s%05d", long, 0), base); changed || !fits {
		t.Fatalf("listing a listed order again: changed=%v fits=%v", changed, fits)
	}
	encoded, err := json.Marshal(entry{Customer: &c})
	if err != nil {
		t.Fatal(err)
	}
	if len(encoded) > heldListBudget {
		t.Fatalf("%d orders listed in %d bytes, budget %d", listed, len(encoded), heldListBudget)
	}
	if c.expireWaiters(base.Add(2*time.Hour), DefaultRetention()) || c.Bytes != 0 {
		t.Fatalf("after the hold: %d waiting, %d bytes counted", len(c.Waiting), c.Bytes)
	}
	if changed, fits := c.list("next", base.Add(2*time.Hour)); !changed || !fits {
		t.Fatalf("after expiry: changed=%v fits=%v", changed, fits)
	}
}

// Everything the join remembers survives the table's codec exactly, times to the nanosecond
// (the join window's bound is inclusive), in either kind of key; state written as JSON by
// earlier versions still reads.
func TestStateSurvivesTheTableCodec(t *testing.T) {
	at := stamp{base.Add(123456789 * time.Nanosecond)}
	order := domain.Order{ID: "o\xff", CustomerID: 15, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 2, Price: 3.5}
	payment := domain.Payment{ID: "p", OrderID: "o\xff", Ccy: "EUR", Amount: 7}
	src := source{Topic: "orders", Partition: 3, Offset: 99}
	values := []entry{
		{Order: &orderState{First: &order,
			Orders:    []pendingOrder{{Order: order, EventTime: at, SeenAt: stamp{at.Add(time.Nanosecond)}}},
			Payments:  []pendingPayment{{Payment: payment, EventTime: at, SeenAt: at}},
			Match:     &match{Order: order, Payment: payment},
			Waiting:   &waiting{CustomerID: 15, Since: at},
			Enriched:  &enrichedOutcome{outcome: outcome{At: at, Source: src}, Topic: "gold", Record: domain.OrderEnriched{ID: "o\xff", CustomerID: 15, CustomerLevel: "gold"}},
			Emailed:   &outcome{At: at, Source: src, Failed: true},
			Abandoned: &outcome{At: at},
			Updated:   at}},
		{Customer: &customerState{Waiting: map[string]stamp{"a": at, "b": {}}, Bytes: 96}},
		{Order: &orderState{}},
	}
	codec := platform.StateCodec[entry]{}
	for i, v := range values {
		b, err := codec.Encode(&v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Unmarshal(b)
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("value %d round trip\n got %+v\nwant %+v", i, got, v)
		}
	}
	legacy := `{"order":{"first":{"id":"o","customerId":2,"state":"CREATED","product":"STOCKINGS","quantity":1,"price":1},"enriched":{"at":"2026-12-01T17:25:27.280920814Z","source":{"topic":"orders","partition":0,"offset":0},"topic":"silver","record":{"id":"o","customerId":2,"customerLevel":"silver"}},"emailed":{"at":"2026-12-01T17:25:27.293038688Z","source":{"topic":"email-service-loop","partition":0,"offset":0}},"updated":"2026-12-01T17:25:27.293038688Z"}}`
	got, err := codec.Unmarshal([]byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 1, 17, 25, 27, 293038688, time.UTC); !got.Order.Updated.Equal(want) || got.Order.Enriched.Topic != "silver" || got.Order.Emailed.Source.Topic != "email-service-loop" {
		t.Fatalf("legacy state read as %+v", got.Order)
	}
}

// A stamp keeps any time exactly, including the epoch, times an int64 of nanoseconds cannot
// hold, and the zero time; the join window holds for times centuries apart.
func TestStampEdges(t *testing.T) {
	codec := platform.StateCodec[entry]{}
	for _, at := range []time.Time{
		{}, time.Unix(0, 0).UTC(), time.Unix(0, -1).UTC(), time.Date(1677, 9, 21, 0, 0, 0, 0, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 7, time.UTC), time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.UnixMilli(math.MinInt64).UTC(), base,
	} {
		v := entry{Order: &orderState{Updated: stamp{at}}}
		b, err := codec.Encode(&v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Unmarshal(b)
		if err != nil || !got.Order.Updated.Equal(at) || got.Order.Updated.IsZero() != at.IsZero() {
			t.Errorf("%v round-trips to %v (%v)", at, got.Order.Updated, err)
		}
	}
	for _, bad := range [][]byte{{0x82, 0x01, 0x3a, 0, 0, 0, 0}, {0x82, 0x01, 0x1a, 0x3b, 0x9a, 0xca, 0x00}, {0x63, 'a', 'b', 'c'}} {
		var s stamp
		if err := s.UnmarshalCBOR(bad); err == nil {
			t.Errorf("%x decoded as %v", bad, s)
		}
	}
	today := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		a, b time.Time
		want bool
	}{
		{today, today.Add(JoinWindow), true},
		{today, today.Add(JoinWindow + 1), false},
		{today.Add(JoinWindow), today, true},
		{time.Time{}, today, false},
		{time.UnixMilli(0), today, false},
		{time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64), false},
	}
	for _, c := range cases {
		if got := withinWindow(c.a, c.b); got != c.want {
			t.Errorf("withinWindow(%v, %v) = %v", c.a, c.b, got)
		}
	}
}
