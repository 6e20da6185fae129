package platform

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
)

// The idioms every processor's callbacks share: the record being processed, the key's table
// value, a loopback record, a verdict.

// Source identifies the record that caused a change of state. Processors keep it in their
// state so that a redelivery of the same record (a replay after a crash, before its offset was
// committed) is recognised and its outputs emitted again; logs and dead letters show it.
type Source struct {
	Topic     string `json:"topic" cbor:"1,keyasint,omitempty"`
	Partition int32  `json:"partition" cbor:"2,keyasint,omitempty"`
	Offset    int64  `json:"offset" cbor:"3,keyasint,omitempty"`
}

// SourceOf is the record being processed.
func SourceOf(ctx goka.Context) Source {
	return Source{Topic: string(ctx.Topic()), Partition: ctx.Partition(), Offset: ctx.Offset()}
}

// Value is the group-table value of the key being processed, and whether the key had one; a
// new zero T when it had none, for the callback to fill.
func Value[T any](ctx goka.Context) (*T, bool) {
	if v, ok := ctx.Value().(*T); ok && v != nil {
		return v, true
	}
	return new(T), false
}

// Loopback sends m to key on the group's loop topic, encoded with codec. The value is the
// processor's own: failing to encode it is a defect, and fails the processor.
func Loopback[T any](ctx goka.Context, codec StateCodec[T], key string, m T) {
	b, err := codec.Encode(m)
	if err != nil {
		ctx.Fail(fmt.Errorf("loop back to %q: encode: %w", key, err))
	}
	ctx.Loopback(key, b)
}

// EmitVerdict writes a validator's verdict on order orderID to out and counts it.
func EmitVerdict(ctx goka.Context, out goka.Stream, orderID string, check domain.CheckType, result domain.ValidationResult) {
	ctx.Emit(out, orderID, domain.OrderValidation{OrderID: orderID, CheckType: check, ValidationResult: result})
	metrics.Verdicts.WithLabelValues(string(check), string(result)).Inc()
}
