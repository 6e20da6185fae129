package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/platform"
)

// ProcessorConfig configures a service that is one goka processor plus an admin port: the
// validators have exactly this shape.
type ProcessorConfig struct {
	Kafka platform.Config
	// AdminAddr serves /livez, /readyz and /metrics; empty disables it (e.g. inside the
	// ecosystem binary).
	AdminAddr string
}

// NewProcessorConfig returns the defaults with the service's own admin address.
func NewProcessorConfig(adminAddr string) ProcessorConfig {
	return ProcessorConfig{Kafka: platform.DefaultConfig(), AdminAddr: adminAddr}
}

// RegisterFlags binds the configuration to flags and environment variables.
func (c *ProcessorConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	platform.StringVar(fs, &c.AdminAddr, "admin-addr", "ADMIN_ADDR", c.AdminAddr, "listen address of /livez, /readyz and /metrics; empty disables")
}

// Validate checks the configuration.
func (c ProcessorConfig) Validate() error { return c.Kafka.Validate() }

// PlatformConfig returns the Kafka and logging part.
func (c ProcessorConfig) PlatformConfig() platform.Config { return c.Kafka }

// LogValue prints the configuration in the start-up log line.
func (c ProcessorConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("kafka", c.Kafka), slog.String("admin_addr", c.AdminAddr))
}

// ProcessorService runs one goka processor and serves its health and metrics, with what a
// service adds through ProcessorOptions: admin routes, a sweeper of its state, parts of its own.
type ProcessorService struct {
	name      string
	adminAddr string
	proc      *Supervised
	routes    []route
	sweep     *sweep
	parts     []part
	// Health is ready once the processor has recovered; it fails from the start of shutdown.
	Health *Health
}

type route struct {
	pattern string
	handler http.Handler
}

type sweep struct {
	what  string
	every time.Duration
	fn    SweepFunc
}

type part struct {
	name string
	run  func(ctx context.Context) error
}

// ProcessorOption adds to what a ProcessorService runs.
type ProcessorOption func(*ProcessorService)

// WithRoute serves h at pattern on the admin address, beside /livez, /readyz and /metrics.
func WithRoute(pattern string, h http.Handler) ProcessorOption {
	return func(s *ProcessorService) { s.routes = append(s.routes, route{pattern, h}) }
}

// WithSweeps sweeps the processor's state with fn every interval (RunSweeps); the processor
// stops only once the sweeper has returned.
func WithSweeps(what string, every time.Duration, fn SweepFunc) ProcessorOption {
	return func(s *ProcessorService) { s.sweep = &sweep{what, every, fn} }
}

// WithPart runs run beside the processor, under the service's context: it ends with the
// service, and its failure ends the service.
func WithPart(name string, run func(ctx context.Context) error) ProcessorOption {
	return func(s *ProcessorService) { s.parts = append(s.parts, part{name, run}) }
}

// NewProcessorService builds the codecs (registering schemas when a registry is configured)
// and the processor of graph. Topics must have been provisioned.
func NewProcessorService(ctx context.Context, name string, cfg ProcessorConfig,
	graph func(platform.Names, *platform.Codecs) *goka.GroupGraph, opts ...ProcessorOption) (*ProcessorService, error) {
	codecs, err := platform.CodecsFor(ctx, cfg.Kafka)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	g, built := platform.NewGoka(cfg.Kafka), graph(cfg.Kafka.Names(), codecs)
	proc, err := NewSupervised(string(built.Group()), func() (*goka.Processor, error) { return g.NewProcessor(built) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	health := NewHealth()
	health.AddSupervised(proc)
	s := &ProcessorService{name: name, adminAddr: cfg.AdminAddr, proc: proc, Health: health}
	for _, opt := range opts {
		opt(s)
	}
	return s, nil
}

// SweepFunc visits the state of every partition a processor owns as of now (goka has no
// timers: state that expires is found by visiting it) and returns the keys visited.
type SweepFunc func(ctx context.Context, p *goka.Processor, now time.Time) (int64, error)

// sweepStopGrace bounds how long a sweep under way when RunSweeps' context ends may go on.
const sweepStopGrace = 10 * time.Second

// sweepShare is the most of the time a processor's state is being swept, and maxSweepStretch
// how far apart that may space sweeps, in intervals. A sweep visits every key, so it costs in
// proportion to the state, not to what expires: the Email service keeps every finished order
// for its 7-day dedup retention, and after 190,000 orders its 30-second sweep was a third of
// the services' CPU while it ran (docs/benchmarks.md, Session 6). At a fixed interval a large
// enough state would be swept without end; past the share, sweeps come further apart instead,
// so what they enforce (retention, hold retries, abandoning) comes later, never sooner than
// configured, and at most maxSweepStretch intervals apart: a sweep's wall time also counts
// what is not state (a slow mail server inside it, a backlog its visits queue behind), and
// the Email service's holds must still be retried and expired within minutes.
const (
	sweepShare      = 0.05
	maxSweepStretch = 10
)

// nextSweepIn is the wait after a sweep that took took: every, or longer (up to
// maxSweepStretch × every) when the sweep took more than sweepShare of every plus itself.
func nextSweepIn(every, took time.Duration) time.Duration {
	return min(maxSweepStretch*every, max(every, time.Duration(float64(took)*(1/sweepShare-1))))
}

// RunSweeps calls fn on the processor sup runs now, every interval (further apart when sweeps
// take longer than sweepShare of the time, see nextSweepIn), until ctx ends; a sweep is
// skipped while the processor recovers. A sweep cut short by a rebalance is simply done again
// next time.
//
// A sweep under way when ctx ends is let finish (up to sweepStopGrace), and the caller stops
// the processor only after RunSweeps returned: goka's VisitAllWithStats reads its visit
// counter without synchronisation when a visit is aborted while visits it queued still
// complete (found with -race when a test stopped the email service mid-sweep).
func RunSweeps(ctx context.Context, sup *Supervised, what string, every time.Duration, fn SweepFunc) {
	t := time.NewTimer(every)
	defer t.Stop()
	stretched := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		proc := sup.Processor()
		if !proc.Recovered() {
			t.Reset(every)
			continue
		}
		sweepCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(sweepStopGrace, cancel) })
		started := time.Now()
		visited, err := fn(sweepCtx, proc, started)
		took := time.Since(started)
		stop()
		cancel()
		next := every
		if err == nil {
			// An aborted or failed sweep says nothing of the state's size.
			next = nextSweepIn(every, took)
		}
		t.Reset(next)
		// Logged when sweeps start to come at least twice the interval apart and when they are
		// back at the interval, not on every wobble around the threshold.
		if !stretched && next >= 2*every || stretched && next == every {
			stretched = !stretched
			slog.Info(what+" sweeps spaced by their duration", slog.Bool("stretched", stretched),
				slog.Int64("keys", visited), slog.Duration("took", took), slog.Duration("next_in", next), slog.Duration("interval", every))
		}
		switch {
		case err == nil:
			slog.Debug("swept "+what, slog.Int64("keys", visited), slog.Duration("took", took))
		case errors.Is(err, goka.ErrVisitAborted) || ctx.Err() != nil:
			slog.Debug(what+" sweep interrupted", slog.Any("error", err))
		default:
			slog.Warn(what+" sweep failed", slog.Any("error", err))
		}
	}
}

// Run processes records and serves the admin port until ctx ends or a part fails.
func (s *ProcessorService) Run(ctx context.Context) error {
	ln, err := Listen(s.adminAddr)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	mux := http.NewServeMux()
	s.Health.Register(mux)
	for _, r := range s.routes {
		mux.Handle(r.pattern, r.handler)
	}
	g, gctx := NewGroup(ctx)
	// The processor stops once the service does, but after the sweeper (see RunSweeps).
	procCtx, stopProc := context.WithCancel(context.WithoutCancel(gctx))
	defer stopProc()
	g.Go("processor", func(context.Context) error { return s.proc.Run(procCtx) })
	g.Go("admin http", func(ctx context.Context) error { return Serve(ctx, ln, mux) })
	if s.sweep != nil {
		g.Go("sweeper", func(ctx context.Context) error {
			defer stopProc()
			RunSweeps(ctx, s.proc, s.sweep.what, s.sweep.every, s.sweep.fn)
			return nil
		})
	} else {
		defer context.AfterFunc(gctx, stopProc)()
	}
	for _, p := range s.parts {
		g.Go(p.name, p.run)
	}
	<-gctx.Done()
	s.Health.SetStopping()
	if err := g.Wait(); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}
