package email

import (
	"fmt"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
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
		{"fresh candidates stay", orderState{Orders: []pendingOrder{{Order: order, SeenAt: base}}, Updated: base},
			r.Join - time.Second, expiry{}},
		{"unpaid order without outcome is forgotten", orderState{Orders: []pendingOrder{{Order: order, SeenAt: base}}, Updated: base},
			r.Join, expiry{unpaidOrder: true, forget: true}},
		{"unpaid but enriched order is remembered", orderState{Orders: []pendingOrder{{Order: order, SeenAt: base}},
			Enriched: &enrichedOutcome{}, Updated: base}, r.Join, expiry{unpaidOrder: true}},
		{"lonely payment", orderState{Payments: []pendingPayment{{SeenAt: base}}, Updated: base},
			r.Join, expiry{unmatchedPayment: true, forget: true}},
		{"hold within its time", orderState{Waiting: &waiting{Since: base}, Updated: base}, r.Hold - time.Second, expiry{}},
		{"hold expired", orderState{Waiting: &waiting{Since: base}, Match: &match{}, Updated: base}, r.Hold, expiry{holdExpired: true}},
		{"finished order within dedup retention", orderState{Emailed: &outcome{}, Enriched: &enrichedOutcome{}, Updated: base},
			r.Dedup - time.Second, expiry{}},
		{"finished order after dedup retention", orderState{Emailed: &outcome{}, Enriched: &enrichedOutcome{}, Updated: base},
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
