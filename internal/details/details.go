// Package details is the Order Details validator: for every CREATED order it emits one
// ORDER_DETAILS_CHECK verdict to order-validations — FAIL when quantity or price is negative
// or the product is missing, PASS otherwise.
//
// It is a goka processor (the reference used a hand-written consumer/producer loop). The
// verdict depends only on the order, so a redelivered order re-emits the same verdict. The one
// thing kept per order id is which content came first (SPEC's "first write wins per id"): a
// later CREATED of other content under the id gets no verdict of its own.
package details

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

// Config configures the Order Details service: its Kafka settings and admin address.
type Config = service.ProcessorConfig

// DefaultConfig returns the defaults (admin port :9101).
func DefaultConfig() Config { return service.NewProcessorConfig(":9101") }

// Check is the order-details rule of SPEC.md.
func Check(o domain.Order) domain.ValidationResult {
	if o.Quantity < 0 || o.Price < 0 || !o.Product.Valid() {
		return domain.Fail
	}
	return domain.Pass
}

// Graph is the processor's topology: orders in, verdicts out, the first content of each id in
// the group table, undecodable orders to the dead-letter topic.
func Graph(n platform.Names, codecs *platform.Codecs) *goka.GroupGraph {
	validations := n.Stream(platform.TopicOrderValidations)
	return goka.DefineGroup(n.Group(platform.GroupDetails),
		goka.Input(n.Stream(platform.TopicOrders), new(codec.Bytes), platform.Decode(n, codecs.Order,
			func(ctx goka.Context, o domain.Order) {
				if o.State != domain.OrderCreated {
					return
				}
				first, _ := ctx.Value().(*Seen)
				switch fingerprint := o.Fingerprint(); {
				case first == nil:
					ctx.SetValue(&Seen{First: fingerprint})
				case first.First != fingerprint:
					metrics.ConflictingOrders.WithLabelValues("details").Inc()
					slog.Warn("CREATED with other content than the id's first ignored", slog.String("order_id", o.ID))
					return
				}
				platform.EmitVerdict(ctx, validations, o.ID, domain.OrderDetailsCheck, Check(o))
			})),
		goka.Persist(platform.StateCodec[Seen]{}),
		goka.Output(validations, codecs.OrderValidation),
		platform.DeadLetterEdge(n),
	)
}

// Seen is the group-table value of an order id: the Fingerprint of its first CREATED.
type Seen struct {
	First string `json:"first" cbor:"1,keyasint,omitempty"`
}

// Service is a running Order Details validator.
type Service = service.ProcessorService

// New builds the service: codecs (registering schemas when a registry is configured) and the
// processor. Topics must have been provisioned.
func New(ctx context.Context, cfg Config) (*Service, error) {
	return service.NewProcessorService(ctx, "order details", cfg, Graph)
}
