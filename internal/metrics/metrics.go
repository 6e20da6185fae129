// Package metrics holds the Prometheus metrics every binary exposes on /metrics: HTTP
// request durations, pending long-polls, forwarded requests, verdicts, decisions, dead
// letters, emails, and the state and lag of each goka processor. Metrics live in the default
// registry, so several services in one process (the ecosystem binary) share one /metrics.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "ordersys"

var (
	// HTTPRequestDuration observes every REST request by route pattern, method and status.
	HTTPRequestDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Duration of HTTP requests by route, method and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method", "status"})

	// ForwardedRequests counts requests forwarded to the owning instance, by outcome:
	// relayed (the owner answered), not_owner (it no longer owned the partition) or
	// unreachable (it could not be reached); the last two are retried.
	ForwardedRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "orders", Name: "forwarded_requests_total",
		Help: "Requests forwarded to the owner of the order's partition, by outcome.",
	}, []string{"outcome"})

	// Verdicts counts the verdicts validators emit, by check type and result.
	Verdicts = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "validation", Name: "verdicts_total",
		Help: "Validation verdicts emitted, by check type and result.",
	}, []string{"check", "result"})

	// Decisions counts the final states the aggregator wrote back.
	Decisions = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "validation", Name: "decisions_total",
		Help: "Orders decided by the validations aggregator, by final state.",
	}, []string{"state"})

	// ProcessorRestarts counts processors rebuilt after they failed (e.g. across a broker
	// restart), by processor.
	ProcessorRestarts = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "processor_restarts_total",
		Help: "Processors that failed and were rebuilt and restarted in-process.",
	}, []string{"processor"})

	// DeadLetters counts records sent to the dead-letter topic, by source topic and group.
	DeadLetters = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "dead_letters_total",
		Help: "Records that could not be decoded and went to the dead-letter topic.",
	}, []string{"topic", "group"})

	// ConflictingOrders counts CREATED records ignored because their id already had a CREATED
	// of other content (the first one is the order), by service.
	ConflictingOrders = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "conflicting_orders_total",
		Help: "Order records ignored because an earlier CREATED of the same id had other content.",
	}, []string{"service"})

	// MembershipRejected counts membership-table entries that the Orders view ignored as
	// invalid (undecodable, wrong key, unusable address): a misconfigured or hostile writer.
	MembershipRejected = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "membership_entries_rejected_total",
		Help: "Membership-table entries ignored because they could not be a real owner's.",
	})
)

// Handler serves the default registry.
func Handler() http.Handler { return promhttp.Handler() }

// gaugeSources sums gauges contributed by several components of one process, e.g. the
// pending waiters of two Orders instances in one test binary.
type gaugeSources struct {
	mu      sync.Mutex
	sources map[*func() float64]struct{}
}

func (g *gaugeSources) add(f func() float64) func() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sources == nil {
		g.sources = map[*func() float64]struct{}{}
	}
	key := &f
	g.sources[key] = struct{}{}
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.sources, key)
	}
}

func (g *gaugeSources) sum() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	total := 0.0
	for f := range g.sources {
		total += (*f)()
	}
	return total
}

var pendingWaiters gaugeSources

// PendingWaiters reports the long-polls waiting in this process (see TrackWaiters).
var PendingWaiters = promauto.NewGaugeFunc(prometheus.GaugeOpts{
	Namespace: namespace, Subsystem: "orders", Name: "pending_waiters",
	Help: "Long-poll GET requests waiting for an order.",
}, pendingWaiters.sum)

// emailEvents exposes the email service's counters (emails sent, enriched orders, holds
// expired, ...), summed over the instances in this process.
var emailEvents = &counterSets{desc: prometheus.NewDesc(namespace+"_email_events_total",
	"What the email service did, by event: emails_sent, emails_undeliverable, enriched, duplicates, ...",
	[]string{"event"}, nil)}

func init() { prometheus.MustRegister(processors, emailEvents) }

// TrackEmailCounters exposes snapshot's counts as ordersys_email_events_total{event=name};
// call the result to stop.
func TrackEmailCounters(snapshot func() map[string]int64) func() { return emailEvents.add(snapshot) }

// counterSets is a collector over counters kept elsewhere (so that a service's tests can read
// its own counts), summed per name over every registered set.
type counterSets struct {
	mu   sync.Mutex
	sets map[*func() map[string]int64]struct{}
	desc *prometheus.Desc
}

func (c *counterSets) add(snapshot func() map[string]int64) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil {
		c.sets = map[*func() map[string]int64]struct{}{}
	}
	key := &snapshot
	c.sets[key] = struct{}{}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.sets, key)
	}
}

func (c *counterSets) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *counterSets) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	totals := map[string]int64{}
	for f := range c.sets {
		for name, v := range (*f)() {
			totals[name] += v
		}
	}
	c.mu.Unlock()
	for name, v := range totals {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v), name)
	}
}

// Collectors lists every collector of this package, for documentation checks.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{HTTPRequestDuration, ForwardedRequests, Verdicts, Decisions, DeadLetters, ProcessorRestarts, PendingWaiters, processors, emailEvents}
}

// TrackWaiters adds a source of pending waiters; call the result to remove it.
func TrackWaiters(count func() int) func() {
	return pendingWaiters.add(func() float64 { return float64(count()) })
}

// processorCollector reports, on each scrape, every tracked processor's partitions: their
// state (1 for the current state, 0 for the others) and the offset lag of their inputs.
type processorCollector struct {
	mu    sync.Mutex
	procs map[*goka.Processor]struct{}
	state *prometheus.Desc
	lag   *prometheus.Desc
}

var processors = &processorCollector{
	procs: map[*goka.Processor]struct{}{},
	state: prometheus.NewDesc(namespace+"_processor_partition_state",
		"State of each partition of a goka processor (1 for the current state).",
		[]string{"group", "partition", "state"}, nil),
	lag: prometheus.NewDesc(namespace+"_processor_input_lag",
		"Offset lag of a processor's input partition (goka refreshes high watermarks every minute).",
		[]string{"group", "topic", "partition"}, nil),
}

// TrackProcessor reports p's state and lag until the returned function is called.
func TrackProcessor(p *goka.Processor) func() {
	processors.mu.Lock()
	processors.procs[p] = struct{}{}
	processors.mu.Unlock()
	return func() {
		processors.mu.Lock()
		delete(processors.procs, p)
		processors.mu.Unlock()
	}
}

var partitionStates = map[goka.PartitionStatus]string{
	goka.PartitionStopped:      "stopped",
	goka.PartitionInitializing: "initializing",
	goka.PartitionConnecting:   "connecting",
	goka.PartitionRecovering:   "recovering",
	goka.PartitionPreparing:    "preparing",
	goka.PartitionRunning:      "running",
}

func (c *processorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.lag
}

func (c *processorCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	procs := make([]*goka.Processor, 0, len(c.procs))
	for p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, p := range procs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		stats := p.StatsWithContext(ctx)
		cancel()
		if stats == nil {
			continue
		}
		group := string(p.Graph().Group())
		for partition, ps := range stats.Group {
			part := strconv.Itoa(int(partition))
			if ps.TableStats != nil {
				for status, name := range partitionStates {
					v := 0.0
					if ps.TableStats.Status == status {
						v = 1
					}
					ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, group, part, name)
				}
			}
			for topic, in := range ps.Input {
				ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(in.OffsetLag), group, topic, part)
			}
		}
	}
}
