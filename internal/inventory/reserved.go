package inventory

import (
	"maps"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
)

// ReservationRetention is how far behind the product's latest event time an order's entry is
// kept. Within it, a redelivered order is answered with its first verdict and a FAILED order
// releases what it reserved; after it, the entry is dropped and its units stay counted in
// ReservedStock.Reserved. A day of event time covers redelivery (seconds to minutes) and the
// aggregator's FAILED write-back with a wide margin, and matches the fraud sessions' horizon.
const ReservationRetention = 24 * time.Hour

// ReservedStock is the inventory service's state for one product (its group-table value).
//
// Invariant: the entry with the latest event time is never dropped, so a product with state
// always has at least one entry, and an empty Orders means a product never seen.
type ReservedStock struct {
	// Reserved is the units held by PASS orders not released, including those whose entries
	// have been dropped after ReservationRetention.
	Reserved int64 `json:"reserved"`
	// LatestEventMs is the highest event time (Unix ms) of any entry: the product's stream time,
	// against which entries expire.
	LatestEventMs int64 `json:"latestEventMs"`
	// Orders are the entries of the orders seen within the retention, by order id.
	Orders map[string]Reservation `json:"orders"`
}

// Reservation is what one order did to a product's stock.
type Reservation struct {
	EventMs int64 `json:"eventMs"`
	// Result is the verdict the order got; empty when only its release has been seen.
	Result domain.ValidationResult `json:"result,omitempty"`
	// Quantity is the units the order reserved (0 unless Result is PASS).
	Quantity int32 `json:"quantity,omitempty"`
	// Released means the order ended FAILED and its units went back to the stock.
	Released bool `json:"released,omitempty"`
}

// Outcome is the result of one reservation attempt.
type Outcome struct {
	Result domain.ValidationResult
	// Replayed means the order had been judged before: state is unchanged and the stored
	// verdict is returned.
	Replayed bool
	// Late means the order is older than the retention horizon: it might be a redelivery of an
	// order whose entry was dropped, so it fails without reserving rather than risk holding
	// its units twice.
	Late bool
}

// Changed reports whether the state must be stored.
func (o Outcome) Changed() bool { return !o.Replayed && !o.Late }

// Stock is the warehouse's count for a product; Known is false when there is no usable row.
type Stock struct {
	Units int32
	Known bool
}

// Reserve judges an order of quantity units at event time eventMs against stock: if
// stock − reserved − quantity ≥ 0 the units are reserved and the order passes, otherwise it
// fails. An order without a stock row fails (the reference dropped it and left it
// unanswered), and so does a negative quantity, which would otherwise add stock.
func (r *ReservedStock) Reserve(orderID string, eventMs int64, quantity int32, stock Stock) Outcome {
	entry, seen := r.Orders[orderID]
	if seen && entry.Result != "" {
		return Outcome{Result: entry.Result, Replayed: true}
	}
	if !seen && r.late(eventMs) {
		return Outcome{Result: domain.Fail, Late: true}
	}

	result := domain.Fail
	switch {
	case entry.Released:
		// Its FAILED write-back came first: the order is over, so it must not hold stock.
	case !stock.Known || quantity < 0:
	case int64(stock.Units)-r.Reserved-int64(quantity) >= 0:
		result = domain.Pass
		r.Reserved += int64(quantity)
		entry.Quantity = quantity
	}
	entry.Result = result
	if !seen {
		entry.EventMs = eventMs
	}
	r.put(orderID, entry)
	return Outcome{Result: result}
}

// Release gives back the units reserved by an order that ended FAILED, once. A release
// arriving before the order's reservation is remembered, so that the order is then refused
// instead of holding stock for an order that is already over. It reports whether the state
// changed.
func (r *ReservedStock) Release(orderID string, eventMs int64) bool {
	entry, seen := r.Orders[orderID]
	switch {
	case seen && entry.Released:
		return false
	case seen:
		entry.Released = true
		r.Reserved -= int64(entry.Quantity)
		r.Orders[orderID] = entry
		return true
	case r.late(eventMs):
		// The entry, if there was one, has been dropped: its units stay reserved, as the
		// reference kept every reservation.
		return false
	}
	r.put(orderID, Reservation{EventMs: eventMs, Released: true})
	return true
}

// late reports whether an order unknown to the state is older than the retention horizon.
func (r *ReservedStock) late(eventMs int64) bool {
	return len(r.Orders) > 0 && eventMs < r.LatestEventMs-ReservationRetention.Milliseconds()
}

// put stores a new or updated entry, advances stream time and drops expired entries.
func (r *ReservedStock) put(orderID string, entry Reservation) {
	if len(r.Orders) == 0 {
		// A product never seen has no stream time yet (event times may be negative: records
		// without a timestamp read as the zero time).
		r.Orders = map[string]Reservation{}
		r.LatestEventMs = entry.EventMs
	}
	r.Orders[orderID] = entry
	r.LatestEventMs = max(r.LatestEventMs, entry.EventMs)
	horizon := r.LatestEventMs - ReservationRetention.Milliseconds()
	maps.DeleteFunc(r.Orders, func(_ string, e Reservation) bool { return e.EventMs < horizon })
}
