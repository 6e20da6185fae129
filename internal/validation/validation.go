// Package validation is the validations aggregator: it collects the three checks' verdicts
// per order and writes the order back to `orders` as VALIDATED when all three passed, or as
// FAILED on the first FAIL or ERROR — exactly one decision per order.
//
// Unlike the reference, it counts distinct check types rather than PASS messages (so a
// redelivered PASS can never validate an order), treats ERROR as FAIL, and never emits both
// decisions for one order. The decision is kept in the state; when the very message that led
// to it is redelivered after a crash, the decision is emitted again (the same one), so a
// write-back lost in the crash is repaired while late or duplicate verdicts change nothing.
package validation

import (
	"fmt"
	"strconv"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
)

// State is what the aggregator keeps per order id.
type State struct {
	// Order is the CREATED order, once seen; the decision is written back as this order with
	// its new state.
	Order *domain.Order `json:"order,omitempty" cbor:"1,keyasint,omitempty"`
	// Results holds the first verdict of each check type.
	Results map[domain.CheckType]domain.ValidationResult `json:"results,omitempty" cbor:"2,keyasint,omitempty"`
	// Decision is VALIDATED or FAILED once decided, empty before.
	Decision domain.OrderState `json:"decision,omitempty" cbor:"3,keyasint,omitempty"`
	// DecidedBy identifies the input message that led to the decision (topic/partition/offset).
	DecidedBy string `json:"decidedBy,omitempty" cbor:"4,keyasint,omitempty"`
}

// decide returns the decision the state calls for, or "" while undecided.
func (s *State) decide() domain.OrderState {
	if s.Order == nil {
		return ""
	}
	passed := 0
	for _, check := range domain.CheckTypes {
		switch s.Results[check] {
		case domain.Fail, domain.Error:
			return domain.OrderFailed
		case domain.Pass:
			passed++
		}
	}
	if passed == len(domain.CheckTypes) {
		return domain.OrderValidated
	}
	return ""
}

// Graph is the aggregator's topology: orders and verdicts in (both keyed by order id, so
// copartitioned), decisions out to orders, state in the group table.
func Graph(n platform.Names, codecs *platform.Codecs) *goka.GroupGraph {
	orders := n.Stream(platform.TopicOrders)
	return goka.DefineGroup(n.Group(platform.GroupValidation),
		goka.Input(orders, new(codec.Bytes), platform.Decode(n, codecs.Order, func(ctx goka.Context, o domain.Order) {
			if o.State != domain.OrderCreated {
				return // our own decisions, or orders changed elsewhere
			}
			st := load(ctx)
			if st.Order == nil {
				st.Order = &o
			}
			apply(ctx, n, codecs, st)
		})),
		goka.Input(n.Stream(platform.TopicOrderValidations), new(codec.Bytes), platform.Decode(n, codecs.OrderValidation,
			func(ctx goka.Context, v domain.OrderValidation) {
				st := load(ctx)
				if st.Results == nil {
					st.Results = map[domain.CheckType]domain.ValidationResult{}
				}
				if _, seen := st.Results[v.CheckType]; !seen {
					st.Results[v.CheckType] = v.ValidationResult
				}
				apply(ctx, n, codecs, st)
			})),
		// Bytes, like the input edge of the same topic: a topic has one codec in a graph.
		goka.Output(orders, new(codec.Bytes)),
		goka.Persist(platform.StateCodec[State]{}),
		platform.DeadLetterEdge(n),
	)
}

func load(ctx goka.Context) *State {
	v, _ := platform.Value[State](ctx)
	return v
}

// messageID names the message being processed, to recognise its redelivery.
func messageID(ctx goka.Context) string {
	return string(ctx.Topic()) + "/" + strconv.Itoa(int(ctx.Partition())) + "/" + strconv.FormatInt(ctx.Offset(), 10)
}

// apply stores the state and emits the decision when this message makes it, or when this
// message is the redelivered one that made it.
func apply(ctx goka.Context, n platform.Names, codecs *platform.Codecs, st *State) {
	if st.Decision != "" {
		if st.DecidedBy == messageID(ctx) {
			emitDecision(ctx, n, codecs, st)
		}
		return
	}
	if d := st.decide(); d != "" {
		st.Decision = d
		st.DecidedBy = messageID(ctx)
		emitDecision(ctx, n, codecs, st)
		metrics.Decisions.WithLabelValues(string(d)).Inc()
	}
	ctx.SetValue(st)
}

func emitDecision(ctx goka.Context, n platform.Names, codecs *platform.Codecs, st *State) {
	decided := *st.Order
	decided.State = st.Decision
	b, err := codecs.Order.Marshal(decided)
	if err != nil {
		// The order decoded from the same schema moments ago; failing to encode it is a bug.
		ctx.Fail(fmt.Errorf("encode decision for order %s: %w", decided.ID, err))
	}
	ctx.Emit(n.Stream(platform.TopicOrders), decided.ID, b)
}
