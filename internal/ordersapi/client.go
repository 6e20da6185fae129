// Package ordersapi is a client of the Orders REST API (internal/orders, openapi.json): what the
// benchmark, the sample-data tools and the tests post and read orders with. It speaks the
// documented contract only; errors say which call failed and, for an answer other than the one
// expected, carry its status and the start of its problem+json body (*StatusError).
package ordersapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
)

// Client calls one Orders instance.
type Client struct {
	// Base is the instance's URL, http://host:port.
	Base string
	// HTTP makes the requests; nil is http.DefaultClient.
	HTTP *http.Client
}

// New is a client of the instance at base using hc (nil: http.DefaultClient).
func New(base string, hc *http.Client) Client { return Client{Base: base, HTTP: hc} }

// StatusError is an answer other than the one a call expects.
type StatusError struct {
	Status int
	Body   string // the first bytes of the body, trimmed
}

func (e *StatusError) Error() string { return fmt.Sprintf("status %d: %s", e.Status, e.Body) }

// Status is the HTTP status of err's unexpected answer, 0 when err is not one.
func Status(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

func (c Client) http() *http.Client {
	if c.HTTP == nil {
		return http.DefaultClient
	}
	return c.HTTP
}

// Post creates o; it returns once the service answered 201 (the order is written, acks=all,
// and is the id's first content).
func (c Client) Post(ctx context.Context, o domain.Order) error {
	body, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("post order %s: encode: %w", o.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/v1/orders", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post order %s: %w", o.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if _, err := c.do(req, http.StatusCreated, 4<<10); err != nil {
		return fmt.Errorf("post order %s: %w", o.ID, err)
	}
	return nil
}

// Get reads order id, long-polling up to timeout for it to appear. The order is returned as the
// service answered it, for the caller to compare with what it posted (an answer under another
// id is the caller's to report).
func (c Client) Get(ctx context.Context, id string, timeout time.Duration) (domain.Order, error) {
	o, err := c.order(ctx, c.orderURL(id, "", timeout), "")
	if err != nil {
		return o, fmt.Errorf("read order %s: %w", id, err)
	}
	return o, nil
}

// AwaitDecided long-polls GET …/validated up to timeout and returns the order in its final
// state (VALIDATED or FAILED).
func (c Client) AwaitDecided(ctx context.Context, id string, timeout time.Duration) (domain.Order, error) {
	o, err := c.order(ctx, c.orderURL(id, "/validated", timeout), id)
	if err != nil {
		return o, fmt.Errorf("await order %s: %w", id, err)
	}
	return o, nil
}

// Probe reads order id like Get but checks only that the answer is 200, without decoding it:
// the benchmark's read test, whose load generator shares the machine with the services.
func (c Client) Probe(ctx context.Context, id string, timeout time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.orderURL(id, "", timeout), nil)
	if err == nil {
		_, err = c.do(req, http.StatusOK, 64<<10)
	}
	if err != nil {
		return fmt.Errorf("read order %s: %w", id, err)
	}
	return nil
}

func (c Client) orderURL(id, suffix string, timeout time.Duration) string {
	return c.Base + "/v1/orders/" + url.PathEscape(id) + suffix + "?timeout=" + strconv.FormatInt(timeout.Milliseconds(), 10)
}

// order GETs u and decodes the order; id, when not empty, is the id the answer must carry.
func (c Client) order(ctx context.Context, u, id string) (domain.Order, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return domain.Order{}, err
	}
	body, err := c.do(req, http.StatusOK, 64<<10)
	if err != nil {
		return domain.Order{}, err
	}
	var o domain.Order
	if err := json.Unmarshal(body, &o); err != nil {
		return domain.Order{}, fmt.Errorf("decode body: %w", err)
	}
	if id != "" && o.ID != id {
		return o, fmt.Errorf("the answer is order %q", o.ID)
	}
	return o, nil
}

// do sends req and returns the body (at most limit bytes) of an answer with status want.
func (c Client) do(req *http.Request, want int, limit int64) ([]byte, error) {
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		text := bytes.TrimSpace(body)
		if len(text) > 512 {
			text = text[:512]
		}
		return nil, &StatusError{Status: resp.StatusCode, Body: strings.ToValidUTF8(string(text), "\uFFFD")}
	}
	return body, nil
}
