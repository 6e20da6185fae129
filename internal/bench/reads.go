package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Reads is a closed-loop run of GET /v1/orders/{id} on orders that exist.
type Reads struct {
	Instances int     `json:"instances"` // Orders instances the requests are spread over
	Clients   int     `json:"clients"`   // concurrent clients, each sending its next request on an answer
	DurationS float64 `json:"durationS"`
	Keys      int     `json:"keys"` // distinct order ids read, picked at random
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	// RatePerS is answered requests (200) per second.
	RatePerS float64 `json:"ratePerS"`
	Latency  Latency `json:"latency"`
	// ForwardedFraction is the share of requests an instance forwarded to the owner of the
	// id's partition (from the services' forwarded-requests counters); nil when unknown.
	ForwardedFraction *float64 `json:"forwardedFraction,omitempty"`
	// Resources used during the run; nil when they could not be read.
	Resources *Resources `json:"resources,omitempty"`
	Profiled  bool       `json:"profiled,omitempty"`
}

// forwardedSeries is the counter of requests an instance relayed to the owner.
const forwardedSeries = `ordersys_orders_forwarded_requests_total{outcome="relayed"}`

// reads runs clients that each GET a random order from keys on urls[(client+k) % len(urls)]
// for d. metricsURLs are the Orders base URLs whose /metrics, summed, count every forward
// (one per process: the counters are per process).
func (r *runner) reads(ctx context.Context, urls, metricsURLs []string, keys []string, clients int, d time.Duration, profile *profiler) (Reads, error) {
	res := Reads{Instances: len(urls), Clients: clients, DurationS: d.Seconds(), Keys: len(keys), Profiled: profile != nil}
	if len(keys) == 0 {
		return res, fmt.Errorf("reads: no order ids to read")
	}
	forwardedBefore, fwdErr := r.forwarded(ctx, metricsURLs)
	mon, monErr := r.startMonitor()

	perClient := make([][]time.Duration, clients)
	errs := make([]int, clients)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 0x5eed))
			lat := make([]time.Duration, 0, 4096)
			for k := c; ctx.Err() == nil; k++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				err := r.client.read(ctx, urls[k%len(urls)], keys[rng.IntN(len(keys))])
				if err != nil {
					errs[c]++
					r.noteError(err)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			perClient[c] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var profErr error
	if profile != nil {
		profErr = profile.stop()
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("reads: %w", err)
	}
	res.Resources = r.finishMonitor(mon, monErr)

	var all []time.Duration
	for c := range clients {
		all = append(all, perClient[c]...)
		res.Errors += errs[c]
	}
	res.Requests = len(all) + res.Errors
	res.RatePerS = round2(float64(len(all)) / elapsed.Seconds())
	res.Latency = summarize(all)
	if forwardedAfter, err := r.forwarded(ctx, metricsURLs); err == nil && fwdErr == nil && res.Requests > 0 {
		f := round2((forwardedAfter - forwardedBefore) / float64(res.Requests))
		res.ForwardedFraction = &f
	}
	return res, profErr
}

// forwarded sums the relayed-forward counters of the given services.
func (r *runner) forwarded(ctx context.Context, metricsURLs []string) (float64, error) {
	var sum float64
	for _, u := range metricsURLs {
		v, err := r.client.scrapeCounter(ctx, u, forwardedSeries)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// awaitServing waits until every url answers GETs of a sample of keys promptly, twice in a
// row: after extra instances join, partitions move (goka pauses ~5 s per rebalance) and the
// membership table must name the new owners before reads measure anything steady.
func (r *runner) awaitServing(ctx context.Context, urls []string, keys []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sample := keys[:min(len(keys), 60)]
	good := 0
	var lastErr error
	for good < 2 {
		ok := true
		for _, u := range urls {
			for _, k := range sample {
				t0 := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
				err := r.client.read(rctx, u, k)
				rcancel()
				if err == nil && time.Since(t0) > 100*time.Millisecond {
					err = fmt.Errorf("read of %s on %s took %v", k, u, time.Since(t0))
				}
				if err != nil {
					ok, lastErr = false, err
					break
				}
			}
			if !ok {
				break
			}
		}
		if ok {
			good++
		} else {
			good = 0
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return fmt.Errorf("await instances serving: %w (last: %v)", err, lastErr)
		}
	}
	return nil
}
