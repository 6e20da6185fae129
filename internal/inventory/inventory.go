// Package inventory is the Inventory validator: for every CREATED order it checks the
// warehouse stock of the order's product against what earlier orders reserved, reserves the
// quantity when it fits, and emits one INVENTORY_CHECK verdict to order-validations — PASS
// when stock − reserved − quantity ≥ 0, FAIL otherwise or when the product has no stock row.
// When the validations aggregator writes an order back as FAILED, its reservation is released.
//
// It is one goka processor over two kinds of key in its group table:
//
//   - An order's key (records of `orders`): a small OrderEntry from CREATED until the order's
//     final state, and for good the fingerprint of the id's first CREATED (TableValue.First),
//     so that a later CREATED of other content reserves nothing, and what the final state told
//     the product (TableValue.Finished), sent again if the final state is redelivered. The
//     table thus keeps one
//     small entry per order id, as the Orders view and the aggregator do; each value stays
//     small. A CREATED order is sent as a ReserveRequest to its product's
//     key on the group's loopback topic (copartitioned with `warehouse-inventory`); the verdict
//     comes back as a VerdictRecord. A redelivered CREATED gets its stored verdict again; a
//     FAILED order sends its units back in a ReleaseRequest.
//   - A product's key: its ReservedStock — the units reserved and the answers given to orders
//     still in flight, forgotten (or released) when the order's final state arrives, so it
//     holds in-flight orders only (at most MaxAnswers). One callback joins the stock row,
//     checks, reserves and emits the verdict, so no other order of the product can interleave.
//     A request seen again (a redelivery, or a resend of a request whose answer was lost in a
//     crash) gets the same answer sent again and changes nothing; a redelivered loopback record
//     is recognised exactly by its own offset (LoopNext), a resend by its flag.
//
// The reference kept a count per product only; the first version of this service kept every
// order of the last day in the product's value, which grew until it passed Kafka's message
// size limit and cost most of the service's CPU in re-encoding. Per-order facts live under the
// order's own key instead.
package inventory

import (
	"context"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/service"
)

// Config configures the Inventory service: its Kafka settings and admin address.
type Config = service.ProcessorConfig

// DefaultConfig returns the defaults (admin port :9103).
func DefaultConfig() Config { return service.NewProcessorConfig(":9103") }

// loopCodec encodes and decodes loopback records, strictly: a record with fields this service
// never writes was not written by us. The loop edge itself is declared with codec.Bytes so
// that a record that does not decode is dead-lettered instead of stopping the processor.
var loopCodec = platform.StateCodec[LoopMessage]{Strict: true}

// tableCodec encodes the group-table values.
var tableCodec platform.StateCodec[TableValue]

// Graph is the processor's topology: orders in, requests to products and verdicts back to
// orders through the loopback topic, stock joined from warehouse-inventory, state in the group
// table, verdicts out, undecodable records to the dead-letter topic.
func Graph(n platform.Names, codecs *platform.Codecs) *goka.GroupGraph {
	p := processing{validations: n.Stream(platform.TopicOrderValidations), stock: n.Table(platform.TopicWarehouseInventory)}
	return goka.DefineGroup(n.Group(platform.GroupInventory),
		goka.Input(n.Stream(platform.TopicOrders), new(codec.Bytes), platform.Decode(n, codecs.Order, p.order)),
		goka.Loop(new(codec.Bytes), platform.Decode(n, loopCodec, p.loop)),
		goka.Join(p.stock, new(codec.Bytes)),
		goka.Persist(tableCodec),
		goka.Output(p.validations, codecs.OrderValidation),
		platform.DeadLetterEdge(n),
	)
}

type processing struct {
	validations goka.Stream
	stock       goka.Table
}

func load(ctx goka.Context) *TableValue {
	v, _ := platform.Value[TableValue](ctx)
	return v
}

// store writes the key's value, or deletes the key when nothing is left in it.
func store(ctx goka.Context, v *TableValue) {
	if v.empty() {
		ctx.Delete()
		return
	}
	ctx.SetValue(v)
}

func loopback(ctx goka.Context, key string, m LoopMessage) { platform.Loopback(ctx, loopCodec, key, m) }

// order handles a record of `orders`, keyed by order id.
func (p processing) order(ctx goka.Context, o domain.Order) {
	v := load(ctx)
	switch o.State {
	case domain.OrderCreated:
		fingerprint := o.Fingerprint()
		if v.First != "" && v.First != fingerprint {
			metrics.ConflictingOrders.WithLabelValues("inventory").Inc()
			slog.Warn("CREATED with other content than the id's first ignored",
				slog.String("order_id", o.ID), slog.String("product", string(o.Product)))
			return
		}
		if v.Finished != nil {
			return // redelivered after the order was decided: no verdict is wanted any more
		}
		if v.Order != nil && v.Order.Result != "" {
			// Redelivered after it was answered: the same verdict again.
			p.emitVerdict(ctx, o.ID, v.Order.Result)
			return
		}
		if v.Order != nil && v.Order.Product != o.Product {
			// Another order under this id: the first CREATED is the order (SPEC's integrity
			// rules); asking another product would reserve units nothing releases.
			slog.Warn("CREATED with other content for an order in flight ignored",
				slog.String("order_id", o.ID), slog.String("product", string(o.Product)),
				slog.String("first_product", string(v.Order.Product)))
			return
		}
		resend := v.Order != nil
		if !resend || v.First == "" {
			if !resend {
				v.Order = &OrderEntry{Product: o.Product}
			}
			v.First = fingerprint
			store(ctx, v)
		}
		// New, or redelivered while its answer is pending (the request or the answer may have
		// been lost in a crash): ask the product, which answers an order it knows the same way
		// and judges a resent request it does not know.
		loopback(ctx, string(o.Product), LoopMessage{Reserve: &ReserveRequest{
			OrderID: o.ID, Quantity: o.Quantity, EventMs: platform.EventTime(ctx).UnixMilli(), Source: platform.SourceOf(ctx), Resend: resend}})
	case domain.OrderValidated, domain.OrderFailed:
		switch {
		case v.Order == nil && v.Finished != nil:
			// Finished, and the final state is delivered again: what was sent to the product
			// may have been lost, so send it again.
			tell(ctx, v.Finished, o.ID)
		case v.Order == nil:
			// Not judged here.
		case v.Order.Result == "":
			v.Order.Final = o.State // the verdict is still on its way; finish when it arrives
			store(ctx, v)
		default:
			finish(ctx, v, o.ID, o.State)
		}
	}
}

// finish ends an order's entry and tells its product: a FAILED order's units go back, a
// VALIDATED order's answer is forgotten (its units stay reserved).
func finish(ctx goka.Context, v *TableValue, orderID string, final domain.OrderState) {
	v.Finished = &FinishedEntry{Product: v.Order.Product, Final: final, Reserved: v.Order.Reserved}
	tell(ctx, v.Finished, orderID)
	v.Order = nil
	store(ctx, v)
}

// tell sends a finished order's last word to its product: release its units if it FAILED,
// forget its answer if it was VALIDATED.
func tell(ctx goka.Context, f *FinishedEntry, orderID string) {
	if f.Final == domain.OrderFailed {
		loopback(ctx, string(f.Product), LoopMessage{Release: &ReleaseRequest{OrderID: orderID, Quantity: f.Reserved, Source: platform.SourceOf(ctx)}})
	} else {
		loopback(ctx, string(f.Product), LoopMessage{Forget: &OrderRef{OrderID: orderID}})
	}
}

// loop handles a loopback record: a request to a product's key or a verdict to an order's.
func (p processing) loop(ctx goka.Context, m LoopMessage) {
	v := load(ctx)
	switch {
	case m.Reserve != nil:
		answer, outcome := v.Reserve(*m.Reserve, stockOf(ctx, p.stock), ctx.Offset())
		switch outcome {
		case Stale:
			return
		case Settled:
			store(ctx, v)
			loopback(ctx, m.Reserve.OrderID, LoopMessage{Verdict: &VerdictRecord{Settled: true}})
			return
		case Fresh:
			store(ctx, v)
		}
		// Sent again for a replayed request too: the first sending may have been lost.
		p.emitVerdict(ctx, m.Reserve.OrderID, answer.Result)
		loopback(ctx, m.Reserve.OrderID, LoopMessage{Verdict: &VerdictRecord{Result: answer.Result, Reserved: answer.Reserved}})
	case m.Release != nil:
		if v.Release(*m.Release, ctx.Offset()) {
			store(ctx, v)
		}
	case m.Forget != nil:
		if v.Forget(m.Forget.OrderID) {
			store(ctx, v)
		}
	case m.Verdict != nil:
		if v.Order == nil || v.Order.Result != "" {
			return // a redelivered verdict, or the order is finished
		}
		if m.Verdict.Settled {
			v.Order = nil // a redelivered CREATED of an order that finished long ago
			store(ctx, v)
			return
		}
		v.Order.Result, v.Order.Reserved = m.Verdict.Result, m.Verdict.Reserved
		if v.Order.Final != "" {
			finish(ctx, v, ctx.Key(), v.Order.Final)
			return
		}
		store(ctx, v)
	}
}

func (p processing) emitVerdict(ctx goka.Context, orderID string, result domain.ValidationResult) {
	platform.EmitVerdict(ctx, p.validations, orderID, domain.InventoryCheck, result)
}

// stockOf reads the stock row of the product being processed. The join edge is declared with
// codec.Bytes so that a malformed row written by some tool is treated as no row (orders of the
// product fail until it is fixed) instead of stopping the processor.
func stockOf(ctx goka.Context, table goka.Table) Stock {
	raw, _ := ctx.Join(table).([]byte)
	if raw == nil {
		return Stock{}
	}
	units, err := platform.DecodeStock(raw)
	if err != nil {
		slog.Warn("unusable stock row treated as missing",
			slog.String("table", string(table)),
			slog.String("product", ctx.Key()),
			slog.Any("error", err))
		return Stock{}
	}
	return Stock{Units: units, Known: true}
}

// Service is a running Inventory validator.
type Service = service.ProcessorService

// New builds the service: codecs (registering schemas when a registry is configured) and the
// processor. Topics must have been provisioned.
func New(ctx context.Context, cfg Config) (*Service, error) {
	return service.NewProcessorService(ctx, "inventory", cfg, Graph)
}
