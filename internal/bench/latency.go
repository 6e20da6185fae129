package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// OneInFlight is the end-to-end latency of orders sent one at a time: POST /v1/orders, then
// GET /v1/orders/{id}/validated, the reference's end-to-end test.
type OneInFlight struct {
	// Config names the services' client configuration.
	Config string `json:"config"`
	Warmup int    `json:"warmup"`
	Orders int    `json:"orders"` // measured, after the warm-up
	Failed int    `json:"failed"` // decided FAILED (must be 0: stock and customers are set up to pass)
	Errors int    `json:"errors"` // requests that failed
	// EndToEnd runs from sending the POST to the answer of GET …/validated.
	EndToEnd Latency `json:"endToEnd"`
	// Post is the POST alone: until the order is written to Kafka with acks=all.
	Post Latency `json:"post"`
	// Resources used during the measured orders; nil when they could not be read.
	Resources *Resources `json:"resources,omitempty"`
}

// maxConsecutiveErrors ends a one-at-a-time run whose services are evidently gone.
const maxConsecutiveErrors = 10

// oneInFlight posts warmup+n orders one after another, each awaited to its verdict, and
// summarises the last n.
func (r *runner) oneInFlight(ctx context.Context, svc *services, config, prefix string, warmup, n int) (OneInFlight, error) {
	base := svc.url
	res := OneInFlight{Config: config, Warmup: warmup, Orders: n}
	total := make([]time.Duration, 0, n)
	post := make([]time.Duration, 0, n)
	consecutive := 0
	var mon *resourceMonitor
	var monErr error
	var payFailuresBefore int64
	for i := range warmup + n {
		if i == warmup {
			mon, monErr = r.startMonitor()
			payFailuresBefore = r.payFailures.Load()
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("one in flight: %w", err)
		}
		id := prefix + "-" + strconv.Itoa(i)
		o := benchOrder(id, i)
		r.posted++
		octx, cancel := context.WithTimeout(ctx, 60*time.Second)
		start := time.Now()
		err := r.client.post(octx, base, o)
		posted := time.Since(start)
		if err == nil {
			r.pay(ctx, svc, o) // not octx: the payment may still be buffered when it ends
		}
		var state domain.OrderState
		if err == nil {
			state, err = r.client.awaitDecided(octx, base, id, 30*time.Second)
		}
		elapsed := time.Since(start)
		cancel()
		measured := i >= warmup
		switch {
		case err != nil:
			consecutive++
			if consecutive >= maxConsecutiveErrors {
				return res, fmt.Errorf("one in flight: %d requests failed in a row, the last: %w", consecutive, err)
			}
			if measured {
				res.Errors++
			}
			logf(r.cfg.Logs, "order %s: %v", id, err)
			continue
		case state != domain.OrderValidated:
			if measured {
				res.Failed++
			}
		default:
			r.addReadKey(id)
		}
		consecutive = 0
		if measured {
			total = append(total, elapsed)
			post = append(post, posted)
		}
	}
	res.Resources = r.finishMonitor(mon, monErr)
	payFailures, err := r.paymentsSettled(ctx, svc, payFailuresBefore)
	if err != nil {
		return res, fmt.Errorf("one in flight: %w", err)
	}
	res.Errors += payFailures
	res.EndToEnd = summarize(total)
	res.Post = summarize(post)
	return res, nil
}

// Floor is the broker's own round trip, measured in the same run: one record at a time
// produced with a bare franz-go client (platform.ClientOptions: no linger, acks=all) and
// consumed by another, with no services in between.
type Floor struct {
	Warmup  int `json:"warmup"`
	Records int `json:"records"`
	// RoundTrip runs from handing the record to the producer to the consumer receiving it.
	RoundTrip Latency `json:"roundTrip"`
	// Resources used during the measured records; nil when they could not be read.
	Resources *Resources `json:"resources,omitempty"`
}

// measureFloor measures Floor on a topic of its own, deleted afterwards.
func (r *runner) measureFloor(ctx context.Context, kcfg platform.Config, warmup, n int) (_ Floor, err error) {
	runID := r.runID
	res := Floor{Warmup: warmup, Records: n}
	topic := kcfg.Names().Topic("bench-floor-" + runID)
	producer, err := kgo.NewClient(platform.ClientOptions(kcfg)...)
	if err != nil {
		return res, fmt.Errorf("measure floor: connect: %w", err)
	}
	defer producer.Close()
	admin := kadm.NewClient(producer)
	created, err := admin.CreateTopic(ctx, 1, int16(kcfg.Replication), nil, topic)
	if err == nil {
		err = created.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return res, fmt.Errorf("measure floor: create topic %s: %w", topic, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, derr := admin.DeleteTopic(dctx, topic); derr != nil && err == nil {
			err = fmt.Errorf("measure floor: delete topic %s: %w", topic, derr)
		}
	}()
	consumer, err := kgo.NewClient(platform.ClientOptions(kcfg,
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return res, fmt.Errorf("measure floor: connect consumer: %w", err)
	}
	defer consumer.Close()

	rtts := make([]time.Duration, 0, n)
	var mon *resourceMonitor
	var monErr error
	for i := range warmup + n {
		if i == warmup {
			mon, monErr = r.startMonitor()
		}
		want := strconv.Itoa(i)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		acked := make(chan error, 1)
		start := time.Now()
		producer.Produce(rctx, &kgo.Record{Topic: topic, Key: []byte("floor"), Value: []byte(want)},
			func(_ *kgo.Record, err error) { acked <- err })
		rtt, cerr := consumeUntil(rctx, consumer, want, start)
		// One record in flight: the next starts only once this one is also acknowledged.
		perr := <-acked
		cancel()
		if err := errors.Join(cerr, perr); err != nil {
			return res, fmt.Errorf("measure floor: record %d: %w", i, err)
		}
		if i >= warmup {
			rtts = append(rtts, rtt)
		}
	}
	res.Resources = r.finishMonitor(mon, monErr)
	res.RoundTrip = summarize(rtts)
	return res, nil
}

// consumeUntil polls until the record whose value is want arrives and returns the time since
// start at that moment.
func consumeUntil(ctx context.Context, consumer *kgo.Client, want string, start time.Time) (time.Duration, error) {
	for {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("consume: %w", err)
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("consume %s/%d: %w", t, p, err) })
		if ferr != nil {
			return 0, ferr
		}
		found := false
		fetches.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == want })
		if found {
			return time.Since(start), nil
		}
	}
}
