package email

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// JoinWindow is how far apart the event times of an order record and a payment may be for the
// two to match (SPEC.md: within 1 minute, whichever arrives first; the bound is inclusive, as
// in Kafka Streams' JoinWindows).
const JoinWindow = time.Minute

// maxPendingPayments bounds the payments kept for one order while it waits for a match, so that
// a stream of payments for one order id cannot grow its state without limit. Order records
// need no such bound: they are kept one per order state, so at most four.
const maxPendingPayments = 8

// heldListBudget bounds, in encoded bytes, the list of orders waiting for one missing customer,
// so that no customer key's value nears Kafka's 1 MiB record limit however many orders name
// that customer. An order that does not fit is not listed: it still waits in its own state,
// and the periodic sweep, which looks up the customer of every waiting order, releases it at
// the next sweep after its customer's arrival instead of at once (sweeps come every
// SweepInterval, up to ten intervals apart on a large state: service.RunSweeps).
const heldListBudget = 64 << 10

// heldOverhead is what one listed order costs beyond its JSON-encoded id: separators and a
// time in RFC 3339 with nanoseconds and a zone offset.
const heldOverhead = 48

// stamp is a time kept in the group table or a loop record. CBOR's own time forms are whole
// seconds or a float that cannot hold nanoseconds at today's dates, and the join window's
// bound is compared to the nanosecond, so a stamp is written as Unix nanoseconds (an integer),
// or as [seconds, nanoseconds] outside the years 1678-2262 that an int64 of nanoseconds holds
// (a record's timestamp can be anything), and the zero time as null. JSON written by earlier
// versions is read through time.Time's own methods, which the embedding promotes.
type stamp struct{ time.Time }

// nanosSpan is where UnixNano is exact.
var nanosSpan = [2]time.Time{time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)}

// MarshalCBOR writes the time as described on stamp.
func (s stamp) MarshalCBOR() ([]byte, error) {
	switch {
	case s.IsZero():
		return cbor.Marshal(nil)
	case s.Before(nanosSpan[0]) || s.After(nanosSpan[1]):
		return cbor.Marshal([2]int64{s.Unix(), int64(s.Nanosecond())})
	}
	return cbor.Marshal(s.UnixNano())
}

// UnmarshalCBOR reads what MarshalCBOR wrote.
func (s *stamp) UnmarshalCBOR(data []byte) error {
	// The first byte says which form (null, an array, an integer); decoding into `any`
	// first would decode every stamp twice, and the email table holds several per value.
	switch {
	case len(data) == 1 && data[0] == 0xf6: // null
		*s = stamp{}
		return nil
	case len(data) > 0 && data[0]>>5 == 4: // array
		var parts [2]int64
		if err := cbor.Unmarshal(data, &parts); err != nil || parts[1] < 0 || parts[1] >= 1e9 {
			return fmt.Errorf("decode time: %x is not [seconds, nanoseconds]", data)
		}
		*s = stamp{time.Unix(parts[0], parts[1]).UTC()}
		return nil
	}
	var ns int64
	if err := cbor.Unmarshal(data, &ns); err != nil {
		return fmt.Errorf("decode time: %w", err)
	}
	*s = stamp{time.Unix(0, ns).UTC()}
	return nil
}

// entry is the value of the group table. A key is either an order id (join state) or a
// customer key (the orders waiting for that customer). The two live in separate fields so that
// an order id whose bytes happen to equal a customer key cannot corrupt either.
type entry struct {
	Order    *orderState    `json:"order,omitempty" cbor:"1,keyasint,omitempty"`
	Customer *customerState `json:"customer,omitempty" cbor:"2,keyasint,omitempty"`
}

// orderState is everything the service remembers about one order id.
type orderState struct {
	// First is the first order record seen: its customer is the one looked up, and it is what
	// the enriched record describes.
	First *domain.Order `json:"first,omitempty" cbor:"1,keyasint,omitempty"`
	// Orders and Payments are the records still waiting for a partner within the window. They
	// are emptied once a pair matches and dropped after the join retention.
	Orders   []pendingOrder   `json:"orders,omitempty" cbor:"2,keyasint,omitempty"`
	Payments []pendingPayment `json:"payments,omitempty" cbor:"3,keyasint,omitempty"`
	// Match is the pair that matched, kept until its email has been sent.
	Match *match `json:"match,omitempty" cbor:"4,keyasint,omitempty"`
	// Waiting is set while the order's customer is missing from the customers table.
	Waiting *waiting `json:"waiting,omitempty" cbor:"5,keyasint,omitempty"`
	// Enriched, Emailed and Abandoned are the outcomes, each reached at most once per order.
	Enriched  *enrichedOutcome `json:"enriched,omitempty" cbor:"6,keyasint,omitempty"`
	Emailed   *outcome         `json:"emailed,omitempty" cbor:"7,keyasint,omitempty"`
	Abandoned *outcome         `json:"abandoned,omitempty" cbor:"8,keyasint,omitempty"`
	// Updated is the processing time of the last change; retention counts from it.
	Updated stamp `json:"updated" cbor:"9,keyasint"`
}

type pendingOrder struct {
	Order     domain.Order `json:"order" cbor:"1,keyasint,omitempty"`
	EventTime stamp        `json:"eventTime" cbor:"2,keyasint"`
	SeenAt    stamp        `json:"seenAt" cbor:"3,keyasint"`
}

type pendingPayment struct {
	Payment   domain.Payment `json:"payment" cbor:"1,keyasint,omitempty"`
	EventTime stamp          `json:"eventTime" cbor:"2,keyasint"`
	SeenAt    stamp          `json:"seenAt" cbor:"3,keyasint"`
}

type match struct {
	Order   domain.Order   `json:"order" cbor:"1,keyasint,omitempty"`
	Payment domain.Payment `json:"payment" cbor:"2,keyasint,omitempty"`
}

type waiting struct {
	CustomerID int64 `json:"customerId" cbor:"1,keyasint,omitempty"`
	Since      stamp `json:"since" cbor:"2,keyasint"`
}

// source identifies the record that produced an outcome. When the same record is delivered
// again (a replay after a crash, before its offset was committed), the outcome's outputs are
// emitted again, because they may not have reached Kafka the first time.
type source = platform.Source

type outcome struct {
	At     stamp  `json:"at" cbor:"1,keyasint"`
	Source source `json:"source" cbor:"2,keyasint,omitempty"`
	// Failed marks an email the mail server refused permanently (ErrUndeliverable).
	Failed bool `json:"failed,omitempty" cbor:"3,keyasint,omitempty"`
}

// enrichedOutcome keeps the record that was emitted, so a replay can emit it again unchanged.
type enrichedOutcome struct {
	outcome
	Topic  string               `json:"topic" cbor:"10,keyasint,omitempty"`
	Record domain.OrderEnriched `json:"record" cbor:"11,keyasint,omitempty"`
}

// customerState lists the orders waiting for one customer: order id → processing time the
// wait started.
type customerState struct {
	Waiting map[string]stamp `json:"waiting,omitempty" cbor:"1,keyasint,omitempty"`
	// Bytes is what Waiting costs against heldListBudget; state written before the budget
	// existed has none and is counted again on first use.
	Bytes int `json:"bytes,omitempty" cbor:"2,keyasint,omitempty"`
}

// list adds an order to the waiters unless it is listed already or would not fit the budget;
// it reports whether the state changed, and false in fits when the order was left out.
func (c *customerState) list(orderID string, since time.Time) (changed, fits bool) {
	if _, ok := c.Waiting[orderID]; ok {
		return false, true
	}
	if c.Bytes == 0 {
		for id := range c.Waiting {
			c.Bytes += heldCost(id)
		}
	}
	cost := heldCost(orderID)
	if c.Bytes+cost > heldListBudget {
		return false, false
	}
	if c.Waiting == nil {
		c.Waiting = map[string]stamp{}
	}
	c.Waiting[orderID] = stamp{since}
	c.Bytes += cost
	return true, true
}

// heldCost is what listing orderID costs: its id as JSON writes it (escapes can make it six
// times its length) plus the time. The table is CBOR now, which is smaller; counting in JSON
// keeps the bound for values earlier versions wrote.
func heldCost(orderID string) int {
	encoded, err := json.Marshal(orderID)
	if err != nil {
		return 6*len(orderID) + 2 + heldOverhead
	}
	return len(encoded) + heldOverhead
}

// withinWindow reports whether two event times are close enough to join.
func withinWindow(a, b time.Time) bool {
	// Not |a-b| <= window: Sub saturates for times centuries apart (a zero time against
	// today's), and the negation of the most negative duration is itself.
	return !a.Before(b.Add(-JoinWindow)) && !a.After(b.Add(JoinWindow))
}

// done reports whether the order needs nothing more: its email is settled (sent, refused or
// abandoned) and so is its enrichment.
func (s *orderState) done() bool {
	if s.Abandoned != nil {
		return true
	}
	return s.Emailed != nil && s.Enriched != nil
}

// empty reports whether the state holds nothing at all.
func (s *orderState) empty() bool {
	return s.First == nil && len(s.Orders) == 0 && len(s.Payments) == 0 && s.Match == nil &&
		s.Waiting == nil && s.Enriched == nil && s.Emailed == nil && s.Abandoned == nil
}

// emailSettled reports whether no email may be sent for this order any more.
func (s *orderState) emailSettled() bool { return s.Emailed != nil || s.Abandoned != nil }

// addOrder keeps an order record as a join candidate, one per order state: a redelivered record
// changes nothing. It reports whether the state changed.
func (s *orderState) addOrder(o domain.Order, eventTime, now time.Time) bool {
	changed := false
	if s.First == nil {
		first := o
		s.First = &first
		changed = true
	}
	if s.emailSettled() || s.Match != nil {
		return changed
	}
	for _, p := range s.Orders {
		if p.Order.State == o.State {
			return changed
		}
	}
	s.Orders = append(s.Orders, pendingOrder{Order: o, EventTime: stamp{eventTime}, SeenAt: stamp{now}})
	return true
}

// addPayment keeps a payment as a join candidate, once per payment id; beyond
// maxPendingPayments the one seen longest ago is dropped. It reports whether the state changed.
func (s *orderState) addPayment(p domain.Payment, eventTime, now time.Time) bool {
	if s.emailSettled() || s.Match != nil {
		return false
	}
	for _, q := range s.Payments {
		if q.Payment.ID == p.ID {
			return false
		}
	}
	s.Payments = append(s.Payments, pendingPayment{Payment: p, EventTime: stamp{eventTime}, SeenAt: stamp{now}})
	if len(s.Payments) > maxPendingPayments {
		s.Payments = s.Payments[len(s.Payments)-maxPendingPayments:]
	}
	return true
}

// join moves the first order/payment pair within the window, in arrival order, into Match and
// forgets the other candidates: one order sends one email. It reports whether a pair matched.
func (s *orderState) join() bool {
	if s.Match != nil || s.emailSettled() {
		return false
	}
	for _, o := range s.Orders {
		for _, p := range s.Payments {
			if withinWindow(o.EventTime.Time, p.EventTime.Time) {
				s.Match = &match{Order: o.Order, Payment: p.Payment}
				s.Orders, s.Payments = nil, nil
				return true
			}
		}
	}
	return false
}

// Retention bounds how long state is kept; every duration counts processing time from when the
// service stored the record, not event time, so a backlog replayed after downtime still joins.
type Retention struct {
	// Join is how long an order record or payment waits for a partner before it is dropped
	// as unmatched. It must cover the window plus the lag between the two topics.
	Join time.Duration
	// Hold is how long an order waits for a missing customer before it is given up.
	Hold time.Duration
	// Dedup is how long a finished order is remembered, so that redelivered records and later
	// state changes of the order send nothing again.
	Dedup time.Duration
}

// DefaultRetention are the retention defaults.
func DefaultRetention() Retention {
	return Retention{Join: 10 * time.Minute, Hold: time.Hour, Dedup: 7 * 24 * time.Hour}
}

// expiry says what one sweep of one order dropped.
type expiry struct {
	unpaidOrder      bool // the order's records expired without a payment
	unmatchedPayment bool // payments expired without an order record
	holdExpired      bool // the customer never arrived
	forget           bool // nothing is left worth keeping
}

// expire drops what has outlived its retention at now. An order whose customer is still missing
// after the hold is abandoned: it will send nothing, and later records of it are ignored.
func (s *orderState) expire(now time.Time, r Retention) expiry {
	var x expiry
	joinCutoff := now.Add(-r.Join)
	if len(s.Orders) > 0 {
		kept := s.Orders[:0]
		for _, o := range s.Orders {
			if o.SeenAt.After(joinCutoff) {
				kept = append(kept, o)
			}
		}
		if len(kept) == 0 {
			x.unpaidOrder = true
			kept = nil
		}
		s.Orders = kept
	}
	if len(s.Payments) > 0 {
		kept := s.Payments[:0]
		for _, p := range s.Payments {
			if p.SeenAt.After(joinCutoff) {
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			x.unmatchedPayment = true
			kept = nil
		}
		s.Payments = kept
	}
	if s.Waiting != nil && !s.Waiting.Since.After(now.Add(-r.Hold)) {
		x.holdExpired = true
		s.Waiting = nil
		s.Match, s.Orders, s.Payments = nil, nil, nil
		s.Abandoned = &outcome{At: stamp{now}}
	}
	pending := len(s.Orders) > 0 || len(s.Payments) > 0 || s.Match != nil || s.Waiting != nil
	if !pending && !s.Updated.After(now.Add(-r.Dedup)) {
		x.forget = true
	}
	if !pending && s.Enriched == nil && s.Emailed == nil && s.Abandoned == nil {
		// Only expired candidates were here: nothing to deduplicate against.
		x.forget = true
	}
	return x
}

// expireWaiters drops waiters whose hold has run out; it reports whether any remain.
func (c *customerState) expireWaiters(now time.Time, r Retention) bool {
	for id, since := range c.Waiting {
		if !since.After(now.Add(-r.Hold)) {
			delete(c.Waiting, id)
			c.Bytes = max(c.Bytes-heldCost(id), 0)
		}
	}
	return len(c.Waiting) > 0
}
