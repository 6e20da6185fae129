package service

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The admin routes answer GET and HEAD, and 405 with an Allow header otherwise
// (schemathesis found TRACE /livez answered 200).
func TestHealthRoutesAnswerOnlyGetAndHead(t *testing.T) {
	h := NewHealth()
	h.Add("check", func() error { return errors.New("not yet") })
	handler := h.Handler()
	cases := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/livez", http.StatusOK},
		{http.MethodHead, "/livez", http.StatusOK},
		{http.MethodGet, "/readyz", http.StatusServiceUnavailable},
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodTrace, "/livez", http.StatusMethodNotAllowed},
		{http.MethodPost, "/readyz", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.want)
		}
		if c.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", c.method, c.path, rec.Header().Get("Allow"))
		}
	}
}

// Readiness is every check passing and the service not shutting down; /readyz names what fails.
func TestHealthReadiness(t *testing.T) {
	h := NewHealth()
	if err := h.Ready(); err != nil {
		t.Fatalf("empty health: %v", err)
	}
	var viewReady atomic.Bool
	h.Add("view", func() error {
		if !viewReady.Load() {
			return errors.New("recovering")
		}
		return nil
	})
	h.Add("processor", func() error { return nil })
	if err := h.Ready(); err == nil || !strings.Contains(err.Error(), "view: recovering") {
		t.Fatalf("with a recovering view: %v", err)
	}
	viewReady.Store(true)
	if err := h.Ready(); err != nil {
		t.Fatalf("all checks pass: %v", err)
	}
	h.SetStopping()
	err := h.Ready()
	if err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("stopping: %v", err)
	}
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"service":"shutting down"`) {
		t.Fatalf("/readyz while stopping: %d %s", rec.Code, rec.Body)
	}
}

func TestWaitReady(t *testing.T) {
	var polls atomic.Int32
	readyAfter := func(n int32) func() error {
		return func() error {
			if polls.Add(1) < n {
				return errors.New("not yet")
			}
			return nil
		}
	}
	cases := []struct {
		name    string
		checks  []func() error
		timeout time.Duration
		wantErr bool
	}{
		{"no checks", nil, time.Second, false},
		{"ready at once", []func() error{func() error { return nil }}, time.Second, false},
		{"ready after a few polls", []func() error{readyAfter(3)}, 5 * time.Second, false},
		{"never ready", []func() error{func() error { return errors.New("down") }}, 200 * time.Millisecond, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			polls.Store(0)
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			defer cancel()
			err := WaitReady(ctx, c.checks...)
			if (err != nil) != c.wantErr {
				t.Fatalf("WaitReady: %v, want error %v", err, c.wantErr)
			}
		})
	}
}

// A failing part stops the others and is what Wait returns, named; a part that finishes with
// nil stops nothing; a cancelled context is no failure.
func TestGroup(t *testing.T) {
	t.Run("failure stops the others", func(t *testing.T) {
		g, _ := NewGroup(context.Background())
		stopped := make(chan struct{})
		g.Go("waiter", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return ctx.Err() })
		g.Go("broken", func(context.Context) error { return errors.New("boom") })
		err := g.Wait()
		if err == nil || err.Error() != "broken: boom" {
			t.Fatalf("Wait: %v", err)
		}
		select {
		case <-stopped:
		default:
			t.Fatal("the other part was not stopped")
		}
	})
	t.Run("a finished part stops nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		g, gctx := NewGroup(ctx)
		g.Go("done", func(context.Context) error { return nil })
		time.Sleep(20 * time.Millisecond)
		if gctx.Err() != nil {
			t.Fatal("a part returning nil cancelled the group")
		}
		g.Go("waiter", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		cancel()
		if err := g.Wait(); err != nil {
			t.Fatalf("Wait after cancel: %v", err)
		}
	})
}

// Serve finishes a request in flight when ctx ends (graceful shutdown), then returns nil.
func TestServeDrainsInFlightRequests(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		w.Write([]byte("done"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h) }()
	answered := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			answered <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- string(b)
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if got := <-answered; got != "done" {
		t.Fatalf("request in flight at shutdown got %q", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
