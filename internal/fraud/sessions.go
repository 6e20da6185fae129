package fraud

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
)

// The rule of SPEC.md.
const (
	// Limit is the session total at or above which an order fails.
	Limit = 2000.0
	// SessionGap is the inactivity gap that ends a customer's session. Orders exactly one gap
	// apart are in the same session, as in Kafka Streams' SessionWindows.
	SessionGap = time.Hour
	// SessionRetention is how far behind the customer's latest event time a session is kept
	// after its last order. It matches what the reference's SessionWindows.with(1h) kept
	// (gap plus the default 23 h grace) and bounds the state: an order is remembered, for
	// replays and for merging with out-of-order orders, for at least this long in event time.
	SessionRetention = 24 * time.Hour
	// MemoryBudget bounds, in encoded bytes, the orders a customer's state remembers (ids with
	// their verdicts), so that no customer's value nears Kafka's 1 MiB record limit whatever
	// its orders' ids or count. Only PASS verdicts are remembered (see Apply); at the budget, the
	// session an order falls in is marked full and that order and every later one in it FAIL.
	MemoryBudget = 64 << 10
	// rememberOverhead is what one remembered order costs beyond its JSON-encoded id: the
	// separators and a CountedOrder with a 20-digit time and a long float.
	rememberOverhead = 96
)

// CustomerSessions is the fraud service's state for one customer (its group-table value).
//
// Invariant: sessions are sorted by start, and any two are more than SessionGap apart; the
// session holding the latest event is never expired, so a customer with state always has at
// least one session.
type CustomerSessions struct {
	// LatestEventMs is the highest event time (Unix ms) of any order counted: the customer's
	// stream time, against which sessions expire.
	LatestEventMs int64     `json:"latestEventMs" cbor:"1,keyasint,omitempty"`
	Sessions      []Session `json:"sessions" cbor:"2,keyasint,omitempty"`
	// MemoryBytes is what the remembered orders cost against MemoryBudget. State written
	// before the budget existed has none; it is counted again on first use.
	MemoryBytes int `json:"memoryBytes,omitempty" cbor:"3,keyasint,omitempty"`
	// FirstOrder is set under an order id's key, not a customer's: the Fingerprint of the id's
	// first CREATED, so that a later CREATED of other content is not counted (SPEC's "first
	// write wins per id"). Customer keys are 8 raw bytes, which an order id could spell; one
	// value holding both halves keeps such a collision harmless.
	FirstOrder string `json:"firstOrder,omitempty" cbor:"4,keyasint,omitempty"`
	// FirstEventMs is, with FirstOrder, the event time that order was first given. The event
	// time is bounded by the clock when the order is first processed (platform.EventTime);
	// a redelivery, perhaps hours later, must be judged at the same time, not a later bound.
	FirstEventMs int64 `json:"firstEventMs,omitempty" cbor:"5,keyasint,omitempty"`
}

// Session is one session window of a customer.
type Session struct {
	StartMs int64   `json:"startMs" cbor:"1,keyasint,omitempty"`
	EndMs   int64   `json:"endMs" cbor:"2,keyasint,omitempty"`
	Total   float64 `json:"total" cbor:"3,keyasint"`
	// Full marks a session whose customer reached MemoryBudget while it was under the limit:
	// it is judged as over the limit from then on.
	Full bool `json:"full,omitempty" cbor:"4,keyasint,omitempty"`
	// Orders holds the orders that PASSed in the session, so that a replayed one is recognised
	// and answered PASS again instead of being counted again. A FAIL needs no memory: a session
	// only ever grows (its total rises, merges add to it, Full stays), so a replayed FAIL is
	// judged FAIL again — or, once its session expired, it is late, which FAILs too.
	Orders map[string]CountedOrder `json:"orders" cbor:"5,keyasint,omitempty"`
}

// CountedOrder is one order's contribution to its session.
type CountedOrder struct {
	EventMs int64                   `json:"eventMs" cbor:"1,keyasint,omitempty"`
	Value   float64                 `json:"value" cbor:"2,keyasint"`
	Result  domain.ValidationResult `json:"result" cbor:"3,keyasint,omitempty"`
}

// Verdict is the outcome of applying one order to a customer's sessions.
type Verdict struct {
	Result domain.ValidationResult
	// Total is the session total the result was judged on (for a replay, the session's
	// current total).
	Total float64
	// Replayed means the order had been counted before: state is unchanged, the stored
	// result is returned.
	Replayed bool
	// Late means the order's event time is older than the retention horizon: it can no longer
	// be placed in a session (nor told apart from a replay of an expired one), so it fails
	// without being counted. The reference dropped such orders, which left them unanswered.
	Late bool
	// Full means the order FAILed only because its customer's state is at MemoryBudget.
	Full bool
}

// Changed reports whether applying the order modified the state, i.e. whether it must be
// stored.
func (v Verdict) Changed() bool { return !v.Replayed && !v.Late }

// Apply counts an order of value at event time eventMs in the customer's session, merging the
// sessions it bridges, and returns its verdict. A negative value counts as zero: a refund-like
// order must not lower the total and let later orders through. value must be finite.
func (c *CustomerSessions) Apply(orderID string, eventMs int64, value float64) Verdict {
	for _, s := range c.Sessions {
		if counted, ok := s.Orders[orderID]; ok {
			return Verdict{Result: counted.Result, Total: s.Total, Replayed: true}
		}
	}
	if len(c.Sessions) == 0 {
		// A fresh customer has no stream time yet (event times may be negative: records
		// without a timestamp read as the zero time).
		c.LatestEventMs = eventMs
	} else if eventMs < c.LatestEventMs-SessionRetention.Milliseconds() {
		return Verdict{Result: domain.Fail, Late: true}
	}

	c.account()
	counted := max(value, 0)
	merged := Session{StartMs: eventMs, EndMs: eventMs, Total: counted, Orders: map[string]CountedOrder{}}
	gap := SessionGap.Milliseconds()
	kept := c.Sessions[:0:0]
	for _, s := range c.Sessions {
		if s.EndMs < eventMs-gap || s.StartMs > eventMs+gap {
			kept = append(kept, s)
			continue
		}
		merged.StartMs = min(merged.StartMs, s.StartMs)
		merged.EndMs = max(merged.EndMs, s.EndMs)
		merged.Total = addCapped(merged.Total, s.Total)
		merged.Full = merged.Full || s.Full
		for id, o := range s.Orders {
			merged.Orders[id] = o
		}
	}
	verdict := Verdict{Result: domain.Fail, Total: merged.Total}
	switch cost := rememberCost(orderID); {
	case merged.Total >= Limit || merged.Full:
	case c.MemoryBytes+cost > MemoryBudget:
		merged.Full = true
		verdict.Full = true
	default:
		verdict.Result = domain.Pass
		merged.Orders[orderID] = CountedOrder{EventMs: eventMs, Value: counted, Result: domain.Pass}
		c.MemoryBytes += cost
	}

	kept = append(kept, merged)
	slices.SortFunc(kept, func(a, b Session) int { return cmp.Compare(a.StartMs, b.StartMs) })
	c.Sessions = kept
	c.LatestEventMs = max(c.LatestEventMs, eventMs)
	c.expire()
	return verdict
}

// expire removes sessions that ended more than SessionRetention before the latest event.
func (c *CustomerSessions) expire() {
	horizon := c.LatestEventMs - SessionRetention.Milliseconds()
	c.Sessions = slices.DeleteFunc(c.Sessions, func(s Session) bool {
		if s.EndMs >= horizon {
			return false
		}
		for id := range s.Orders {
			c.MemoryBytes -= rememberCost(id)
		}
		return true
	})
}

// account counts MemoryBytes for state that does not carry it (written before the budget, or
// by hand). Older state also remembered FAILs; they are counted until they expire.
func (c *CustomerSessions) account() {
	if c.MemoryBytes > 0 {
		return
	}
	for _, s := range c.Sessions {
		for id := range s.Orders {
			c.MemoryBytes += rememberCost(id)
		}
	}
}

// rememberCost is what remembering the order id costs against MemoryBudget: its id as JSON
// writes it (escapes can make it six times its length) plus a verdict. The table is CBOR now,
// which is smaller; counting in JSON keeps the bound for values earlier versions wrote and
// leaves the budget's meaning unchanged.
func rememberCost(orderID string) int {
	encoded, err := json.Marshal(orderID)
	if err != nil {
		// A Go string always encodes (invalid UTF-8 becomes U+FFFD); count the worst case.
		return 6*len(orderID) + 2 + rememberOverhead
	}
	return len(encoded) + rememberOverhead
}

// addCapped adds two non-negative totals without reaching +Inf, which JSON cannot store.
func addCapped(a, b float64) float64 {
	if sum := a + b; !math.IsInf(sum, 0) {
		return sum
	}
	return math.MaxFloat64
}
