package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// The measurement after the throughput sweep, on the state it left.

// settleTimeout bounds the wait for the services to work off the sweep's backlog.
const settleTimeout = 2 * time.Minute

// afterSweep measures one order in flight and the floor again, as many as at the start, once
// every group has read everything written (the last step's payments and enrichment may still
// be queued). A failure is recorded in the results, not returned: what follows does not
// depend on it.
func (r *runner) afterSweep(ctx context.Context, svc *services, res *Results) {
	after := &AfterSweep{OrdersBefore: r.posted}
	res.AfterSweep = after
	settled, err := r.waitSettled(ctx, svc, settleTimeout)
	after.SettleS = round2(settled.Seconds())
	if err != nil {
		after.Error = err.Error()
		logf(r.cfg.Logs, "after the sweep: %v", err)
		return
	}
	logf(r.cfg.Logs, "after the sweep (%d orders taken, settled in %v): one order in flight and the floor again", r.posted, settled.Round(time.Millisecond))
	lat, err := r.oneInFlight(ctx, svc, "tuned, after the sweep", "after-"+r.runID, r.cfg.Warmup, r.cfg.LatencyOrders)
	after.Latency = lat
	if err != nil {
		after.Error = err.Error()
		logf(r.cfg.Logs, "after the sweep: %v", err)
		return
	}
	floor, err := r.measureFloor(ctx, svc.kafka, r.cfg.Warmup, r.cfg.FloorRecords)
	after.Floor = floor
	if err != nil {
		after.Error = err.Error()
		logf(r.cfg.Logs, "after the sweep: %v", err)
		return
	}
	logf(r.cfg.Logs, "after the sweep: one in flight p50 %.2f ms, p99 %.2f ms; floor p50 %.3f ms, p99 %.3f ms",
		lat.EndToEnd.P50Ms, lat.EndToEnd.P99Ms, floor.RoundTrip.P50Ms, floor.RoundTrip.P99Ms)
}

// waitSettled waits until every consumer group of the ecosystem has committed up to the end
// of what it reads (no lag), and returns how long that took.
func (r *runner) waitSettled(ctx context.Context, svc *services, timeout time.Duration) (time.Duration, error) {
	cl, err := kgo.NewClient(platform.ClientOptions(svc.kafka)...)
	if err != nil {
		return 0, fmt.Errorf("wait for the backlog: connect: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	names := svc.kafka.Names()
	var groups []string
	for _, g := range platform.AllGroups() {
		groups = append(groups, string(names.Group(g)))
	}
	start := time.Now()
	var last string
	for {
		lags, err := adm.Lag(ctx, groups...)
		if err == nil {
			err = lags.Error()
		}
		var total int64
		if err == nil {
			for _, l := range lags {
				total += l.Lag.Total()
			}
			if total == 0 {
				return time.Since(start), nil
			}
			last = fmt.Sprintf("%d records not yet read", total)
		} else {
			last = err.Error()
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("wait for the backlog: not worked off after %v: %s", timeout, last)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return time.Since(start), fmt.Errorf("wait for the backlog: %w", err)
		}
	}
}
