package platform

import (
	"log/slog"
	"strconv"
	"strings"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/metrics"
)

// Headers on a dead-letter record: where the record came from and why it was refused.
const (
	HeaderDLQSourceTopic     = "dlq.source.topic"
	HeaderDLQSourcePartition = "dlq.source.partition"
	HeaderDLQSourceOffset    = "dlq.source.offset"
	HeaderDLQGroup           = "dlq.group"
	HeaderDLQError           = "dlq.error"
	// HeaderDLQValueOmitted is set, to the value's size, on a dead letter whose record was too
	// large to copy whole; the record itself is still at its source offset.
	HeaderDLQValueOmitted = "dlq.value.omitted"
	// HeaderDLQKeyTruncated is set, to the key's size, when only the key's start is kept.
	HeaderDLQKeyTruncated = "dlq.key.truncated"
)

// A dead letter must fit the producer's message limit (franz-go's ProducerBatchMaxBytes,
// 1,000,012 bytes, and sarama's Producer.MaxMessageBytes, 1,000,000) whatever the refused
// record holds, or writing it fails the processor,
// which replays the same record for ever: every consumer of the topic stops.
const (
	maxDeadLetterBytes = 900_000
	maxReasonBytes     = 1024
	keptKeyBytes       = 1024
)

// DeadLetterEdge is the output edge of the dead-letter topic; every processor that decodes
// its input with Decode declares it.
func DeadLetterEdge(n Names) goka.Edge {
	return goka.Output(n.Stream(TopicDeadLetters), new(codec.Bytes))
}

// DeadLetter writes the record being processed to the dead-letter topic, unchanged, with the
// reason in its headers, and logs it once. The write is part of the message's processing, so
// the input offset is committed only once the dead letter is stored: nothing is lost.
//
// The reason is cut at maxReasonBytes; a record too large to copy within the message limit
// keeps its key and source coordinates without its value (HeaderDLQValueOmitted), and a key too
// large even alone is cut (HeaderDLQKeyTruncated).
func DeadLetter(ctx goka.Context, n Names, raw []byte, reason error) {
	why := reason.Error()
	if len(why) > maxReasonBytes {
		why = strings.ToValidUTF8(why[:maxReasonBytes], "") + "…"
	}
	headers := goka.Headers{
		HeaderDLQSourceTopic:     []byte(ctx.Topic()),
		HeaderDLQSourcePartition: []byte(strconv.Itoa(int(ctx.Partition()))),
		HeaderDLQSourceOffset:    []byte(strconv.FormatInt(ctx.Offset(), 10)),
		HeaderDLQGroup:           []byte(ctx.Group()),
		HeaderDLQError:           []byte(why),
	}
	key, value := ctx.Key(), raw
	if len(key)+len(value) > maxDeadLetterBytes {
		headers[HeaderDLQValueOmitted] = []byte(strconv.Itoa(len(value)))
		value = []byte{}
	}
	if len(key) > maxDeadLetterBytes {
		headers[HeaderDLQKeyTruncated] = []byte(strconv.Itoa(len(key)))
		key = key[:keptKeyBytes]
	}
	slog.Warn("record sent to dead-letter topic",
		slog.String("topic", string(ctx.Topic())),
		slog.Int("partition", int(ctx.Partition())),
		slog.Int64("offset", ctx.Offset()),
		slog.String("group", string(ctx.Group())),
		slog.String("error", why))
	metrics.DeadLetters.WithLabelValues(string(ctx.Topic()), string(ctx.Group())).Inc()
	ctx.Emit(n.Stream(TopicDeadLetters), key, value, goka.WithCtxEmitHeaders(headers))
}

// Unmarshaler decodes bytes into a T; every AvroCodec is one.
type Unmarshaler[T any] interface {
	Unmarshal([]byte) (T, error)
}

// KeyChecker is a record value that knows which record key it must be written under (an
// order under its id): services keep state by the key but act on the value, so a record
// whose key and value disagree would slip past every per-key rule.
type KeyChecker interface {
	CheckKey(key string) error
}

// Decode adapts a typed handler to an input edge declared with codec.Bytes: it decodes each
// record with dec and dead-letters those that do not decode, or whose value is a KeyChecker
// refusing the record's key, so that one bad record never stops a processor. Tombstones (nil
// values) are skipped.
func Decode[T any](n Names, dec Unmarshaler[T], handle func(ctx goka.Context, v T)) goka.ProcessCallback {
	return func(ctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		if raw == nil {
			return
		}
		v, err := dec.Unmarshal(raw)
		if err == nil {
			if kc, ok := any(v).(KeyChecker); ok {
				err = kc.CheckKey(ctx.Key())
			}
		}
		if err != nil {
			DeadLetter(ctx, n, raw, err)
			return
		}
		handle(ctx, v)
	}
}
