package orders

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
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

// create writes a new order, once, and answers nil only when the order is the id's first
// record on `orders`. POSTs of one id are serialised: the same order again is accepted without
// a second record (a safe client retry); another order under the same id is a conflict. The
// id's lock is held only to decide and to register the write, never while the broker is waited
// for: during a leader election that can take the whole deadline, and the lock stripes are
// shared with other ids. A write the broker has not answered stays registered, and the next
// POST of the id waits for that answer before deciding.
//
// An acknowledged write proves only that the record is on `orders`, not that it came first:
// another producer may have written the id just before, or this instance's view may not have
// read the previous owner's writes yet, or this instance may have lost the partition while
// paused. So every 201 waits until the view holds the id (confirm); the view keeps an id's
// first record, whichever instance wrote it.
func (s *Service) create(ctx context.Context, o domain.Order, p int32) error {
	for {
		unlock := s.locks.lock(o.ID)
		w, ok := s.pending.get(o.ID)
		if ok && !w.answered() {
			unlock()
			select {
			case <-w.done:
				continue // decide again with the answer
			case <-ctx.Done():
				if err := requestErr(ctx); errors.Is(err, ErrShuttingDown) {
					return err
				}
				return fmt.Errorf("%w: order %s: an earlier write of this id is still unacknowledged", ErrNotWritten, o.ID)
			}
		}
		if ok && w.err == nil {
			// Acknowledged, not yet in the view. Even of other content it does not prove a
			// conflict: another record of the id may precede it (written by the partition's
			// previous owner, say), and this POST may be that record's retry. The view says.
			unlock()
			return s.confirm(ctx, o, p)
		}
		stored, err := s.lookup(o.ID, p)
		if err != nil {
			unlock()
			return err
		}
		if stored != nil {
			unlock()
			if domain.SameContent(*stored, o) {
				return nil
			}
			return ErrConflict
		}
		if ctx.Err() != nil {
			unlock()
			return requestErr(ctx)
		}
		w = s.pending.begin(o)
		unlock()
		if err := s.write(ctx, w); err != nil {
			return err
		}
		return s.confirm(ctx, o, p)
	}
}

// confirm waits until the view holds id o.ID and reports whether its order, the id's first
// record, is o. When the partition moves away meanwhile it answers ErrNotOwner, and routing
// sends the POST to the new owner, whose view answers the same question.
func (s *Service) confirm(ctx context.Context, o domain.Order, p int32) error {
	first, err := s.waitLocal(ctx, o.ID, p, func(domain.Order) bool { return true })
	switch {
	case err == nil && domain.SameContent(first, o):
		return nil
	case err == nil:
		metrics.ConflictingOrders.WithLabelValues("orders-post").Inc()
		return ErrConflict
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (order %s)", ErrUnconfirmed, o.ID)
	default:
		return err
	}
}

// write sends w's order and waits for the broker's answer until ctx ends. The answer comes
// once the write is acknowledged with acks=all, or the producer gave up; its retries outlast a
// leader election (platform.SaramaConfig), which may take longer than the request's deadline.
func (s *Service) write(ctx context.Context, w *pendingWrite) error {
	promise, err := s.writer.Emit(w.order.ID, w.order)
	if err != nil {
		s.pending.finish(w, err)
		return fmt.Errorf("%w: write order %s: %v", ErrNotWritten, w.order.ID, err)
	}
	promise.Then(func(err error) { s.pending.finish(w, err) })
	select {
	case <-w.done:
		if w.err != nil {
			return fmt.Errorf("%w: write order %s: %v", ErrNotWritten, w.order.ID, w.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: write order %s: not acknowledged within the request's deadline: %v", ErrNotWritten, w.order.ID, ctx.Err())
	}
}

// orderBody is the POST body with every field optional, to name the missing ones.
type orderBody struct {
	ID         *string            `json:"id"`
	CustomerID *int64             `json:"customerId"`
	State      *domain.OrderState `json:"state"`
	Product    *domain.Product    `json:"product"`
	Quantity   *int32             `json:"quantity"`
	Price      *float64           `json:"price"`
}

// decodeOrder reads and checks a POST body before anything is written.
func decodeOrder(body io.Reader, limit int64) (domain.Order, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return domain.Order{}, jsonError(err, limit)
	}
	// encoding/json replaces invalid UTF-8 with U+FFFD, so two different ids would become
	// one, and matches field names without regard to case, so {"id":"a","ID":"b"} would be
	// order b: both are refused before decoding.
	if !utf8.Valid(raw) {
		return domain.Order{}, badRequest("body", "is not valid UTF-8")
	}
	if err := exactFieldNames(raw); err != nil {
		return domain.Order{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b orderBody
	if err := dec.Decode(&b); err != nil {
		return domain.Order{}, jsonError(err, limit)
	}
	if dec.More() {
		return domain.Order{}, badRequest("body", "must hold exactly one JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return domain.Order{}, badRequest("body", "unexpected data after the JSON object")
	}
	missing := func(field string) error { return badRequest(field, "is required") }
	switch {
	case b.ID == nil || *b.ID == "":
		return domain.Order{}, missing("id")
	case b.CustomerID == nil:
		return domain.Order{}, missing("customerId")
	case b.Product == nil:
		return domain.Order{}, missing("product")
	case b.Quantity == nil:
		return domain.Order{}, missing("quantity")
	case b.Price == nil:
		return domain.Order{}, missing("price")
	}
	o := domain.Order{ID: *b.ID, CustomerID: *b.CustomerID, State: domain.OrderCreated, Product: *b.Product, Quantity: *b.Quantity, Price: *b.Price}
	if b.State != nil {
		o.State = *b.State
	}
	if err := o.Validate(); err != nil {
		return domain.Order{}, err
	}
	if o.State != domain.OrderCreated {
		return domain.Order{}, badRequest("state", fmt.Sprintf("a new order must be CREATED, got %s", o.State))
	}
	if strings.ContainsRune(o.ID, utf8.RuneError) {
		// What an unpaired surrogate escape (\ud800) decodes to: ids differing only there
		// would collide.
		return domain.Order{}, badRequest("id", "must not contain U+FFFD or an unpaired surrogate escape")
	}
	if o.ID == "." || o.ID == ".." {
		// A client resolving Location /v1/orders/.. (RFC 3986 dot segments) lands elsewhere.
		return domain.Order{}, badRequest("id", "must not be a dot segment")
	}
	// Characters, as the OpenAPI document's maxLength counts them (a 200-character id in
	// Cyrillic is 400 bytes).
	if strings.ContainsAny(o.ID, "/?#") || utf8.RuneCountInString(o.ID) > 256 {
		return domain.Order{}, badRequest("id", "must be at most 256 characters without '/', '?' or '#'")
	}
	return o, nil
}

// orderFields are the POST body's field names, spelled exactly.
var orderFields = map[string]bool{"id": true, "customerId": true, "state": true, "product": true, "quantity": true, "price": true}

// exactFieldNames refuses a top-level object whose keys are not exactly the order's field
// names, or name one twice. Anything that is not such an object is left to the decoder, which
// names the problem.
func exactFieldNames(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string)
		switch {
		case !orderFields[key]:
			return badRequest(key, "unknown field (names are case-sensitive)")
		case seen[key]:
			return badRequest(key, "appears twice")
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
		if string(value) == "null" {
			// Decoded into the optional fields' pointers, null would read as "absent": an
			// explicit "state": null was accepted as CREATED (found by schemathesis).
			return badRequest(key, "must not be null (leave an optional field out instead)")
		}
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field when there is one.
func jsonError(err error, limit int64) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return badRequest("body", fmt.Sprintf("exceeds %d bytes", limit))
	case errors.As(err, &syntax):
		return badRequest("body", fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, err))
	case errors.As(err, &typ):
		return badRequest(typ.Field, fmt.Sprintf("must be a JSON %s", typ.Type))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body", "empty or truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, "unknown field")
	default:
		return badRequest("body", err.Error())
	}
}

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
