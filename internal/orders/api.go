package orders

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
)

// headerForwarded marks a request forwarded by another instance: it is answered locally or
// refused with not-owner, never forwarded again.
const headerForwarded = "X-Ordersys-Forwarded"

// OpenAPI is the API's OpenAPI 3 document, served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Handler is the HTTP API: the REST routes of SPEC.md, /livez, /readyz, /metrics and the
// OpenAPI document.
func (s *Service) Handler() http.Handler { return s.Router() }

// Router is Handler as a chi router, so tests can walk its routes.
func (s *Service) Router() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, logRequests, middleware.Recoverer)
	s.Health.Register(r)
	r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})
	r.Route("/v1/orders", func(r chi.Router) {
		r.Post("/", s.handlePost)
		r.Get("/{id}", func(w http.ResponseWriter, r *http.Request) { s.handleGet(w, r, anyVersion) })
		r.Get("/{id}/validated", func(w http.ResponseWriter, r *http.Request) { s.handleGet(w, r, decided) })
	})
	return r
}

// logRequests writes one line per request at info level, with the request id that is also
// forwarded on routed requests, and observes its duration by route pattern.
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		metrics.HTTPRequestDuration.WithLabelValues(route, r.Method, strconv.Itoa(ww.Status())).Observe(time.Since(start).Seconds())
		slog.Info("http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", ww.Status()),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", middleware.GetReqID(r.Context())),
			slog.Bool("forwarded", r.Header.Get(headerForwarded) != ""),
			slog.Bool("canceled", r.Context().Err() == context.Canceled))
	})
}

func anyVersion(domain.Order) bool { return true }

func decided(o domain.Order) bool {
	return o.State == domain.OrderValidated || o.State == domain.OrderFailed
}

// timeout reads ?timeout= in milliseconds: default when absent, clamped to the maximum.
func (s *Service) timeout(r *http.Request) (time.Duration, error) {
	raw := r.URL.Query().Get("timeout")
	if raw == "" {
		return s.cfg.DefaultTimeout, nil
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(raw, "-") {
		// More milliseconds than an int64 holds is still just "longer than the maximum": the
		// documented clamp, not a malformed request (schemathesis sent 91375908435780190208).
		ms, err = math.MaxInt64, nil
	}
	if err != nil || ms < 0 {
		return 0, badRequest("timeout", fmt.Sprintf("must be a non-negative number of milliseconds, got %q", raw))
	}
	d := time.Duration(ms) * time.Millisecond
	if d > s.cfg.MaxTimeout || ms > int64(s.cfg.MaxTimeout/time.Millisecond) {
		d = s.cfg.MaxTimeout
	}
	return d, nil
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request, accept func(domain.Order) bool) {
	id, err := pathID(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	timeout, err := s.timeout(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx, cancel := s.requestContext(r, timeout)
	defer cancel()
	s.route(ctx, w, r, id, nil, func(ctx context.Context, p int32) (int, any, error) {
		o, err := s.waitLocal(ctx, id, p, accept)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, o, nil
	})
}

// pathID is the {id} of the request's path, decoded. chi matches on the raw path when the
// request has one that differs from the default encoding of its decoded path (Location
// escapes ';' and ',' as %3B and %2C, which Go keeps as RawPath), and the parameter is then
// still escaped; otherwise on the decoded path. Either way every id POST accepts, and the
// Location it answered with, reads back the order.
func pathID(r *http.Request) (string, error) {
	id := chi.URLParam(r, "id")
	if r.URL.RawPath == "" {
		return id, nil
	}
	decoded, err := url.PathUnescape(id)
	if err != nil {
		return "", badRequest("id", "is not a valid escaped path segment")
	}
	return decoded, nil
}

// requestContext bounds a request by its timeout and by the end of the shutdown drain, which
// cancels it with the cause ErrShuttingDown (see requestErr).
func (s *Service) requestContext(r *http.Request, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(r.Context())
	stopDrain := context.AfterFunc(s.drained, func() { cancelCause(ErrShuttingDown) })
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	return ctx, func() {
		stopDrain()
		cancelTimeout()
		cancelCause(nil)
	}
}

// requestErr is why a request's context ended: ErrShuttingDown when the drain ended it, else
// its own error (the client hung up, or the deadline passed).
func requestErr(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), ErrShuttingDown) {
		return ErrShuttingDown
	}
	return ctx.Err()
}

// waitLocal waits for an accepted version of id in the local view. It waits in slices and
// re-checks ownership between them, so a partition that moves away mid-wait sends the request
// back to routing instead of letting it time out here.
func (s *Service) waitLocal(ctx context.Context, id string, p int32, accept func(domain.Order) bool) (domain.Order, error) {
	const slice = 500 * time.Millisecond
	for {
		sliceCtx, cancel := context.WithTimeout(ctx, slice)
		o, err := s.waiters.Wait(sliceCtx, id, accept, func() (*domain.Order, error) { return s.lookup(id, p) })
		cancel()
		switch {
		case err == nil:
			return o, nil
		case ctx.Err() != nil:
			return domain.Order{}, requestErr(ctx)
		case !errors.Is(err, context.DeadlineExceeded):
			return domain.Order{}, err
		case !s.ownership.Owns(p):
			return domain.Order{}, ErrNotOwner
		}
	}
}

func (s *Service) handlePost(w http.ResponseWriter, r *http.Request) {
	// A body still arriving when the drain ends is cut off: the client gets 503 instead of a
	// connection dropped when the HTTP server's shutdown bound passes.
	rc := http.NewResponseController(w)
	stopCutting := context.AfterFunc(s.drained, func() { _ = rc.SetReadDeadline(time.Now()) })
	order, err := decodeOrder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), s.cfg.MaxBodyBytes)
	if !stopCutting() {
		// The cut may also have ended the request's context: answer now, whatever was read.
		writeError(w, r, ErrShuttingDown)
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	timeout, err := s.timeout(r)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ctx, cancel := s.requestContext(r, timeout)
	defer cancel()
	body, _ := json.Marshal(order)
	s.route(ctx, w, r, order.ID, body, func(ctx context.Context, p int32) (int, any, error) {
		if err := s.create(ctx, order, p); err != nil {
			return 0, nil, err
		}
		w.Header().Set("Location", "/v1/orders/"+url.PathEscape(order.ID))
		return http.StatusCreated, order, nil
	})
}
