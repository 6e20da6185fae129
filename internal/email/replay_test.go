package email

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// gokaContext lets replayContext embed the interface and still define a Context method.
type gokaContext = goka.Context

// replayContext is a goka.Context for one record whose state survives between calls, the way
// local storage survives a crash. Only what the callbacks use is implemented; anything else
// panics through the nil embedded interface.
type replayContext struct {
	gokaContext
	topic  goka.Stream
	key    string
	offset int64
	state  map[string][]byte
	lookup map[string][]byte
	emits  []goka.Stream
}

func (c *replayContext) Topic() goka.Stream       { return c.topic }
func (c *replayContext) Key() string              { return c.key }
func (c *replayContext) Partition() int32         { return 0 }
func (c *replayContext) Offset() int64            { return c.offset }
func (c *replayContext) Timestamp() time.Time     { return base }
func (c *replayContext) Context() context.Context { return context.Background() }
func (c *replayContext) Lookup(_ goka.Table, key string) any {
	if b, ok := c.lookup[key]; ok {
		return b
	}
	return nil
}
func (c *replayContext) Value() any {
	b, ok := c.state[c.key]
	if !ok {
		return nil
	}
	v, err := platform.StateCodec[entry]{}.Decode(b)
	if err != nil {
		panic(err)
	}
	return v
}
func (c *replayContext) SetValue(v any, _ ...goka.ContextOption) {
	b, err := platform.StateCodec[entry]{}.Encode(v)
	if err != nil {
		panic(err)
	}
	c.state[c.key] = b
}
func (c *replayContext) Emit(topic goka.Stream, _ string, _ any, _ ...goka.ContextOption) {
	c.emits = append(c.emits, topic)
}
func (c *replayContext) Loopback(string, any, ...goka.ContextOption) {}

type countingEmailer struct{ sent int }

func (e *countingEmailer) Send(context.Context, Email) error { e.sent++; return nil }

// A record delivered again with the same offset (its commit was lost in a crash, but the state
// it wrote was kept) emits its enriched record again, in case that output was lost too, and
// sends no second email. A duplicate at another offset emits nothing.
func TestReplayedRecordRepairsItsOutputOnly(t *testing.T) {
	codecs := platform.StaticCodecs()
	customer, err := codecs.Customer.Marshal(domain.Customer{ID: 15, Email: "f@example.com", Level: "gold"})
	if err != nil {
		t.Fatal(err)
	}
	emailer := &countingEmailer{}
	j := &joiner{names: platform.Names{}, codecs: codecs, emailer: emailer, retention: DefaultRetention(),
		counters: &Counters{}, now: func() time.Time { return base }, backoff: time.Millisecond}
	state := map[string][]byte{}
	lookup := map[string][]byte{platform.CustomerKey(15): customer}
	deliver := func(topic goka.Stream, offset int64, handle func(ctx goka.Context)) []goka.Stream {
		ctx := &replayContext{topic: topic, key: "0", offset: offset, state: state, lookup: lookup}
		handle(ctx)
		return ctx.emits
	}
	order := domain.Order{ID: "0", CustomerID: 15, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1}
	onOrder := func(ctx goka.Context) { j.onOrder(ctx, order) }
	onPayment := func(ctx goka.Context) {
		j.onLoop(ctx, loopMessage{Payment: &loopPayment{Payment: domain.Payment{ID: "p", OrderID: "0"}, EventTime: stamp{base}}})
	}

	steps := []struct {
		name      string
		topic     goka.Stream
		offset    int64
		handle    func(goka.Context)
		wantEmits int
		wantSent  int
	}{
		{"order", platform.TopicOrders, 7, onOrder, 1, 0},
		{"order replayed after a crash", platform.TopicOrders, 7, onOrder, 1, 0},
		{"order duplicated at another offset", platform.TopicOrders, 8, onOrder, 0, 0},
		{"payment", "email-service-loop", 3, onPayment, 0, 1},
		{"payment replayed after a crash", "email-service-loop", 3, onPayment, 0, 1},
		{"order replayed once more", platform.TopicOrders, 7, onOrder, 1, 1},
	}
	for _, s := range steps {
		emits := deliver(s.topic, s.offset, s.handle)
		if len(emits) != s.wantEmits || (len(emits) == 1 && emits[0] != platform.TopicGold) {
			t.Fatalf("%s: emitted %v, want %d gold record(s)", s.name, emits, s.wantEmits)
		}
		if emailer.sent != s.wantSent {
			t.Fatalf("%s: %d emails sent, want %d", s.name, emailer.sent, s.wantSent)
		}
	}
}

// A loop record must carry exactly one kind of message, or it was not written by this service
// and is refused (dead-lettered by platform.Decode), whichever encoding it comes in.
func TestLoopRecordsWithOtherThanOneKindAreRefused(t *testing.T) {
	payment := &loopPayment{Payment: domain.Payment{ID: "p", OrderID: "o"}}
	hold := &holdRequest{OrderID: "o", CustomerID: 1}
	cases := []struct {
		name string
		m    loopMessage
		ok   bool
	}{
		{"payment", loopMessage{Payment: payment}, true},
		{"hold", loopMessage{Hold: hold}, true},
		{"none", loopMessage{}, false},
		{"two", loopMessage{Payment: payment, Hold: hold}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := loopCodec.Encode(c.m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = loopCodec.Unmarshal(b)
			if c.ok != (err == nil) || (!c.ok && !errors.Is(err, platform.ErrInvalidValue)) {
				t.Fatalf("Unmarshal: %v, want ok=%v", err, c.ok)
			}
		})
	}
}
