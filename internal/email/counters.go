package email

import (
	"sync/atomic"
)

// Counters count what the service did since it started; they are served as JSON on the admin
// address at /counters.
type Counters struct {
	EmailsSent          atomic.Int64
	EmailsUndeliverable atomic.Int64
	Enriched            atomic.Int64
	UnknownLevel        atomic.Int64 // enriched orders routed to the unknown-level topic
	Duplicates          atomic.Int64 // records for orders already finished: redeliveries, later states
	UnpaidOrders        atomic.Int64 // orders whose records expired without a matching payment
	UnmatchedPayments   atomic.Int64 // payments that expired without a matching order record
	HoldsExpired        atomic.Int64 // orders abandoned because their customer never arrived
	HoldsUnlisted       atomic.Int64 // waiting orders left off their customer's full list (the sweep releases them)
}

// Snapshot returns the current values by name.
func (c *Counters) Snapshot() map[string]int64 {
	return map[string]int64{
		"emails_sent":          c.EmailsSent.Load(),
		"emails_undeliverable": c.EmailsUndeliverable.Load(),
		"enriched":             c.Enriched.Load(),
		"unknown_level":        c.UnknownLevel.Load(),
		"duplicates":           c.Duplicates.Load(),
		"unpaid_orders":        c.UnpaidOrders.Load(),
		"unmatched_payments":   c.UnmatchedPayments.Load(),
		"holds_expired":        c.HoldsExpired.Load(),
		"holds_unlisted":       c.HoldsUnlisted.Load(),
	}
}
