package reliability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// The server timeouts of internal/service.Serve that the slow-client tests hold the binary to.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
)

// Limits the Orders binary runs with in the hostile-HTTP tests: small, so that they are
// reached quickly. MaxBodyBytes has no flag; it is the default. The waiter cap gets an
// instance of its own, so that the other tests' long-polls do not count against it.
const (
	httpMaxWaiters     = 3
	httpManyWaiters    = 1000
	httpMaxTimeout     = 2 * time.Second
	httpDefaultTimeout = time.Second
	httpMaxBodyBytes   = 64 << 10
)

// startOrdersForHTTP runs the Orders binary on the harness broker with small limits.
func startOrdersForHTTP(t *testing.T, maxWaiters int) *service {
	t.Helper()
	env := kafkatest.New(t, kafkatest.Options{Partitions: 2})
	s := &service{name: "orders", kind: kindOrders, bin: kafkatest.BuildBinary(t, "./cmd/orders"), addr: freeAddr(t)}
	s.env = []string{
		"KAFKA_BROKERS=" + strings.Join(env.Brokers, ","),
		"TOPIC_PREFIX=" + env.Names.Prefix,
		"STATE_DIR=" + t.TempDir(),
		"HTTP_ADDR=" + s.addr,
		"LOG_FORMAT=json",
		"LOG_LEVEL=warn",
		fmt.Sprintf("MAX_WAITERS=%d", maxWaiters),
		"MAX_TIMEOUT=" + httpMaxTimeout.String(),
		"DEFAULT_TIMEOUT=" + httpDefaultTimeout.String(),
	}
	s.runs = append(s.runs, kafkatest.StartBinary(t, s.bin, s.env))
	deadline := time.Now().Add(90 * time.Second)
	for !ready(s) {
		if exited(s.current(), 100*time.Millisecond) || time.Now().After(deadline) {
			t.Fatalf("orders not ready (%s):\n%s", s.current().ExitState(), tail(s.current().Output(), 40))
		}
	}
	return s
}

// problemOf decodes a problem+json body.
func problemOf(t *testing.T, body []byte) orders.Problem {
	t.Helper()
	var p orders.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem body: %v: %s", err, body)
	}
	return p
}

func doRequest(t *testing.T, method, url, contentType string, body io.Reader) (*http.Response, []byte, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b, time.Since(start)
}

// servesOthers checks that the server answers an ordinary request promptly.
func servesOthers(t *testing.T, s *service) {
	t.Helper()
	resp, body, took := doRequest(t, http.MethodGet, s.url()+"/v1/orders/nobody?timeout=0", "", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || took > 2*time.Second {
		t.Errorf("ordinary request while slow clients hang on: %d after %v: %s", resp.StatusCode, took, body)
	}
}

// trickle writes prefix and then one byte of rest every interval until the server ends the
// connection, and returns how long after the prefix that took and what the server answered.
func trickle(addr, prefix, rest string, interval, limit time.Duration) (time.Duration, string, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, prefix); err != nil {
		return 0, "", err
	}
	start := time.Now()
	answered := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		answered <- string(b)
	}()
	for i := 0; ; i++ {
		select {
		case answer := <-answered:
			return time.Since(start), answer, nil
		case <-time.After(interval):
		}
		if time.Since(start) > limit {
			return time.Since(start), "", fmt.Errorf("connection still open after %v", limit)
		}
		if i < len(rest) {
			// A write may fail once the server has closed; the answer (or EOF) follows.
			_, _ = conn.Write([]byte{rest[i]})
		}
	}
}

// Scenario 5, over HTTP: hostile clients against the Orders binary. Slow clients are cut off
// by the server's timeouts while others are served; oversized bodies get 400; long-poll
// timeouts above the maximum are clamped; beyond the waiter cap GETs get a clear 503.
func TestHostileHTTP(t *testing.T) {
	suiteMode(t, modeShort, modeFull)
	s := startOrdersForHTTP(t, httpManyWaiters)
	capped := startOrdersForHTTP(t, httpMaxWaiters)
	addr := s.addr
	body := `{"id":"slow-1","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`

	t.Run("slow headers are cut off after ReadHeaderTimeout", func(t *testing.T) {
		t.Parallel()
		const clients = 20
		var wg sync.WaitGroup
		took := make([]time.Duration, clients)
		errs := make([]error, clients)
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				// The request line and one header, then one more header byte every 200 ms.
				took[i], _, errs[i] = trickle(addr, "POST /v1/orders HTTP/1.1\r\nHost: x\r\n",
					strings.Repeat("X-Slow: 1\r\n", 100), 200*time.Millisecond, readHeaderTimeout+5*time.Second)
			}(i)
		}
		time.Sleep(time.Second)
		servesOthers(t, s)
		wg.Wait()
		for i := range took {
			if errs[i] != nil {
				t.Errorf("slow-header client %d: %v", i, errs[i])
			} else if took[i] < readHeaderTimeout-time.Second || took[i] > readHeaderTimeout+2*time.Second {
				t.Errorf("slow-header client %d cut off after %v, want about %v", i, took[i], readHeaderTimeout)
			}
		}
		t.Logf("%d slow-header clients cut off after %v", clients, took[0].Round(100*time.Millisecond))
	})

	t.Run("slow body is cut off after ReadTimeout", func(t *testing.T) {
		t.Parallel()
		prefix := fmt.Sprintf("POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		var took time.Duration
		var answer string
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			took, answer, err = trickle(addr, prefix, body, time.Second, readTimeout+10*time.Second)
		}()
		time.Sleep(2 * time.Second)
		servesOthers(t, s)
		<-done
		if err != nil {
			t.Fatalf("slow-body client: %v", err)
		}
		status := "connection closed without an answer"
		if line, _, ok := strings.Cut(answer, "\r\n"); ok {
			status = line
		}
		if took > readTimeout+2*time.Second {
			t.Errorf("slow-body client cut off after %v, want at most about %v", took, readTimeout)
		}
		if strings.Contains(status, " 201 ") {
			t.Errorf("a body that never completed was accepted: %s", answer)
		}
		t.Logf("slow-body client cut off after %v with %q", took.Round(100*time.Millisecond), status)
	})

	t.Run("oversized body gets 400", func(t *testing.T) {
		t.Parallel()
		huge := `{"id":"` + strings.Repeat("x", httpMaxBodyBytes) + `","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`
		for name, reader := range map[string]io.Reader{
			"with length":     strings.NewReader(huge),
			"chunked":         io.MultiReader(strings.NewReader(huge)), // unknown length: sent chunked
			"endless chunked": io.LimitReader(neverEnding('x'), 10*httpMaxBodyBytes),
		} {
			resp, b, _ := doRequest(t, http.MethodPost, s.url()+"/v1/orders", "application/json", reader)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", name, resp.StatusCode, b)
				continue
			}
			if p := problemOf(t, b); p.Field != "body" || !strings.Contains(p.Detail, fmt.Sprint(httpMaxBodyBytes)) && name != "endless chunked" {
				t.Errorf("%s: problem %+v, want one about the body size", name, p)
			}
		}
		servesOthers(t, s)
	})

	t.Run("timeout above the maximum is clamped", func(t *testing.T) {
		t.Parallel()
		// Any non-negative integer is clamped, as openapi.json says, also one beyond int64
		// (schemathesis, docs/interop.md).
		for _, timeout := range []string{"600000", "9223372036854775807", "99999999999999999999"} {
			resp, b, took := doRequest(t, http.MethodGet, s.url()+"/v1/orders/clamp-absent?timeout="+timeout, "", nil)
			if resp.StatusCode != http.StatusGatewayTimeout || took < httpMaxTimeout || took > httpMaxTimeout+2*time.Second {
				t.Errorf("timeout=%s: %d after %v, want 504 after the %v maximum: %s", timeout, resp.StatusCode, took, httpMaxTimeout, b)
			}
		}
		resp, _, took := doRequest(t, http.MethodGet, s.url()+"/v1/orders/clamp-absent", "", nil)
		if resp.StatusCode != http.StatusGatewayTimeout || took < httpDefaultTimeout || took > httpDefaultTimeout+2*time.Second {
			t.Errorf("no timeout: %d after %v, want 504 after the %v default", resp.StatusCode, took, httpDefaultTimeout)
		}
		for _, bad := range []string{"-1", "soon", "1e3", "-99999999999999999999"} {
			resp, b, _ := doRequest(t, http.MethodGet, s.url()+"/v1/orders/clamp-absent?timeout="+bad, "", nil)
			if resp.StatusCode != http.StatusBadRequest || problemOf(t, b).Field != "timeout" {
				t.Errorf("timeout=%s: %d %s, want 400 on field timeout", bad, resp.StatusCode, b)
			}
		}
	})

	t.Run("hostile requests get 4xx, never 5xx", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			method, path, contentType, body string
			want                            int
		}{
			{http.MethodPost, "/v1/orders", "application/json", `{"id":`, http.StatusBadRequest},
			{http.MethodPost, "/v1/orders", "application/json", `[1,2,3]`, http.StatusBadRequest},
			{http.MethodPost, "/v1/orders", "application/json", `{"id":"\ud800","customerId":1,"product":"JUMPERS","quantity":1,"price":1e400}`, http.StatusBadRequest},
			{http.MethodPost, "/v1/orders", "application/json", strings.Repeat("[", 100000), http.StatusBadRequest},
			{http.MethodPost, "/v1/orders", "application/json", `{"id":"a","customerId":1,"product":"JUMPERS","quantity":1,"price":1,"id":"b","state":"SHIPPED"}`, http.StatusBadRequest},
			{http.MethodPost, "/v1/orders", "text/plain", "\x00\x01\x02", http.StatusBadRequest},
			{http.MethodGet, "/v1/orders/" + strings.Repeat("%ff", 3000) + "?timeout=0", "", "", http.StatusGatewayTimeout},
			{http.MethodDelete, "/v1/orders/x", "", "", http.StatusMethodNotAllowed},
			{http.MethodGet, "/v1/orders/%2e%2e%2f%2e%2e%2fetc%2fpasswd?timeout=0", "", "", http.StatusGatewayTimeout},
		}
		for _, c := range cases {
			resp, b, _ := doRequest(t, c.method, s.url()+c.path, c.contentType, strings.NewReader(c.body))
			if resp.StatusCode != c.want {
				t.Errorf("%s %.60s with %.40q: %d %.200s, want %d", c.method, c.path, c.body, resp.StatusCode, b, c.want)
			}
		}
		// Headers beyond the server's limit (net/http's 1 MB default).
		req, _ := http.NewRequest(http.MethodGet, s.url()+"/v1/orders/x?timeout=0", nil)
		req.Header.Set("X-Huge", strings.Repeat("h", 2<<20))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("2 MB header: %d, want 431", resp.StatusCode)
			}
		} else if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "broken pipe") {
			t.Errorf("2 MB header: %v", err)
		}
		servesOthers(t, s)
	})

	t.Run("waiters beyond the cap get 503", func(t *testing.T) {
		t.Parallel()
		waitersCap(t, capped)
	})

	t.Cleanup(func() {
		for _, in := range []*service{s, capped} {
			if exited(in.current(), 0) {
				t.Errorf("orders ended (%s):\n%s", in.current().ExitState(), tail(in.current().Output(), 40))
			}
		}
	})
}

// waitersCap fills the waiter registry with long-polls and checks the next GET is refused
// with 503, a problem of type overloaded and Retry-After, at once; and that the capacity
// comes back when the long-polls end.
func waitersCap(t *testing.T, s *service) {
	type answer struct {
		status int
		took   time.Duration
	}
	answers := make(chan answer, httpMaxWaiters)
	for i := 0; i < httpMaxWaiters; i++ {
		go func(i int) {
			start := time.Now()
			resp, err := http.Get(fmt.Sprintf("%s/v1/orders/waiting-%d?timeout=%d", s.url(), i, httpMaxTimeout.Milliseconds()))
			if err != nil {
				answers <- answer{status: 0}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answers <- answer{resp.StatusCode, time.Since(start)}
		}(i)
	}
	kafkatest.Eventually(t, 5*time.Second, "long-polls registered", func() bool {
		m, err := scrapeMetrics(s)
		return err == nil && m["ordersys_orders_pending_waiters"] >= httpMaxWaiters
	})
	resp, b, took := doRequest(t, http.MethodGet, s.url()+"/v1/orders/one-too-many", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || took > time.Second {
		t.Fatalf("GET beyond the cap: %d after %v: %s, want 503 at once", resp.StatusCode, took, b)
	}
	if p := problemOf(t, b); p.Type != "https://ordersys.dev/problems/overloaded" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET beyond the cap: problem %+v, Retry-After %q; want type overloaded and a Retry-After", p, resp.Header.Get("Retry-After"))
	}
	for i := 0; i < httpMaxWaiters; i++ {
		if a := <-answers; a.status != http.StatusGatewayTimeout {
			t.Errorf("waiting GET ended with %d after %v, want 504 at its timeout", a.status, a.took)
		}
	}
	// Capacity is back: a POST and a GET of it succeed.
	o := domain.Order{ID: "after-cap", CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1}
	ob, _ := json.Marshal(o)
	if resp, b, _ := doRequest(t, http.MethodPost, s.url()+"/v1/orders", "application/json", bytes.NewReader(ob)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST after the cap: %d %s", resp.StatusCode, b)
	}
	if resp, b, _ := doRequest(t, http.MethodGet, s.url()+"/v1/orders/after-cap", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET after the cap: %d %s", resp.StatusCode, b)
	}
}

// neverEnding is an endless stream of one byte.
type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
