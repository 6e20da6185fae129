package orders_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Issue 13 item 8: on shutdown, a long-poll still waiting once the drain is over is answered
// 503 problem+json with Retry-After, so its client retries elsewhere; it used to wait out the
// HTTP server's 15 s shutdown bound and then lose its connection.
func TestShutdownAnswersWaitingRequests(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 2})
	in := startInstance(t, env, "draining", func(c *orders.Config) { c.DrainTimeout = 500 * time.Millisecond })

	type answer struct {
		status int
		header http.Header
		body   []byte
		err    error
	}
	answers := make(chan answer, 2)
	for _, path := range []string{"/v1/orders/never", "/v1/orders/never/validated"} {
		go func() {
			resp, err := http.Get(in.url + path + "?timeout=30000")
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			answers <- answer{status: resp.StatusCode, header: resp.Header, body: body}
		}()
	}
	kafkatest.Eventually(t, 10*time.Second, "both GETs waiting", func() bool { return in.svc.Waiting() == 2 })
	began := time.Now()
	go in.stop()
	for range 2 {
		a := <-answers
		if a.err != nil {
			t.Fatalf("waiting GET lost its connection: %v", a.err)
		}
		var p orders.Problem
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" ||
			a.header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(a.body, &p) != nil || p.Title != "shutting down" {
			t.Fatalf("waiting GET on shutdown: %d %v %s, want 503 problem+json (shutting down) with Retry-After", a.status, a.header, a.body)
		}
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("waiting GETs answered %v after shutdown began, want about the drain timeout", took)
	}
}
