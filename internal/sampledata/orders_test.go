package sampledata_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

// startOrders runs an Orders service instance on env, as internal/orders' tests do, and
// returns its base URL once it is ready.
func startOrders(t *testing.T, env *kafkatest.Env) string {
	t.Helper()
	cfg := orders.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.Kafka.StateDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Instance = "sampledata-test"
	svc, err := orders.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("orders service: %v", err)
		}
	})
	kafkatest.Eventually(t, 60*time.Second, "orders service ready", func() bool { return svc.Health.Ready() == nil })
	return "http://" + svc.Addr()
}

// lineCounter keeps the expected mismatch and failure lines out of the test output, but
// counts them.
type lineCounter struct {
	mu sync.Mutex
	n  int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func TestPostOrdersAgainstTheOrdersService(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	url := startOrders(t, env)

	const n = 6
	sum, err := sampledata.PostOrders(ctxFor(t), env.Client, env.Names, codecs,
		sampledata.OrderLoad{URL: url, Rate: 50, Count: n, IDPrefix: "load"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (sampledata.OrderLoadSummary{Posted: n, ReadBack: n}); sum != want {
		t.Fatalf("summary %+v, want %+v", sum, want)
	}

	// Every order is in `orders` as posted, and has one payment keyed by payment id.
	posted := map[string]domain.Order{}
	for _, r := range readAll(t, env, env.Names.Topic(string(platform.TopicOrders))) {
		o, err := codecs.Order.Unmarshal(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if o.State == domain.OrderCreated {
			posted[o.ID] = o
		}
	}
	payments := map[string]domain.Payment{}
	for _, r := range readAll(t, env, env.Names.Topic(string(platform.TopicPayments))) {
		p, err := codecs.Payment.Unmarshal(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != p.ID {
			t.Fatalf("payment %s keyed %q", p.ID, r.Key)
		}
		payments[p.OrderID] = p
	}
	if len(posted) != n || len(payments) != n {
		t.Fatalf("%d orders and %d payments, want %d each", len(posted), len(payments), n)
	}
	for id, o := range posted {
		if !strings.HasPrefix(id, "load-") || o.CustomerID < 0 || o.CustomerID > 5 || !o.Product.Valid() ||
			o.Quantity != 1 || o.Price != 1 {
			t.Fatalf("order %+v is not a sample order", o)
		}
		if p := payments[id]; p.ID != "Payment:"+id || p.Amount != 1 || p.Ccy == "" {
			t.Fatalf("payment of %s: %+v", id, p)
		}
	}
}

// fakeOrders is an Orders API whose answers the test chooses.
func fakeOrders(t *testing.T, postStatus int, get func(o domain.Order) (int, any)) string {
	var mu sync.Mutex
	seen := map[string]domain.Order{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			var o domain.Order
			_ = json.NewDecoder(r.Body).Decode(&o)
			mu.Lock()
			seen[o.ID] = o
			mu.Unlock()
			w.WriteHeader(postStatus)
			return
		}
		id := strings.TrimPrefix(r.URL.Path, "/v1/orders/")
		mu.Lock()
		o := seen[id]
		mu.Unlock()
		status, body := get(o)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPostOrdersReportsMismatchesAndFailures(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	same := func(o domain.Order) (int, any) { return http.StatusOK, o }
	cases := []struct {
		name    string
		post    int
		get     func(domain.Order) (int, any)
		want    sampledata.OrderLoadSummary
		wantErr string
	}{
		{"validated on read is no mismatch", http.StatusCreated,
			func(o domain.Order) (int, any) { o.State = domain.OrderValidated; return http.StatusOK, o },
			sampledata.OrderLoadSummary{Posted: 3, ReadBack: 3}, ""},
		{"changed field", http.StatusCreated,
			func(o domain.Order) (int, any) { o.Quantity = 2; return http.StatusOK, o },
			sampledata.OrderLoadSummary{Posted: 3, ReadBack: 3, Mismatches: 3}, "mismatches 3"},
		{"shipped is not a state a fresh order reads back in", http.StatusCreated,
			func(o domain.Order) (int, any) { o.State = domain.OrderShipped; return http.StatusOK, o },
			sampledata.OrderLoadSummary{Posted: 3, ReadBack: 3, Mismatches: 3}, "mismatches 3"},
		{"post refused", http.StatusInternalServerError, same,
			sampledata.OrderLoadSummary{Errors: 3}, "errors 3"},
		{"read back times out", http.StatusCreated,
			func(domain.Order) (int, any) { return http.StatusGatewayTimeout, map[string]string{"title": "timeout"} },
			sampledata.OrderLoadSummary{Posted: 3, Errors: 3}, "errors 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := &lineCounter{}
			sum, err := sampledata.PostOrders(ctxFor(t), env.Client, env.Names, codecs, sampledata.OrderLoad{
				URL: fakeOrders(t, c.post, c.get), Rate: 100, Count: 3,
				Logger: slog.New(slog.NewTextHandler(lines, nil)),
			})
			if sum != c.want {
				t.Fatalf("summary %+v, want %+v", sum, c.want)
			}
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
			if want := c.want.Mismatches + c.want.Errors; lines.n != want {
				t.Fatalf("%d problem lines logged, want %d", lines.n, want)
			}
		})
	}
}

func TestPostOrdersUntilInterrupted(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	url := fakeOrders(t, http.StatusCreated, func(o domain.Order) (int, any) { return http.StatusOK, o })
	cases := []struct {
		name    string
		count   int
		wantErr string
	}{
		{"count 0 runs until interrupted and succeeds", 0, ""},
		{"an interrupted count is an error", 1000, "interrupted after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			sum, err := sampledata.PostOrders(ctx, env.Client, env.Names, codecs,
				sampledata.OrderLoad{URL: url, Rate: 20, Count: c.count, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if sum.Posted == 0 || sum.Posted != sum.ReadBack || !sum.Ok() {
				t.Fatalf("summary %+v", sum)
			}
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestPostOrdersRefusesBadOptions(t *testing.T) {
	cases := []struct {
		name string
		load sampledata.OrderLoad
		want string
	}{
		{"no URL", sampledata.OrderLoad{Rate: 1}, "no Orders service URL"},
		{"zero rate", sampledata.OrderLoad{URL: "http://127.0.0.1:1", Rate: 0}, "rate 0"},
		{"negative count", sampledata.OrderLoad{URL: "http://127.0.0.1:1", Rate: 1, Count: -1}, "negative count"},
		{"not a URL", sampledata.OrderLoad{URL: "127.0.0.1:8080", Rate: 1}, "service URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sampledata.PostOrders(context.Background(), nil, platform.Names{}, codecs, c.load)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}
