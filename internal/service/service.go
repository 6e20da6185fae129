// Package service is the runtime every binary shares: readiness checks and the /livez and
// /readyz endpoints, an HTTP server that shuts down gracefully with its context, and running
// goka processors and views as parts of one service that stops as a whole.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/metrics"
)

// Health collects named readiness checks. A service is ready when every check passes and it
// is not shutting down.
type Health struct {
	mu       sync.RWMutex
	checks   map[string]func() error
	stopping atomic.Bool
}

// NewHealth returns an empty Health: ready until checks are added.
func NewHealth() *Health { return &Health{checks: map[string]func() error{}} }

// Add registers a check under name; a nil error means that part is ready.
func (h *Health) Add(name string, check func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// AddView makes readiness wait until v has caught up with its table.
func (h *Health) AddView(name string, v *goka.View) {
	h.Add("view "+name, func() error {
		if !v.Recovered() {
			return errors.New("recovering")
		}
		return nil
	})
}

// SetStopping marks the service as shutting down: readiness fails from now on, so load
// balancers stop sending traffic while in-flight requests finish.
func (h *Health) SetStopping() { h.stopping.Store(true) }

// WaitReady polls checks every 50 ms until all of them report ready (nil) and returns nil, or
// returns ctx's error when ctx ends first. It is how the ecosystem, the benchmark and the tests
// wait for services they started in-process.
func WaitReady(ctx context.Context, checks ...func() error) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		for _, check := range checks {
			ready = ready && check() == nil
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Ready returns nil when the service is ready, or the failing checks.
func (h *Health) Ready() error {
	failing := h.failing()
	if len(failing) == 0 {
		return nil
	}
	names := make([]string, 0, len(failing))
	for n, e := range failing {
		names = append(names, n+": "+e)
	}
	sort.Strings(names)
	return fmt.Errorf("not ready: %v", names)
}

func (h *Health) failing() map[string]string {
	failing := map[string]string{}
	if h.stopping.Load() {
		failing["service"] = "shutting down"
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for name, check := range h.checks {
		if err := check(); err != nil {
			failing[name] = err.Error()
		}
	}
	return failing
}

// Register mounts /livez, /readyz and /metrics on mux.
func (h *Health) Register(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("/livez", readOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})))
	mux.Handle("/readyz", readOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if failing := h.failing(); len(failing) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failing})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})))
	mux.Handle("/metrics", readOnly(metrics.Handler()))
}

// readOnly answers only GET and HEAD; any other method is 405 with an Allow header, as the
// REST routes answer (schemathesis: TRACE /livez was 200).
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Handler is an http.Handler serving only /livez, /readyz and /metrics, for services without
// a REST API (their admin port).
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	h.Register(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// ShutdownTimeout bounds how long in-flight HTTP requests may take to finish on shutdown.
const ShutdownTimeout = 15 * time.Second

// Listen opens addr ("" disables: returns nil, nil). Listening before serving lets callers
// learn the real port when addr asks for port 0.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends, then stops accepting, lets in-flight requests finish
// within ShutdownTimeout and returns. A nil listener serves nothing and waits for ctx.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	if ln == nil {
		<-ctx.Done()
		return nil
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// No WriteTimeout: long-polls set their own deadlines, bounded by a maximum.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		slog.Warn("http shutdown incomplete", slog.String("addr", ln.Addr().String()), slog.Any("error", err))
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Group runs the parts of a service together: when one part fails or ctx ends, all parts are
// stopped, and Wait returns the first error. A part that returns nil before ctx ends is
// treated as finished, not as a failure of the others.
type Group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// NewGroup returns a Group whose parts run under ctx.
func NewGroup(ctx context.Context) (*Group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	g := &Group{ctx: ctx, cancel: cancel}
	return g, ctx
}

// Go starts a named part.
func (g *Group) Go(name string, run func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := run(g.ctx); err != nil && !errors.Is(err, context.Canceled) {
			g.once.Do(func() {
				g.err = fmt.Errorf("%s: %w", name, err)
				g.cancel(g.err)
			})
		}
	}()
}

// Wait waits for every part and returns the first failure.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	return g.err
}

// RunProcessor runs p until ctx ends, reporting its state and lag on /metrics meanwhile.
// goka returns nil on a clean stop.
func RunProcessor(ctx context.Context, p *goka.Processor) error {
	defer metrics.TrackProcessor(p)()
	if err := p.Run(ctx); err != nil {
		return fmt.Errorf("processor %s: %w", p.Graph().Group(), err)
	}
	return nil
}

// RunView runs v until ctx ends.
func RunView(ctx context.Context, v *goka.View) error {
	if err := v.Run(ctx); err != nil {
		return fmt.Errorf("view %s: %w", v.Topic(), err)
	}
	return nil
}
