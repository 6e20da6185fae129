// Package fraud is the Fraud validator: it adds up the value (quantity × price) of each
// customer's CREATED orders in a session window with a one-hour inactivity gap, and emits one
// FRAUD_CHECK verdict per order to order-validations — FAIL when the session total reaches
// 2000, PASS otherwise.
//
// It is a goka processor in two steps. Orders arrive keyed by order id; each is re-keyed by
// customer onto the group's loopback topic, so that all orders of a customer meet in one
// callback that owns the customer's sessions (CustomerSessions, the group-table value). The
// order's event time is the timestamp of its `orders` record; goka stamps loopback records
// with their produce time, so the event time travels inside the loopback payload.
//
// goka delivers at least once. Every order that PASSed stays listed in its session, so a
// redelivered one is neither counted twice nor judged differently: PASS is emitted again, which
// also repairs a verdict lost in a crash. A FAIL needs no record, since a session never shrinks:
// its replay FAILs again. Sessions expire SessionRetention of event time after their last order,
// and the remembered orders of a customer are capped at MemoryBudget bytes (past it, the
// session FAILs), so no customer's value nears Kafka's record limit.
//
// Event time is the record's timestamp bounded by platform.MaxClockSkew ahead of the
// processing clock, so one producer with a clock far ahead cannot make its customer's later
// orders look late.
//
// Customer keys on the loopback topic and in the table are platform.CustomerKey (8-byte
// big-endian), the key format of the `customers` topic, so Kafka tools decode them alike.
package fraud

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/service"
)

// Config configures the Fraud service: its Kafka settings and admin address.
type Config = service.ProcessorConfig

// DefaultConfig returns the defaults (admin port :9102).
func DefaultConfig() Config { return service.NewProcessorConfig(":9102") }

// OrderHop is an order on its way from `orders` to its customer's key on the loopback topic,
// with the event time that the loopback record's own timestamp would lose.
type OrderHop struct {
	Order       domain.Order `json:"order" cbor:"1,keyasint,omitempty"`
	EventTimeMs int64        `json:"eventTimeMs" cbor:"2,keyasint,omitempty"`
}

// hopCodec encodes loopback records. The loop edge itself is declared with codec.Bytes so that
// a record that does not decode is dead-lettered instead of stopping the processor.
var hopCodec = platform.StateCodec[OrderHop]{Strict: true}

// Validate refuses loopback records that carry no usable order, so platform.Decode
// dead-letters them rather than answering under an empty id or adding an infinite value to a
// total (which the state could not store).
func (hop OrderHop) Validate() error {
	if err := hop.Order.Validate(); err != nil {
		return fmt.Errorf("fraud loopback record: %w", err)
	}
	if hop.Order.State != domain.OrderCreated {
		return fmt.Errorf("fraud loopback record: order %s is %s, not CREATED", hop.Order.ID, hop.Order.State)
	}
	if value := orderValue(hop.Order); math.IsInf(value, 0) || math.IsNaN(value) {
		return fmt.Errorf("fraud loopback record: order %s has no finite value", hop.Order.ID)
	}
	return nil
}

// Graph is the processor's topology: orders in, re-keyed by customer through the loopback
// topic, sessions in the group table, verdicts out, undecodable records to the dead-letter
// topic.
func Graph(n platform.Names, codecs *platform.Codecs) *goka.GroupGraph {
	return graph(n, codecs, time.Now)
}

// graph is Graph with the processing clock that bounds event times.
func graph(n platform.Names, codecs *platform.Codecs, now func() time.Time) *goka.GroupGraph {
	validations := n.Stream(platform.TopicOrderValidations)
	emit := func(ctx goka.Context, orderID string, result domain.ValidationResult) {
		platform.EmitVerdict(ctx, validations, orderID, domain.FraudCheck, result)
	}
	return goka.DefineGroup(n.Group(platform.GroupFraud),
		goka.Input(n.Stream(platform.TopicOrders), new(codec.Bytes), platform.Decode(n, codecs.Order,
			func(ctx goka.Context, o domain.Order) {
				if o.State != domain.OrderCreated {
					return
				}
				eventMs, first := firstContent(ctx, o, now)
				if !first {
					return
				}
				if v := orderValue(o); math.IsNaN(v) || math.IsInf(v, 0) {
					// An order without a finite value cannot be added to any total. Its verdict
					// depends on the order alone, so answering here is as idempotent as the rest.
					emit(ctx, o.ID, domain.Fail)
					return
				}
				payload, err := hopCodec.Encode(OrderHop{Order: o, EventTimeMs: eventMs})
				if err != nil {
					ctx.Fail(fmt.Errorf("fraud: encode loopback record of order %s: %w", o.ID, err))
				}
				ctx.Loopback(platform.CustomerKey(o.CustomerID), payload)
			})),
		goka.Loop(new(codec.Bytes), platform.Decode(n, hopCodec,
			func(ctx goka.Context, hop OrderHop) {
				sessions, _ := ctx.Value().(*CustomerSessions)
				if sessions == nil {
					sessions = &CustomerSessions{}
				}
				verdict := sessions.Apply(hop.Order.ID, hop.EventTimeMs, orderValue(hop.Order))
				if verdict.Full {
					slog.Warn("order failed: its customer's remembered orders reached the memory budget",
						slog.String("order_id", hop.Order.ID),
						slog.Int64("customer_id", hop.Order.CustomerID),
						slog.Int("memory_budget_bytes", MemoryBudget))
				}
				if verdict.Late {
					slog.Warn("order older than the session retention failed without being counted",
						slog.String("order_id", hop.Order.ID),
						slog.Int64("customer_id", hop.Order.CustomerID),
						slog.Int64("event_time_ms", hop.EventTimeMs),
						slog.Int64("customer_latest_event_time_ms", sessions.LatestEventMs))
				}
				if verdict.Changed() {
					ctx.SetValue(sessions)
				}
				emit(ctx, hop.Order.ID, verdict.Result)
			})),
		goka.Persist(platform.StateCodec[CustomerSessions]{}),
		goka.Output(validations, codecs.OrderValidation),
		platform.DeadLetterEdge(n),
	)
}

// firstContent reports whether o is the first CREATED content of its id (or that content
// again) and the event time to judge it at, remembering both under the id's key when it is
// the first. A later CREATED of other content is counted and ignored: counting it would add
// another order's value to a session.
func firstContent(ctx goka.Context, o domain.Order, now func() time.Time) (eventMs int64, first bool) {
	marker, _ := ctx.Value().(*CustomerSessions)
	fingerprint := o.Fingerprint()
	switch {
	case marker != nil && marker.FirstOrder == fingerprint && marker.FirstEventMs != 0:
		return marker.FirstEventMs, true
	case marker != nil && marker.FirstOrder != "" && marker.FirstOrder != fingerprint:
		metrics.ConflictingOrders.WithLabelValues("fraud").Inc()
		slog.Warn("CREATED with other content than the id's first ignored", slog.String("order_id", o.ID),
			slog.Int64("customer_id", o.CustomerID))
		return 0, false
	case marker == nil:
		marker = &CustomerSessions{}
	}
	marker.FirstOrder = fingerprint
	marker.FirstEventMs = platform.BoundEventTime(ctx.Timestamp(), now()).UnixMilli()
	ctx.SetValue(marker)
	return marker.FirstEventMs, true
}

// orderValue is what an order adds to its session.
func orderValue(o domain.Order) float64 { return float64(o.Quantity) * o.Price }

// Service is a running Fraud validator.
type Service = service.ProcessorService

// New builds the service: codecs (registering schemas when a registry is configured) and the
// processor. Topics must have been provisioned.
func New(ctx context.Context, cfg Config) (*Service, error) {
	return service.NewProcessorService(ctx, "fraud", cfg, Graph)
}
