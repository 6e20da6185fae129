// Package bench measures the ecosystem: end-to-end latency of one order in flight, the
// broker's own round trip in the same run (the floor), the same latency with goka's default
// 100 ms producer flush (the naive baseline), open-loop throughput with a rate sweep, and
// GET /v1/orders/{id} against one and three Orders instances, with the CPU and memory the
// services used. cmd/bench is its command line; Run is the whole benchmark.
//
// By default the services run in a child process: the benchmark's executable started again
// with RoleEnv set, running internal/ecosystem on a fresh embedded broker in a temporary
// directory. Keeping the load generator out of the services' process keeps its allocations
// out of their heap and garbage collector and lets /proc report the services' CPU and memory
// alone; both still share the machine's cores, and the figures say how much each used. With
// --brokers and --url the benchmark measures an ecosystem that is already running.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

type runner struct {
	cfg    Config
	runID  string
	client *ordersClient
	pids   []int // services processes measured
	// broker is the broker the benchmark started in a process of its own, nil when it runs
	// inside the services process (or the services are external).
	broker *ownBroker
	steps  int // throughput steps started, to keep their order ids apart
	starts int // services started on the Apache Kafka broker, to keep their topics apart
	posted int // orders posted to the current ecosystem
	// payFailures counts payments that could not be written, over the run.
	payFailures atomic.Int64

	mu        sync.Mutex
	readKeys  []string
	errLogged int
}

// maxLoggedErrors bounds the request errors written to the log per run; all are counted.
const maxLoggedErrors = 20

// Run runs the benchmark. It returns what it measured so far together with any error.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	// Progress lines and the service processes' logs arrive from several goroutines.
	cfg.Logs = &lockedWriter{w: cfg.Logs}
	if cfg.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("bench: find own executable: %w", err)
		}
		cfg.Self = self
	}
	r := &runner{cfg: cfg, runID: randomID(), client: newOrdersClient(cfg.MaxInFlight)}
	defer r.client.close()
	res := &Results{StartedAt: time.Now().UTC(), Machine: describeMachine(), Partitions: cfg.Kafka.Partitions}
	err := r.run(ctx, res)
	res.Machine.LoadAvgEnd = loadAvg()
	res.DurationS = round2(time.Since(res.StartedAt).Seconds())
	res.Targets = targets(res)
	return res, err
}

// services is the ecosystem under test.
type services struct {
	url   string
	kafka platform.Config // its broker and namespace, for the benchmark's own clients
	proc  *servicesProcess
	// payer writes the customers and every order's payment (set by prepare): without them
	// the Email service would only park orders waiting for customers, never join, enrich or
	// send, and the figures would leave out a service users run.
	payer    *kgo.Client
	codecs   *platform.Codecs
	payments string // the namespaced payments topic
}

func (s *services) pprof() string {
	if s.proc == nil {
		return ""
	}
	return s.proc.ready.Pprof
}

func (r *runner) run(ctx context.Context, res *Results) error {
	dir, err := os.MkdirTemp("", "ordersys-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)

	res.Broker = "embedded (kfake) inside the services process"
	if r.cfg.URL == "" {
		b, err := r.startBroker(ctx, dir)
		if err != nil {
			return err
		}
		if b != nil {
			defer b.stop()
			r.broker = b
			res.Broker = b.describe
			logf(r.cfg.Logs, "%s", res.Broker)
		}
	}
	svc, err := r.startServices(ctx, filepath.Join(dir, "tuned"), false)
	if err != nil {
		return err
	}
	defer r.stopServices(svc)
	switch {
	case svc.proc != nil && r.broker != nil:
		res.Services = fmt.Sprintf("ecosystem (every service, internal/ecosystem, on the broker's process) in child process %d; load generator in process %d", svc.proc.ready.PID, os.Getpid())
	case svc.proc != nil:
		res.Services = fmt.Sprintf("ecosystem (embedded broker and every service, internal/ecosystem) in child process %d; load generator in process %d", svc.proc.ready.PID, os.Getpid())
	default:
		res.Services = fmt.Sprintf("running ecosystem at %s on %s", r.cfg.URL, strings.Join(r.cfg.Kafka.Brokers, ","))
		res.Broker = "the running ecosystem's (" + strings.Join(r.cfg.Kafka.Brokers, ",") + ")"
	}
	if err := r.prepare(ctx, svc); err != nil {
		return err
	}

	logf(r.cfg.Logs, "latency, one order in flight: %d warm-up + %d orders", r.cfg.Warmup, r.cfg.LatencyOrders)
	lat, err := r.oneInFlight(ctx, svc, "tuned: producer flush 0", "lat-"+r.runID, r.cfg.Warmup, r.cfg.LatencyOrders)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	res.Latency = &lat
	logf(r.cfg.Logs, "latency: p50 %.2f ms, p99 %.2f ms", lat.EndToEnd.P50Ms, lat.EndToEnd.P99Ms)

	logf(r.cfg.Logs, "floor: %d records through the broker alone", r.cfg.FloorRecords)
	floor, err := r.measureFloor(ctx, svc.kafka, r.cfg.Warmup, r.cfg.FloorRecords)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	res.Floor = &floor
	res.RatioToFloor = &FloorRatio{
		P50: ratio(lat.EndToEnd.P50Ms, floor.RoundTrip.P50Ms),
		P99: ratio(lat.EndToEnd.P99Ms, floor.RoundTrip.P99Ms),
	}
	logf(r.cfg.Logs, "floor: p50 %.3f ms, p99 %.3f ms", floor.RoundTrip.P50Ms, floor.RoundTrip.P99Ms)

	if len(r.cfg.Rates) > 0 {
		tp, err := r.sweep(ctx, svc)
		res.Throughput = &tp
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		r.afterSweep(ctx, svc, res)
		if r.cfg.ProfileDir != "" {
			if err := r.profiledStep(ctx, svc, &tp); err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			res.Throughput = &tp
		}
	}

	if r.cfg.ReadDuration > 0 {
		if err := r.readTests(ctx, svc, filepath.Join(dir, "extra"), res); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	r.stopServices(svc)

	switch {
	case r.cfg.NaiveOrders == 0:
		res.NaiveSkipped = "not asked for (--naive-orders 0)"
	case svc.proc == nil:
		res.NaiveSkipped = "the services are external: their client configuration cannot be changed from here"
	default:
		naive, err := r.naive(ctx, filepath.Join(dir, "naive"))
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		res.Naive = &naive
	}
	return nil
}

// startServices starts the ecosystem in a child process in dir, or describes the external one.
func (r *runner) startServices(ctx context.Context, dir string, gokaFlush bool) (*services, error) {
	if r.cfg.URL != "" {
		if r.cfg.ServicesPID != 0 {
			r.pids = []int{r.cfg.ServicesPID}
		}
		return &services{url: strings.TrimRight(r.cfg.URL, "/"), kafka: r.cfg.Kafka}, nil
	}
	logf(r.cfg.Logs, "starting the ecosystem (goka flush defaults: %v)", gokaFlush)
	started := time.Now()
	args := ecosystemArgs(dir, r.cfg.Kafka.Partitions, gokaFlush, r.cfg.Kafka.Producer)
	prefix := ""
	if r.broker != nil {
		// Each start gets fresh topics on the one broker, as a fresh embedded broker would.
		r.starts++
		prefix = fmt.Sprintf("bench-%s-%d.", r.runID, r.starts)
		args = append(args, "--brokers", strings.Join(r.broker.bootstrap, ","), "--topic-prefix", prefix)
	}
	proc, err := startServices(ctx, r.cfg.Self, roleEcosystem, args, r.cfg.Logs, r.cfg.StartTimeout)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	logf(r.cfg.Logs, "ecosystem ready in %v: %s, broker %s, pprof %s", time.Since(started).Round(time.Millisecond), proc.ready.URLs[0], strings.Join(proc.ready.Brokers, ","), proc.ready.Pprof)
	r.posted = 0
	kcfg := r.cfg.Kafka
	kcfg.Brokers = proc.ready.Brokers
	kcfg.TopicPrefix = prefix // none on a fresh embedded broker
	r.pids = []int{proc.ready.PID}
	return &services{url: proc.ready.URLs[0], kafka: kcfg, proc: proc}, nil
}

func (r *runner) stopServices(svc *services) {
	if svc.payer != nil {
		svc.payer.Close()
		svc.payer = nil
	}
	if svc.proc == nil {
		return
	}
	if err := svc.proc.stop(60 * time.Second); err != nil {
		logf(r.cfg.Logs, "%v", err)
	}
	r.pids = nil
}

// profiledStep repeats the first failing rate (the last rate when all passed) with CPU
// profiles, so the profile shows the services at their limit.
func (r *runner) profiledStep(ctx context.Context, svc *services, tp *Throughput) error {
	rate := tp.Steps[len(tp.Steps)-1].TargetRate
	logf(r.cfg.Logs, "profiling a throughput step at %.0f/s into %s", rate, r.cfg.ProfileDir)
	prof, err := startProfiles(ctx, r.client.http, svc.pprof(), r.cfg.ProfileDir, "throughput", r.cfg.StepDuration)
	if err != nil {
		return err
	}
	step, err := r.step(ctx, svc, rate, r.cfg.StepDuration, prof)
	if err != nil {
		return err
	}
	tp.ProfiledStep = &step
	return nil
}

// readTests reads with one instance, then with ExtraInstances more in a process of their own.
func (r *runner) readTests(ctx context.Context, svc *services, extraDir string, res *Results) error {
	keys := r.snapshotKeys()
	logf(r.cfg.Logs, "reads: one instance, %d clients, %v, %d keys", r.cfg.ReadClients, r.cfg.ReadDuration, len(keys))
	var prof *profiler
	if r.cfg.ProfileDir != "" {
		var err error
		if prof, err = startProfiles(ctx, r.client.http, svc.pprof(), r.cfg.ProfileDir, "reads", r.cfg.ReadDuration); err != nil {
			return err
		}
	}
	one, err := r.reads(ctx, []string{svc.url}, []string{svc.url}, keys, r.cfg.ReadClients, r.cfg.ReadDuration, prof)
	if err != nil {
		return err
	}
	res.Reads = append(res.Reads, one)
	logf(r.cfg.Logs, "reads, one instance: %.0f/s, p50 %.3f ms, p99 %.3f ms", one.RatePerS, one.Latency.P50Ms, one.Latency.P99Ms)
	if r.cfg.ExtraInstances == 0 {
		return nil
	}

	logf(r.cfg.Logs, "starting %d more Orders instances", r.cfg.ExtraInstances)
	extra, err := startServices(ctx, r.cfg.Self, roleOrders, ordersArgs(svc.kafka, extraDir, r.cfg.ExtraInstances), r.cfg.Logs, r.cfg.StartTimeout)
	if err != nil {
		return err
	}
	defer func() {
		if err := extra.stop(60 * time.Second); err != nil {
			logf(r.cfg.Logs, "%v", err)
		}
	}()
	urls := append([]string{svc.url}, extra.ready.URLs...)
	if err := r.awaitServing(ctx, urls, keys, 2*time.Minute); err != nil {
		return err
	}
	measured := r.pids
	r.pids = append(slices.Clone(measured), extra.ready.PID)
	defer func() { r.pids = measured }()
	logf(r.cfg.Logs, "reads: %d instances, %d clients, %v", len(urls), r.cfg.ReadClients, r.cfg.ReadDuration)
	three, err := r.reads(ctx, urls, []string{svc.url, extra.ready.URLs[0]}, keys, r.cfg.ReadClients, r.cfg.ReadDuration, nil)
	if err != nil {
		return err
	}
	res.Reads = append(res.Reads, three)
	logf(r.cfg.Logs, "reads, %d instances: %.0f/s, p50 %.3f ms, p99 %.3f ms", len(urls), three.RatePerS, three.Latency.P50Ms, three.Latency.P99Ms)
	return nil
}

// naive measures one order in flight on a fresh ecosystem running goka's default flush.
func (r *runner) naive(ctx context.Context, dir string) (OneInFlight, error) {
	svc, err := r.startServices(ctx, dir, true)
	if err != nil {
		return OneInFlight{}, err
	}
	defer r.stopServices(svc)
	if err := r.prepare(ctx, svc); err != nil {
		return OneInFlight{}, err
	}
	warmup := min(r.cfg.Warmup, 5)
	logf(r.cfg.Logs, "naive baseline, one order in flight: %d warm-up + %d orders", warmup, r.cfg.NaiveOrders)
	res, err := r.oneInFlight(ctx, svc, "goka defaults: producer flush 100 ms / 64 KiB", "naive-"+r.runID, warmup, r.cfg.NaiveOrders)
	if err != nil {
		return res, err
	}
	logf(r.cfg.Logs, "naive: p50 %.2f ms, p99 %.2f ms", res.EndToEnd.P50Ms, res.EndToEnd.P99Ms)
	return res, nil
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
