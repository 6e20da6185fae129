package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ordersys/ecosystem/internal/broker"
	"github.com/ordersys/ecosystem/internal/domain"
)

// Step is one open-loop throughput run at a target rate.
type Step struct {
	TargetRate float64 `json:"targetRate"` // orders started per second
	// OrdersBefore counts the orders the benchmark had posted to this ecosystem before the
	// step: the inventory service's cost per order grows with them.
	OrdersBefore int     `json:"ordersBefore"`
	DurationS    float64 `json:"durationS"` // how long orders were started
	Orders       int     `json:"orders"`
	Validated    int     `json:"validated"`
	Failed       int     `json:"failed"`
	Errors       int     `json:"errors"`
	// AchievedRate is validated orders per second, from the first order's scheduled start to
	// the last order's verdict.
	AchievedRate float64 `json:"achievedRate"`
	// Latency of each order runs from its scheduled start (not from when a client was free to
	// send it, so queueing in the load generator counts against the services, as it would for
	// real clients) to the answer of GET …/validated.
	Latency Latency `json:"latency"`
	// Resources used while the step ran; nil when they could not be read.
	Resources *Resources `json:"resources,omitempty"`
	// PerOrder is the step's cost per validated order: CPU and what was written to Kafka.
	PerOrder *PerOrder `json:"perOrder,omitempty"`
	// Pass: p99 within the limit, every order validated, none failed.
	Pass bool `json:"pass"`
	// Profiled: CPU profiles were taken during the step (its figures include their cost).
	Profiled bool `json:"profiled,omitempty"`
}

// Throughput is the rate sweep.
type Throughput struct {
	P99LimitMs  float64 `json:"p99LimitMs"`
	MaxInFlight int     `json:"maxInFlight"`
	Steps       []Step  `json:"steps"`
	// MaxPassingRate is the highest target rate of a passing step (0 when none passed).
	MaxPassingRate float64 `json:"maxPassingRate"`
	// ProfiledStep repeats the first failing rate (or the last rate) with CPU profiles.
	ProfiledStep *Step `json:"profiledStep,omitempty"`
}

// orderOutcome is what became of one order of a step.
type orderOutcome uint8

const (
	outcomeNone orderOutcome = iota // not started: the step was interrupted
	outcomeValidated
	outcomeFailed
	outcomeError
)

// sweep runs steps at increasing rates and stops after the first that does not pass.
func (r *runner) sweep(ctx context.Context, svc *services) (Throughput, error) {
	tp := Throughput{P99LimitMs: ms(r.cfg.P99Limit), MaxInFlight: r.cfg.MaxInFlight}
	for _, rate := range r.cfg.Rates {
		step, err := r.step(ctx, svc, rate, r.cfg.StepDuration, nil)
		if err != nil {
			return tp, err
		}
		tp.Steps = append(tp.Steps, step)
		logf(r.cfg.Logs, "throughput %.0f/s: achieved %.0f/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d failed, %d errors",
			rate, step.AchievedRate, step.Latency.P50Ms, step.Latency.P99Ms, step.Latency.MaxMs, step.Failed, step.Errors)
		if !step.Pass {
			break
		}
		tp.MaxPassingRate = rate
		// Let the services finish their background work (table writes, commits) so that a
		// step does not inherit the previous one's backlog.
		if err := sleepCtx(ctx, time.Second); err != nil {
			return tp, err
		}
	}
	return tp, nil
}

// step starts orders at rate for d, each one POSTed and awaited to its verdict, and waits for
// all of them. profile, when set, runs alongside and is stopped with the step.
func (r *runner) step(ctx context.Context, svc *services, rate float64, d time.Duration, profile *profiler) (Step, error) {
	n := max(1, int(rate*d.Seconds()))
	// Every step posts new ids: an id posted before would be answered from the view at once.
	r.steps++
	prefix := fmt.Sprintf("tp%.0f-%s-%d", rate, r.runID, r.steps)
	latencies := make([]time.Duration, n)
	outcomes := make([]orderOutcome, n)
	sem := make(chan struct{}, r.cfg.MaxInFlight)
	var wg sync.WaitGroup

	payFailuresBefore := r.payFailures.Load()
	writes, writesErr := startWriteCounter(ctx, svc.kafka)
	countsBefore := r.brokerCounts(ctx)
	mon, monErr := r.startMonitor()
	start := time.Now()
	interval := float64(time.Second) / rate
schedule:
	for i := range n {
		at := start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(at); wait > 0 {
			if err := sleepCtx(ctx, wait); err != nil {
				break schedule
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break schedule
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcomes[i] = r.loadOrder(ctx, svc, prefix+"-"+strconv.Itoa(i), i)
			latencies[i] = time.Since(at)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The step's payments count in its writes; the last few may still be on their way.
	payFailures, err := r.paymentsSettled(ctx, svc, payFailuresBefore)
	if err != nil {
		return Step{}, fmt.Errorf("throughput step %.0f/s: %w", rate, err)
	}
	var profErr error
	if profile != nil {
		profErr = profile.stop()
	}
	if err := ctx.Err(); err != nil {
		return Step{}, fmt.Errorf("throughput step %.0f/s: %w", rate, err)
	}
	if err := r.servicesAlive(); err != nil {
		return Step{}, fmt.Errorf("throughput step %.0f/s: %w", rate, err)
	}

	s := Step{TargetRate: rate, OrdersBefore: r.posted, DurationS: d.Seconds(), Orders: n, Profiled: profile != nil}
	r.posted += n
	decided := latencies[:0:0]
	for i, o := range outcomes {
		switch o {
		case outcomeValidated:
			s.Validated++
			r.addReadKey(prefix + "-" + strconv.Itoa(i))
		case outcomeFailed:
			s.Failed++
		default:
			s.Errors++
			continue
		}
		decided = append(decided, latencies[i])
	}
	s.Errors += payFailures
	s.Latency = summarize(decided)
	s.AchievedRate = round2(float64(s.Validated) / elapsed.Seconds())
	s.Pass = s.Errors == 0 && s.Failed == 0 && s.Latency.P99Ms <= ms(r.cfg.P99Limit)
	s.Resources = r.finishMonitor(mon, monErr)
	s.PerOrder = r.perOrder(ctx, s, writes, writesErr, countsBefore)
	return s, profErr
}

// perOrder divides the step's CPU and writes by its validated orders, once the services'
// trailing writes (table updates, emails) have landed; nil (logged) when they could not be
// measured.
func (r *runner) perOrder(ctx context.Context, s Step, writes *writeCounter, startErr error, countsBefore *broker.Counts) *PerOrder {
	if startErr != nil {
		logf(r.cfg.Logs, "writes not counted: %v", startErr)
		return nil
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		writes.client.Close()
		return nil
	}
	// The broker's own counts, when it keeps them, give the bytes as produced (the table topics
	// may be compacted by the time they are read back) and the requests.
	countsAfter := r.brokerCounts(ctx)
	var produced map[string]int64
	if countsBefore != nil && countsAfter != nil {
		produced = writes.producedSince(ctx, countsBefore.ProducedBytes, countsAfter.ProducedBytes)
	}
	per, err := writes.count(ctx, s.Validated, produced)
	if err != nil {
		logf(r.cfg.Logs, "writes not counted: %v", err)
		return nil
	}
	if countsBefore != nil && countsAfter != nil {
		per.addRequests(countsBefore.Requests, countsAfter.Requests, s.Validated)
	}
	if res := s.Resources; res != nil && s.Validated > 0 {
		per.ServicesCPUMs = round2(float64(res.servicesCPU.Microseconds()) / 1000 / float64(s.Validated))
		if res.BrokerCPUCores != nil {
			b := round2(float64(res.brokerCPU.Microseconds()) / 1000 / float64(s.Validated))
			per.BrokerCPUMs = &b
		}
	}
	return per
}

// loadOrder posts one order, pays for it and awaits its verdict.
func (r *runner) loadOrder(runCtx context.Context, svc *services, id string, i int) orderOutcome {
	ctx, cancel := context.WithTimeout(runCtx, 60*time.Second)
	defer cancel()
	o := benchOrder(id, i)
	base := svc.url
	if err := r.client.post(ctx, base, o); err != nil {
		r.noteError(err)
		return outcomeError
	}
	r.pay(runCtx, svc, o) // not ctx: the payment may still be buffered when this returns
	state, err := r.client.awaitDecided(ctx, base, id, 30*time.Second)
	switch {
	case err != nil:
		r.noteError(err)
		return outcomeError
	case state == domain.OrderValidated:
		return outcomeValidated
	default:
		return outcomeFailed
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
