package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
)

// localFunc answers a request on the instance owning partition p.
type localFunc func(ctx context.Context, p int32) (status int, body any, err error)

// route answers locally when this instance owns the key's partition, otherwise forwards the
// request once to the owner named by the membership table and relays its answer. While no
// owner can answer (a rebalance, an owner that died) it re-resolves and retries until ctx's
// deadline; only then does the client get 504.
func (s *Service) route(ctx context.Context, w http.ResponseWriter, r *http.Request, id string, body []byte, local localFunc) {
	p := platform.PartitionFor(id, s.partitions)
	forwarded := r.Header.Get(headerForwarded) != ""
	backoff := 20 * time.Millisecond
	var lastErr error
	for {
		if s.ownership.Owns(p) {
			status, out, err := local(ctx, p)
			switch {
			case err == nil:
				writeJSON(w, status, out)
				return
			case !errors.Is(err, ErrNotOwner):
				writeError(w, r, err)
				return
			}
			// The partition moved away while we worked: resolve again.
		} else if forwarded {
			// Forwarded here but not ours (any more): the origin re-resolves and retries.
			writeError(w, r, ErrNotOwner)
			return
		} else if owner, ok := s.owner(p); ok && owner.Addr != s.self {
			done, err := s.forward(ctx, w, r, owner, body)
			if done {
				return
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return // the client went away
			}
			if err := requestErr(ctx); errors.Is(err, ErrShuttingDown) {
				writeError(w, r, err)
				return
			}
			if lastErr != nil && !errors.Is(lastErr, ErrNotOwner) {
				slog.Debug("routing gave up", slog.String("id", id), slog.Any("error", lastErr))
			}
			writeError(w, r, ErrTimeout)
			return
		case <-time.After(backoff):
		}
		if backoff < 200*time.Millisecond {
			backoff *= 2
		}
	}
}

// forward sends the request to owner with the remaining time budget and relays the answer.
// It returns done=false, with the reason, when the owner could not answer and routing should
// try again: the owner was unreachable or said it does not own the partition (any more).
func (s *Service) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, owner Owner, body []byte) (done bool, err error) {
	deadline, _ := ctx.Deadline()
	// Leave the owner a little less than our budget so its own 504 reaches us in time.
	remaining := time.Until(deadline) - 20*time.Millisecond
	if remaining < 0 {
		remaining = 0
	}
	// The escaped path, not the decoded one: an id holding "%2Fvalidated" must reach the
	// owner as that id, not as another resource.
	target := url.URL{Scheme: "http", Host: owner.Addr, Path: r.URL.Path, RawPath: r.URL.EscapedPath(),
		RawQuery: "timeout=" + strconv.FormatInt(remaining.Milliseconds(), 10)}
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target.String(), reqBody)
	if err != nil {
		return false, fmt.Errorf("forward to %s: %w", owner.Addr, err)
	}
	req.Header.Set(headerForwarded, s.self)
	req.Header.Set(middleware.RequestIDHeader, middleware.GetReqID(r.Context()))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		metrics.ForwardedRequests.WithLabelValues("unreachable").Inc()
		return false, fmt.Errorf("%w: %s: %v", ErrUnavailable, owner.Addr, err)
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, fmt.Errorf("%w: read answer of %s: %v", ErrUnavailable, owner.Addr, err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && isRetryableProblem(payload) {
		metrics.ForwardedRequests.WithLabelValues("not_owner").Inc()
		return false, ErrNotOwner
	}
	metrics.ForwardedRequests.WithLabelValues("relayed").Inc()
	for _, h := range []string{"Content-Type", "Location", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(payload)
	return true, nil
}

// isRetryableProblem reports whether an owner's 503 means "ask again elsewhere": it does not
// own the partition, or it is shutting down.
func isRetryableProblem(payload []byte) bool {
	var p Problem
	if json.Unmarshal(payload, &p) != nil {
		return false
	}
	return p.Type == problemNotOwner || p.Type == problemShuttingDown
}
