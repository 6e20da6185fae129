// Package inventory is the Inventory validator: for every CREATED order it checks the
// warehouse stock of the order's product against what earlier orders reserved, reserves the
// quantity when it fits, and emits one INVENTORY_CHECK verdict to order-validations — PASS
// when stock − reserved − quantity ≥ 0, FAIL otherwise or when the product has no stock row.
// When the validations aggregator writes an order back as FAILED, its reservation is released.
//
// It is a goka processor in two steps. Orders arrive keyed by order id; each CREATED or FAILED
// order is re-keyed by product name onto the group's loopback topic, which is copartitioned
// with `warehouse-inventory`. There one callback per product key joins the stock row, reads
// and updates the product's ReservedStock (the group-table value) and emits the verdict, so
// check, reserve and emit are one step that no other order of the product can interleave.
//
// goka delivers at least once. Each product's state keeps an entry per order id — its
// verdict, the units it reserved, whether they were released — so a redelivered order never
// reserves twice and gets its first verdict again (which also repairs a verdict lost in a
// crash), and a redelivered FAILED order never releases twice. Entries are kept for
// ReservationRetention of event time, then dropped, their units staying in the total; this
// bounds the state. The event time is the timestamp of the `orders` record; goka stamps
// loopback records with their produce time, so it travels inside the loopback payload.
package inventory

import (
	"context"
	"errors"
	"fmt"
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

// OrderHop is an order on its way from `orders` to its product's key on the loopback topic:
// what the product's callback needs, and the event time that the loopback record's own
// timestamp would lose. CREATED reserves, FAILED releases. The price is left out: it plays no
// part here, and a NaN price could not be written as JSON.
type OrderHop struct {
	OrderID     string            `json:"orderId"`
	State       domain.OrderState `json:"state"`
	Quantity    int32             `json:"quantity"`
	EventTimeMs int64             `json:"eventTimeMs"`
}

// hopCodec encodes loopback records. The loop edge itself is declared with codec.Bytes so that
// a record that does not decode is dead-lettered instead of stopping the processor.
var hopCodec platform.JSONCodec[OrderHop]

// Validate refuses loopback records that carry no usable order, so platform.Decode
// dead-letters them rather than acting on them.
func (hop OrderHop) Validate() error {
	switch {
	case hop.OrderID == "":
		return errors.New("inventory loopback record: no order id")
	case hop.State != domain.OrderCreated && hop.State != domain.OrderFailed:
		return fmt.Errorf("inventory loopback record: state %q is neither CREATED nor FAILED", hop.State)
	}
	return nil
}

// Graph is the processor's topology: orders in, re-keyed by product through the loopback
// topic, stock joined from warehouse-inventory, reserved stock in the group table, verdicts
// out, undecodable records to the dead-letter topic.
func Graph(n platform.Names, codecs *platform.Codecs) *goka.GroupGraph {
	validations := n.Stream(platform.TopicOrderValidations)
	stockTable := n.Table(platform.TopicWarehouseInventory)
	return goka.DefineGroup(n.Group(platform.GroupInventory),
		goka.Input(n.Stream(platform.TopicOrders), new(codec.Bytes), platform.Decode(n, codecs.Order,
			func(ctx goka.Context, o domain.Order) {
				if o.State != domain.OrderCreated && o.State != domain.OrderFailed {
					return
				}
				payload, err := hopCodec.Encode(OrderHop{
					OrderID:     o.ID,
					State:       o.State,
					Quantity:    o.Quantity,
					EventTimeMs: ctx.Timestamp().UnixMilli(),
				})
				if err != nil {
					ctx.Fail(fmt.Errorf("inventory: encode loopback record of order %s: %w", o.ID, err))
				}
				ctx.Loopback(string(o.Product), payload)
			})),
		goka.Loop(new(codec.Bytes), platform.Decode(n, hopCodec,
			func(ctx goka.Context, hop OrderHop) {
				reserved, _ := ctx.Value().(*ReservedStock)
				if reserved == nil {
					reserved = &ReservedStock{}
				}
				if hop.State == domain.OrderFailed {
					if reserved.Release(hop.OrderID, hop.EventTimeMs) {
						ctx.SetValue(reserved)
					}
					return
				}
				outcome := reserved.Reserve(hop.OrderID, hop.EventTimeMs, hop.Quantity, stockOf(ctx, stockTable))
				if outcome.Late {
					slog.Warn("order older than the reservation retention failed without reserving",
						slog.String("order_id", hop.OrderID),
						slog.String("product", ctx.Key()),
						slog.Int64("event_time_ms", hop.EventTimeMs),
						slog.Int64("product_latest_event_time_ms", reserved.LatestEventMs))
				}
				if outcome.Changed() {
					ctx.SetValue(reserved)
				}
				ctx.Emit(validations, hop.OrderID, domain.OrderValidation{
					OrderID:          hop.OrderID,
					CheckType:        domain.InventoryCheck,
					ValidationResult: outcome.Result,
				})
				metrics.Verdicts.WithLabelValues(string(domain.InventoryCheck), string(outcome.Result)).Inc()
			})),
		goka.Join(stockTable, new(codec.Bytes)),
		goka.Persist(platform.JSONCodec[ReservedStock]{}),
		goka.Output(validations, codecs.OrderValidation),
		platform.DeadLetterEdge(n),
	)
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
