package orders

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ordersys/ecosystem/internal/domain"
)

// Errors of the API that HTTP maps to statuses in writeError, the one place that does so.
var (
	ErrConflict      = errors.New("an order with this id exists with different content")
	ErrTimeout       = errors.New("timed out waiting for the order")
	ErrNotOwner      = errors.New("this instance does not own the order's partition")
	ErrUnavailable   = errors.New("the owner of the order's partition could not be reached")
	ErrShuttingDown  = errors.New("the service is shutting down")
	ErrNotWritten    = errors.New("Kafka did not acknowledge the order; it may not have been written")
	ErrUnconfirmed   = errors.New("the order was written but is not in the view yet, so whether it is the id's first order is not known; POST it again")
	errBadRequestMsg = "bad request"
)

// requestError is a 400 with a message and, when one field is at fault, its name.
type requestError struct {
	field  string
	reason string
}

func (e *requestError) Error() string {
	if e.field == "" {
		return e.reason
	}
	return e.field + ": " + e.reason
}

// badRequest builds a 400 error.
func badRequest(field, reason string) error { return &requestError{field: field, reason: reason} }

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field names the request field at fault, for 400s about one field.
	Field string `json:"field,omitempty"`
}

// Problem types: stable identifiers clients and forwarding instances can act on.
const (
	problemBadRequest   = "https://ordersys.dev/problems/bad-request"
	problemConflict     = "https://ordersys.dev/problems/conflict"
	problemTimeout      = "https://ordersys.dev/problems/timeout"
	problemNotOwner     = "https://ordersys.dev/problems/not-owner"
	problemUnavailable  = "https://ordersys.dev/problems/unavailable"
	problemOverloaded   = "https://ordersys.dev/problems/overloaded"
	problemInternal     = "https://ordersys.dev/problems/internal"
	problemShuttingDown = "https://ordersys.dev/problems/shutting-down"
	problemCanceled     = "https://ordersys.dev/problems/client-closed-request"
	problemNotWritten   = "https://ordersys.dev/problems/not-written"
	problemUnconfirmed  = "https://ordersys.dev/problems/unconfirmed"
)

// StatusClientClosedRequest is the status recorded for a request whose client went away.
const StatusClientClosedRequest = 499

// problemFor maps an error to its problem.
func problemFor(err error) Problem {
	var req *requestError
	var field *domain.FieldError
	switch {
	case errors.As(err, &req):
		return Problem{Type: problemBadRequest, Title: errBadRequestMsg, Status: http.StatusBadRequest, Detail: req.Error(), Field: req.field}
	case errors.As(err, &field):
		return Problem{Type: problemBadRequest, Title: errBadRequestMsg, Status: http.StatusBadRequest, Detail: field.Error(), Field: field.Field}
	case errors.Is(err, ErrConflict):
		return Problem{Type: problemConflict, Title: "conflict", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return Problem{Type: problemTimeout, Title: "timeout", Status: http.StatusGatewayTimeout, Detail: ErrTimeout.Error()}
	case errors.Is(err, ErrNotOwner):
		return Problem{Type: problemNotOwner, Title: "not the owner", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	case errors.Is(err, ErrTooManyWaiters):
		return Problem{Type: problemOverloaded, Title: "overloaded", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	case errors.Is(err, ErrNotWritten):
		// The broker is away (restarting, unreachable): a retry of the same order is safe.
		return Problem{Type: problemNotWritten, Title: "not written", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	case errors.Is(err, ErrUnconfirmed):
		// Written, but the deadline passed before the view showed which content of the id
		// came first: the same POST again answers from the view.
		return Problem{Type: problemUnconfirmed, Title: "unconfirmed", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	case errors.Is(err, ErrShuttingDown):
		return Problem{Type: problemShuttingDown, Title: "shutting down", Status: http.StatusServiceUnavailable, Detail: err.Error()}
	case errors.Is(err, context.Canceled):
		// The client hung up: nobody reads the answer, and it is not the server's fault. The
		// status is nginx's 499, so /metrics and the log line tell it apart from a 5xx.
		return Problem{Type: problemCanceled, Title: "client closed request", Status: StatusClientClosedRequest, Detail: err.Error()}
	case errors.Is(err, ErrUnavailable):
		return Problem{Type: problemUnavailable, Title: "owner unavailable", Status: http.StatusBadGateway, Detail: err.Error()}
	default:
		return Problem{Type: problemInternal, Title: "internal error", Status: http.StatusInternalServerError, Detail: err.Error()}
	}
}

// writeError answers with the problem for err.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(err)
	p.Instance = r.URL.Path
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
