package inventory

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/domain"
)

// TableValue is the group-table value of one key. A product's key holds its ReservedStock; an
// order's key holds an OrderEntry while the order is in flight. Both live in one value because
// an order id may equal a product name, and then both share the key.
type TableValue struct {
	ReservedStock
	Order *OrderEntry `json:"order,omitempty"`
}

// empty reports whether nothing is left to keep, so the key can be deleted.
func (v *TableValue) empty() bool {
	return v.Order == nil && v.Reserved == 0 && len(v.Applied) == 0
}

// ReservedStock is a product's state, and its size does not grow with the orders seen: the
// units reserved, and, per source partition, the offset of the latest record applied to it.
type ReservedStock struct {
	// Reserved is the units held by orders that passed and were not released.
	Reserved int64 `json:"reserved,omitempty"`
	// Applied maps a source ("topic/partition") to the offset of the latest record of it that
	// changed this product. Records of one source reach a product in offset order, so a
	// record at or below it is a redelivery, already applied.
	Applied map[string]int64 `json:"applied,omitempty"`
}

// Source identifies the record that asked for a change, to recognise its redelivery.
type Source struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// sourceOf is the record being processed.
func sourceOf(ctx goka.Context) Source {
	return Source{Topic: string(ctx.Topic()), Partition: ctx.Partition(), Offset: ctx.Offset()}
}

func (s Source) key() string { return s.Topic + "/" + strconv.Itoa(int(s.Partition)) }

// Stock is the warehouse's count for a product; Known is false when there is no usable row.
type Stock struct {
	Units int32
	Known bool
}

// applies reports whether a record from src is new to this product, and records it if so.
func (r *ReservedStock) applies(src Source) bool {
	if last, ok := r.Applied[src.key()]; ok && src.Offset <= last {
		return false
	}
	if r.Applied == nil {
		r.Applied = map[string]int64{}
	}
	r.Applied[src.key()] = src.Offset
	return true
}

// Reserve judges an order of quantity units against stock: if stock − reserved − quantity ≥ 0
// the units are reserved and the order passes, otherwise it fails. No stock row fails (the
// reference dropped such orders, which then hung), and so does a negative quantity, which
// would otherwise add stock. applied is false for a redelivered request: nothing changes, and
// the verdict of its first delivery is already on its way.
func (r *ReservedStock) Reserve(req ReserveRequest, stock Stock) (result domain.ValidationResult, applied bool) {
	if !r.applies(req.Source) {
		return "", false
	}
	if stock.Known && req.Quantity >= 0 && int64(stock.Units)-r.Reserved-int64(req.Quantity) >= 0 {
		r.Reserved += int64(req.Quantity)
		return domain.Pass, true
	}
	return domain.Fail, true
}

// Release gives back units an order reserved; it reports false for a redelivered request.
func (r *ReservedStock) Release(req ReleaseRequest) bool {
	if !r.applies(req.Source) {
		return false
	}
	r.Reserved -= int64(req.Quantity)
	return true
}

// OrderEntry is an in-flight order's state, under its own key, from its CREATED record until
// its final state: deleted then, so the table holds only orders in flight.
type OrderEntry struct {
	Product domain.Product `json:"product"`
	// Result is the verdict; empty while the product's answer is on its way.
	Result domain.ValidationResult `json:"result,omitempty"`
	// Reserved is the units the order holds (0 unless it passed).
	Reserved int32 `json:"reserved,omitempty"`
	// Final is the order's final state when it arrived before the verdict did.
	Final domain.OrderState `json:"final,omitempty"`
}

// LoopMessage is a record on the group's loopback topic: exactly one of its fields is set.
// Reserve and Release go to a product's key, Verdict back to an order's key.
type LoopMessage struct {
	Reserve *ReserveRequest `json:"reserve,omitempty"`
	Release *ReleaseRequest `json:"release,omitempty"`
	Verdict *VerdictRecord  `json:"verdict,omitempty"`
}

// ReserveRequest asks a product to judge and reserve for a CREATED order.
type ReserveRequest struct {
	OrderID  string `json:"orderId"`
	Quantity int32  `json:"quantity"`
	Source   Source `json:"source"`
}

// ReleaseRequest gives back the units of an order that ended FAILED.
type ReleaseRequest struct {
	OrderID  string `json:"orderId"`
	Quantity int32  `json:"quantity"`
	Source   Source `json:"source"`
}

// VerdictRecord tells an order's key what its product decided.
type VerdictRecord struct {
	Result   domain.ValidationResult `json:"result"`
	Reserved int32                   `json:"reserved,omitempty"`
}

// Validate refuses loopback records this service did not write, so platform.Decode
// dead-letters them instead of acting on them.
func (m LoopMessage) Validate() error {
	set := 0
	for _, present := range []bool{m.Reserve != nil, m.Release != nil, m.Verdict != nil} {
		if present {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("inventory loopback record: %d of reserve, release, verdict set, want exactly one", set)
	}
	switch {
	case m.Reserve != nil && (m.Reserve.OrderID == "" || m.Reserve.Source.Topic == ""):
		return errors.New("inventory loopback record: reserve without order id or source")
	case m.Release != nil && (m.Release.OrderID == "" || m.Release.Source.Topic == "" || m.Release.Quantity < 0):
		return errors.New("inventory loopback record: release without order id, source or a quantity")
	case m.Verdict != nil && m.Verdict.Result != domain.Pass && m.Verdict.Result != domain.Fail:
		return fmt.Errorf("inventory loopback record: verdict %q is neither PASS nor FAIL", m.Verdict.Result)
	}
	return nil
}
