package orders

import (
	"fmt"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
)

// stateRank orders the life cycle so that a late or replayed older version of an order never
// replaces a newer one in the view.
func stateRank(s domain.OrderState) int {
	switch s {
	case domain.OrderCreated:
		return 0
	case domain.OrderShipped:
		return 2
	default: // VALIDATED, FAILED
		return 1
	}
}

// ViewGraph is the materialized view: the latest version of each order in the group table,
// partitioned like `orders`. notify is called with every stored version (to release waiters).
//
// The first CREATED of an id is the order (SPEC's "first write wins per id"): a record before
// it that is not a CREATED, and a later record with other content — another producer's
// CREATED under the same id, or a state change of an order that is not this one — are
// ignored, counted and logged, so the view and every POST answer agree with what the
// validators and the aggregator decide.
func ViewGraph(n platform.Names, codecs *platform.Codecs, notify func(domain.Order)) *goka.GroupGraph {
	return goka.DefineGroup(n.Group(platform.GroupOrders),
		goka.Input(n.Stream(platform.TopicOrders), new(codec.Bytes), platform.Decode(n, codecs.Order,
			func(ctx goka.Context, o domain.Order) {
				current, ok := ctx.Value().(domain.Order)
				if !ok && o.State != domain.OrderCreated {
					// An order begins with its CREATED: a decision or a state change with no
					// CREATED before it is nobody's order, and must not pin the id.
					metrics.ConflictingOrders.WithLabelValues("orders").Inc()
					slog.Warn("order record before any CREATED of its id ignored",
						slog.String("order_id", o.ID), slog.String("state", string(o.State)))
					return
				}
				if ok {
					if !domain.SameContent(current, o) {
						metrics.ConflictingOrders.WithLabelValues("orders").Inc()
						slog.Warn("order record with other content than the id's first ignored",
							slog.String("order_id", o.ID), slog.String("state", string(o.State)),
							slog.String("offset", fmt.Sprintf("%d/%d", ctx.Partition(), ctx.Offset())))
						return
					}
					if stateRank(o.State) < stateRank(current.State) {
						return
					}
				}
				ctx.SetValue(o)
				notify(o)
			})),
		goka.Persist(codecs.Order),
		platform.DeadLetterEdge(n),
	)
}
