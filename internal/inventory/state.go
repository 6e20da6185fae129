package inventory

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// TableValue is the group-table value of one key. A product's key holds its ReservedStock; an
// order's key holds an OrderEntry while the order is in flight. Both live in one value because
// an order id may equal a product name, and then both share the key.
type TableValue struct {
	ReservedStock
	Order *OrderEntry `json:"order,omitempty" cbor:"10,keyasint,omitempty"`
	// First is set under an order id's key: the Fingerprint of the id's first CREATED, kept
	// after the order finished, so that a later CREATED of other content (another product,
	// another quantity) reserves nothing that no decision would ever release.
	First string `json:"first,omitempty" cbor:"11,keyasint,omitempty"`
	// Finished is set under an order id's key once the order's final state has been handled:
	// what was sent to its product, so that the final state redelivered sends it again. The
	// first sending may have been lost while this key's state was kept (a callback's writes
	// can fail apart when a broker dies), which held the units of a FAILED order for good.
	Finished *FinishedEntry `json:"finished,omitempty" cbor:"12,keyasint,omitempty"`
}

// FinishedEntry is a finished order's last word to its product. Sending it again is safe: a
// product releases or forgets only an answer it still holds.
type FinishedEntry struct {
	Product  domain.Product    `json:"product" cbor:"1,keyasint,omitempty"`
	Final    domain.OrderState `json:"final" cbor:"2,keyasint,omitempty"`
	Reserved int32             `json:"reserved,omitempty" cbor:"3,keyasint,omitempty"`
}

// empty reports whether nothing is left to keep, so the key can be deleted.
func (v *TableValue) empty() bool {
	return v.Order == nil && v.First == "" && v.Finished == nil && v.Reserved == 0 && len(v.Orders) == 0 && len(v.Applied) == 0 && v.LoopNext == 0
}

// ReservedStock is a product's state: the units reserved, and the answers given to the orders
// still in flight. An order's answer is kept from its reservation until the order's final
// state says to forget it (or to release it), so the value holds only in-flight orders, not
// every order ever seen. Keeping the answer is what makes redelivery safe: a request seen
// again gets the same answer re-sent, which also repairs an answer lost in a crash.
type ReservedStock struct {
	// Reserved is the units held by orders that passed and were not released.
	Reserved int64 `json:"reserved,omitempty" cbor:"1,keyasint,omitempty"`
	// Orders are the in-flight orders' answers, by order id.
	Orders map[string]Answer `json:"orders,omitempty" cbor:"2,keyasint,omitempty"`
	// LatestEventMs is the latest reservation time seen: answers far older than it belong to
	// orders whose final state was lost, and are dropped (their units stay reserved).
	LatestEventMs int64 `json:"latestEventMs,omitempty" cbor:"3,keyasint,omitempty"`
	// Applied maps a request's source ("topic/partition") to the offset of the latest request
	// from it that was applied. Requests of one source are sent in offset order, so a first
	// request (not a resend) of an unknown order at or below it comes from a record that was
	// applied before and whose order has finished since: a redelivered CREATED. A resend may
	// be below it without having been applied (its first sending lost in a crash while a
	// later request of the partition got through), so a resend is never settled by it.
	Applied map[string]int64 `json:"applied,omitempty" cbor:"4,keyasint,omitempty"`
	// LoopNext is one past the offset of the last loopback record that changed this value.
	// Every loopback record of a key comes from one partition of the loopback topic, in
	// offset order, so a record below it is a redelivery of one already applied: exact,
	// whatever its source.
	LoopNext int64 `json:"loopNext,omitempty" cbor:"5,keyasint,omitempty"`
}

// Outcome says how a reservation request was handled.
type Outcome int

// The outcomes of Reserve.
const (
	// Fresh: judged now; the answer is new.
	Fresh Outcome = iota
	// Replayed: the order is in flight and was answered before; the same answer again.
	Replayed
	// Settled: the request was applied before and its order has finished since; nothing to do.
	Settled
	// Stale: a redelivered loopback record, already applied, of an order that has finished
	// since; nothing to do.
	Stale
)

// Answer is what a product answered one order.
type Answer struct {
	Result   domain.ValidationResult `json:"result" cbor:"1,keyasint,omitempty"`
	Reserved int32                   `json:"reserved,omitempty" cbor:"2,keyasint,omitempty"`
	EventMs  int64                   `json:"eventMs" cbor:"3,keyasint,omitempty"`
}

// AnswerRetention bounds how long an answer waits for its order's final state. Orders are
// decided within seconds; a day covers an aggregator outage with a wide margin. A dropped
// answer's units stay reserved, as with MaxAnswers.
const AnswerRetention = 24 * time.Hour

// MaxAnswers bounds the answers a product keeps, so its value stays far below Kafka's message
// size limit even when orders stop being decided (the aggregator down): beyond it the oldest
// answer is dropped. A dropped order's units stay reserved when it ends FAILED (stock is never
// given back twice, so it may be held too long, never oversold), and an order asked again
// after its answer was dropped and lost in a crash is judged again.
const MaxAnswers = 256

// Source identifies the record that asked for a change, for logs and dead letters.
type Source = platform.Source

// Stock is the warehouse's count for a product; Known is false when there is no usable row.
type Stock struct {
	Units int32
	Known bool
}

// Reserve judges an order of quantity units against stock: if stock − reserved − quantity ≥ 0
// the units are reserved and the order passes, otherwise it fails. No stock row fails (the
// reference dropped such orders, which then hung), and so does a negative quantity, which
// would otherwise add stock. An order already answered gets the same answer again and changes
// nothing (Replayed); a loopback record seen before (at, its offset, below LoopNext) changes
// nothing (Stale), and neither does a first request from a source record applied before
// (Settled).
func (r *ReservedStock) Reserve(req ReserveRequest, stock Stock, at int64) (Answer, Outcome) {
	if a, ok := r.Orders[req.OrderID]; ok {
		return a, Replayed
	}
	if at < r.LoopNext {
		return Answer{}, Stale
	}
	r.LoopNext = at + 1
	if r.applied(req.Source) && !req.Resend {
		return Answer{}, Settled
	}
	answer := Answer{Result: domain.Fail, EventMs: req.EventMs}
	if stock.Known && req.Quantity >= 0 && int64(stock.Units)-r.Reserved-int64(req.Quantity) >= 0 {
		r.Reserved += int64(req.Quantity)
		answer = Answer{Result: domain.Pass, Reserved: req.Quantity, EventMs: req.EventMs}
	}
	if r.Orders == nil {
		r.Orders = map[string]Answer{}
	}
	r.Orders[req.OrderID] = answer
	r.LatestEventMs = max(r.LatestEventMs, req.EventMs)
	horizon := r.LatestEventMs - AnswerRetention.Milliseconds()
	maps.DeleteFunc(r.Orders, func(_ string, a Answer) bool { return a.EventMs < horizon })
	for len(r.Orders) > MaxAnswers {
		oldest, oldestMs := "", int64(math.MaxInt64)
		for id, a := range r.Orders {
			if a.EventMs < oldestMs || (a.EventMs == oldestMs && id < oldest) {
				oldest, oldestMs = id, a.EventMs
			}
		}
		delete(r.Orders, oldest)
	}
	return answer, Fresh
}

// applied reports whether a request from src was applied before, and records it if not.
func (r *ReservedStock) applied(src Source) bool {
	source := src.Topic + "/" + strconv.Itoa(int(src.Partition))
	if last, ok := r.Applied[source]; ok && src.Offset <= last {
		return true
	}
	if r.Applied == nil {
		r.Applied = map[string]int64{}
	}
	r.Applied[source] = src.Offset
	return false
}

// Release gives back the units of an order that ended FAILED and forgets it, once, by the
// answer the product gave it. An order the product does not know (released or forgotten
// before, or its answer dropped) gives back nothing: a release can reach a product twice from
// different source records — an order's key that finished, lost its entry to a redelivered
// CREATED and was finished again by a stale verdict and a repeated FAILED decision — and
// releasing by the quantity it carries made stock be given back twice (the reservation
// audit's "reserves 919, the verdicts say 920"). A redelivered loopback record (at below
// LoopNext) changes nothing either. It reports whether anything changed.
func (r *ReservedStock) Release(req ReleaseRequest, at int64) bool {
	if at < r.LoopNext {
		return false
	}
	a, ok := r.Orders[req.OrderID]
	if !ok {
		return false
	}
	r.LoopNext = at + 1
	r.Reserved -= int64(a.Reserved)
	delete(r.Orders, req.OrderID)
	return true
}

// Forget drops an order's answer once the order is VALIDATED: its units stay reserved. It
// reports whether anything changed.
func (r *ReservedStock) Forget(orderID string) bool {
	if _, ok := r.Orders[orderID]; !ok {
		return false
	}
	delete(r.Orders, orderID)
	return true
}

// OrderEntry is an in-flight order's state, under its own key, from its CREATED record until
// its final state; then only TableValue.First and TableValue.Finished stay.
type OrderEntry struct {
	Product domain.Product `json:"product" cbor:"1,keyasint,omitempty"`
	// Result is the verdict; empty while the product's answer is on its way.
	Result domain.ValidationResult `json:"result,omitempty" cbor:"2,keyasint,omitempty"`
	// Reserved is the units the order holds (0 unless it passed).
	Reserved int32 `json:"reserved,omitempty" cbor:"3,keyasint,omitempty"`
	// Final is the order's final state when it arrived before the verdict did.
	Final domain.OrderState `json:"final,omitempty" cbor:"4,keyasint,omitempty"`
}

// LoopMessage is a record on the group's loopback topic: exactly one of its fields is set.
// Reserve, Release and Forget go to a product's key, Verdict back to an order's key.
type LoopMessage struct {
	Reserve *ReserveRequest `json:"reserve,omitempty" cbor:"1,keyasint,omitempty"`
	Release *ReleaseRequest `json:"release,omitempty" cbor:"2,keyasint,omitempty"`
	Forget  *OrderRef       `json:"forget,omitempty" cbor:"3,keyasint,omitempty"`
	Verdict *VerdictRecord  `json:"verdict,omitempty" cbor:"4,keyasint,omitempty"`
}

// ReserveRequest asks a product to judge and reserve for a CREATED order.
type ReserveRequest struct {
	OrderID  string `json:"orderId" cbor:"1,keyasint,omitempty"`
	Quantity int32  `json:"quantity" cbor:"2,keyasint,omitempty"`
	// EventMs is the order's record time, carried because loopback records get their own.
	EventMs int64  `json:"eventMs" cbor:"3,keyasint,omitempty"`
	Source  Source `json:"source" cbor:"4,keyasint,omitempty"`
	// Resend says the order's key asked before without getting an answer (its CREATED was
	// redelivered while the answer was pending): the first request may have been lost.
	Resend bool `json:"resend,omitempty" cbor:"5,keyasint,omitempty"`
}

// ReleaseRequest gives back the units of an order that ended FAILED.
type ReleaseRequest struct {
	OrderID string `json:"orderId" cbor:"1,keyasint,omitempty"`
	// Quantity is what the order's verdict said it reserved (0 for a FAIL); for logs and
	// dead letters: the product releases what its own answer reserved.
	Quantity int32  `json:"quantity" cbor:"2,keyasint,omitempty"`
	Source   Source `json:"source" cbor:"3,keyasint,omitempty"`
}

// OrderRef names the order a forget is about.
type OrderRef struct {
	OrderID string `json:"orderId" cbor:"1,keyasint,omitempty"`
}

// VerdictRecord tells an order's key what its product decided.
type VerdictRecord struct {
	Result   domain.ValidationResult `json:"result,omitempty" cbor:"1,keyasint,omitempty"`
	Reserved int32                   `json:"reserved,omitempty" cbor:"2,keyasint,omitempty"`
	// Settled says the request was handled long ago and its order has finished: the order's
	// entry, created again by a redelivery, can go.
	Settled bool `json:"settled,omitempty" cbor:"3,keyasint,omitempty"`
}

// Validate refuses loopback records this service did not write, so platform.Decode
// dead-letters them instead of acting on them.
func (m LoopMessage) Validate() error {
	set := 0
	for _, present := range []bool{m.Reserve != nil, m.Release != nil, m.Forget != nil, m.Verdict != nil} {
		if present {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("inventory loopback record: %d of reserve, release, forget, verdict set, want exactly one", set)
	}
	switch {
	case m.Reserve != nil && (m.Reserve.OrderID == "" || m.Reserve.Source.Topic == ""):
		return errors.New("inventory loopback record: reserve without order id or source")
	case m.Release != nil && (m.Release.OrderID == "" || m.Release.Source.Topic == "" || m.Release.Quantity < 0):
		return errors.New("inventory loopback record: release without order id, source or a quantity")
	case m.Forget != nil && m.Forget.OrderID == "":
		return errors.New("inventory loopback record: forget without order id")
	case m.Verdict != nil && !m.Verdict.Settled && m.Verdict.Result != domain.Pass && m.Verdict.Result != domain.Fail:
		return fmt.Errorf("inventory loopback record: verdict %q is neither PASS nor FAIL", m.Verdict.Result)
	}
	return nil
}
