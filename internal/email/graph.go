package email

import (
	"log/slog"
	"sort"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// Processing is what the processor needs besides topic names and codecs.
type Processing struct {
	Emailer   Emailer
	Retention Retention
	// Counters receives the counts; nil counts into a private set.
	Counters *Counters
	// Now is the processing-time clock that retention is measured with; nil means time.Now.
	Now func() time.Time
	// SendBackoff is the first wait between send attempts, doubled each time; 0 means 1 s.
	SendBackoff time.Duration
}

// joiner holds the callbacks of the processor.
type joiner struct {
	names     platform.Names
	codecs    *platform.Codecs
	emailer   Emailer
	retention Retention
	counters  *Counters
	now       func() time.Time
	backoff   time.Duration
	customers goka.Table
}

// Graph is the processor's topology. Inputs: orders (keyed by order id), payments (re-keyed
// through the loop topic by order id), customers (to release orders waiting for a customer) and
// the loop topic. The customers table is also a lookup edge, so every instance can find any
// customer. The group table holds, per order id, the join state and outcomes and, per customer
// key, the orders waiting for that customer. Outputs: the four level topics, the unknown-level
// topic and the dead-letter topic.
func Graph(n platform.Names, codecs *platform.Codecs, p Processing) *goka.GroupGraph {
	j := &joiner{
		names: n, codecs: codecs, emailer: p.Emailer, retention: p.Retention,
		counters: p.Counters, now: p.Now, backoff: p.SendBackoff,
		customers: n.Table(platform.TopicCustomers),
	}
	if j.counters == nil {
		j.counters = &Counters{}
	}
	if j.now == nil {
		j.now = time.Now
	}
	if j.backoff <= 0 {
		j.backoff = time.Second
	}
	decodeCustomer := platform.Decode(n, codecs.Customer, j.onCustomer)
	edges := []goka.Edge{
		goka.Input(n.Stream(platform.TopicOrders), new(codec.Bytes), platform.Decode(n, codecs.Order, j.onOrder)),
		goka.Input(n.Stream(platform.TopicPayments), new(codec.Bytes), platform.Decode(n, paymentRecords{codecs.Payment}, j.onPayment)),
		goka.Input(goka.Stream(j.customers), new(codec.Bytes), func(ctx goka.Context, msg any) {
			// A key that is not an 8-byte id can never be looked up: report it rather than
			// keep a customer nobody will find.
			if raw, _ := msg.([]byte); raw != nil {
				if _, err := platform.ParseCustomerKey(ctx.Key()); err != nil {
					platform.DeadLetter(ctx, n, raw, err)
					return
				}
			}
			decodeCustomer(ctx, msg)
		}),
		goka.Loop(new(codec.Bytes), platform.Decode(n, loopCodec, j.onLoop)),
		goka.Lookup(j.customers, new(codec.Bytes)),
		goka.Persist(platform.StateCodec[entry]{}),
		goka.Visitor(sweepVisitor, j.onSweep),
		platform.DeadLetterEdge(n),
	}
	for _, t := range outputTopics(n) {
		edges = append(edges, goka.Output(t, codecs.OrderEnriched))
	}
	return goka.DefineGroup(n.Group(platform.GroupEmail), edges...)
}

// outputTopics are the level topics and the unknown-level topic, in a stable order.
func outputTopics(n platform.Names) []goka.Stream {
	levels := make([]string, 0, len(platform.LevelTopics))
	for level := range platform.LevelTopics {
		levels = append(levels, level)
	}
	sort.Strings(levels)
	topics := make([]goka.Stream, 0, len(levels)+1)
	for _, level := range levels {
		t, _ := n.LevelTopic(level)
		topics = append(topics, t)
	}
	return append(topics, n.Stream(platform.TopicUnknownLevel))
}

func (j *joiner) load(ctx goka.Context) (*entry, bool) { return platform.Value[entry](ctx) }

// store writes e back, or deletes the key when nothing is left in it.
func (j *joiner) store(ctx goka.Context, e *entry, existed bool) {
	if e.Order != nil && e.Order.empty() {
		e.Order = nil
	}
	if e.Order == nil && e.Customer == nil {
		if existed {
			ctx.Delete()
		}
		return
	}
	ctx.SetValue(e)
}

func (j *joiner) loopback(ctx goka.Context, key string, m loopMessage) {
	platform.Loopback(ctx, loopCodec, key, m)
}

func (j *joiner) onOrder(ctx goka.Context, o domain.Order) {
	eventTime := platform.BoundEventTime(ctx.Timestamp(), j.now())
	j.update(ctx, nil, func(s *orderState, now time.Time) bool {
		return s.addOrder(o, eventTime, now)
	})
}

func (j *joiner) onPayment(ctx goka.Context, p domain.Payment) {
	j.loopback(ctx, p.OrderID, loopMessage{Payment: &loopPayment{Payment: p, EventTime: stamp{platform.BoundEventTime(ctx.Timestamp(), j.now())}}})
}

func (j *joiner) onLoop(ctx goka.Context, m loopMessage) {
	switch {
	case m.Payment != nil:
		j.update(ctx, nil, func(s *orderState, now time.Time) bool {
			return s.addPayment(m.Payment.Payment, m.Payment.EventTime.Time, now)
		})
	case m.Customer != nil:
		j.update(ctx, m.Customer, nil)
	case m.Hold != nil:
		j.onHold(ctx, *m.Hold)
	}
}

// onHold registers an order under the key of the customer it waits for. The customer may have
// arrived between the order's lookup and now; looking again closes most of that gap, and the
// sweep's retry closes the rest.
func (j *joiner) onHold(ctx goka.Context, h holdRequest) {
	if c := j.lookupCustomer(ctx, h.CustomerID); c != nil {
		j.loopback(ctx, h.OrderID, loopMessage{Customer: c})
		return
	}
	e, existed := j.load(ctx)
	if e.Customer == nil {
		e.Customer = &customerState{}
	}
	changed, fits := e.Customer.list(h.OrderID, h.Since.Time)
	if !fits {
		j.counters.HoldsUnlisted.Add(1)
		slog.Debug("order waits unlisted: its customer's list of waiting orders is full",
			slog.String("order_id", h.OrderID), slog.Int64("customer_id", h.CustomerID))
	}
	if changed {
		j.store(ctx, e, existed)
	}
}

// onCustomer releases the orders waiting for the customer that just arrived (or changed).
func (j *joiner) onCustomer(ctx goka.Context, c domain.Customer) {
	e, existed := j.load(ctx)
	if e.Customer == nil || len(e.Customer.Waiting) == 0 {
		return
	}
	ids := make([]string, 0, len(e.Customer.Waiting))
	for id := range e.Customer.Waiting {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		j.loopback(ctx, id, loopMessage{Customer: &c})
	}
	e.Customer = nil
	j.store(ctx, e, existed)
}

// update applies one record to the state of the order id ctx.Key() and does what it enables.
// customer is the order's customer when the record brings it; such a release carries nothing
// to apply (apply is nil).
func (j *joiner) update(ctx goka.Context, customer *domain.Customer, apply func(s *orderState, now time.Time) bool) {
	e, existed := j.load(ctx)
	if e.Order == nil {
		e.Order = &orderState{}
	}
	s := e.Order
	src := platform.SourceOf(ctx)
	if s.Enriched != nil && s.Enriched.Source == src {
		// The very record that produced the enriched record again: the offset was not
		// committed, so the output may not have reached Kafka either. Emit it once more.
		ctx.Emit(goka.Stream(s.Enriched.Topic), ctx.Key(), s.Enriched.Record)
	}
	if s.done() {
		if apply != nil {
			j.counters.Duplicates.Add(1)
		}
		return
	}
	now := j.now()
	changed := false
	if apply != nil {
		changed = apply(s, now)
	}
	advanced, ok := j.advance(ctx, s, customer, src, now)
	if !ok {
		return
	}
	if changed || advanced {
		s.Updated = stamp{now}
		j.store(ctx, e, existed)
	}
}

// advance joins the candidates and, once the customer is known, emits the enriched record and
// sends the email that are due. Without the customer it starts a hold. It reports whether s
// changed, and false in ok when sending failed and the record must stay uncommitted.
func (j *joiner) advance(ctx goka.Context, s *orderState, customer *domain.Customer, src source, now time.Time) (changed, ok bool) {
	changed = s.join()
	needEnrich := s.First != nil && s.Enriched == nil && s.Abandoned == nil
	needEmail := s.Match != nil && !s.emailSettled()
	if !needEnrich && !needEmail {
		return changed, true
	}
	customerID := s.First.CustomerID
	if customer == nil {
		customer = j.lookupCustomer(ctx, customerID)
	}
	if customer == nil {
		if s.Waiting == nil {
			s.Waiting = &waiting{CustomerID: customerID, Since: stamp{now}}
			j.loopback(ctx, platform.CustomerKey(customerID),
				loopMessage{Hold: &holdRequest{OrderID: ctx.Key(), CustomerID: customerID, Since: stamp{now}}})
			changed = true
		}
		return changed, true
	}
	// The email goes first: if it cannot be sent, nothing of this record is kept or emitted
	// beyond what a retry would repeat anyway.
	if needEmail {
		failed, sent := j.send(ctx, Email{Order: s.Match.Order, Payment: s.Match.Payment, Customer: *customer})
		if !sent {
			return false, false
		}
		s.Emailed = &outcome{At: stamp{now}, Source: src, Failed: failed}
		s.Match = nil
	}
	if needEnrich {
		j.enrich(ctx, s, *customer, src, now)
	}
	s.Waiting = nil
	return true, true
}

func (j *joiner) lookupCustomer(ctx goka.Context, id int64) *domain.Customer {
	raw, _ := ctx.Lookup(j.customers, platform.CustomerKey(id)).([]byte)
	if raw == nil {
		return nil
	}
	c, err := j.codecs.Customer.Unmarshal(raw)
	if err != nil {
		// The customers input dead-letters this record; here it counts as missing, so the
		// order waits for a good one.
		slog.Debug("customer record does not decode", slog.Int64("customer_id", id), slog.Any("error", err))
		return nil
	}
	return &c
}

func (j *joiner) enrich(ctx goka.Context, s *orderState, c domain.Customer, src source, now time.Time) {
	rec := domain.OrderEnriched{ID: s.First.ID, CustomerID: s.First.CustomerID, CustomerLevel: c.Level}
	topic, known := j.names.LevelTopic(c.Level)
	if !known {
		j.counters.UnknownLevel.Add(1)
	}
	ctx.Emit(topic, ctx.Key(), rec)
	s.Enriched = &enrichedOutcome{outcome: outcome{At: stamp{now}, Source: src}, Topic: string(topic), Record: rec}
	j.counters.Enriched.Add(1)
}
