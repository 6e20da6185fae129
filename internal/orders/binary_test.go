package orders_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// SIGTERM while GETs are waiting: readiness fails at once, the waiting GETs still complete
// (the view keeps running until they are answered), and the process exits 0.
func TestSIGTERMLetsInFlightGETsCompleteAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := kafkatest.BuildBinary(t, "./cmd/orders")
	help := kafkatest.StartBinary(t, bin, nil, "--help")
	if code := help.Wait(30 * time.Second); code != 0 || !strings.Contains(help.Output(), "-advertised-addr") {
		t.Fatalf("--help exit %d:\n%s", code, help.Output())
	}

	env := kafkatest.New(t, kafkatest.Options{Partitions: 2})
	addr := kafkatest.FreeAddr(t)
	proc := kafkatest.StartBinary(t, bin, []string{
		"KAFKA_BROKERS=" + strings.Join(env.Brokers, ","),
		"TOPIC_PREFIX=" + env.Names.Prefix,
		"STATE_DIR=" + t.TempDir(),
		"HTTP_ADDR=" + addr,
	})
	base := "http://" + addr
	kafkatest.Eventually(t, 60*time.Second, "orders binary ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	const waiting = 5
	statuses := make(chan int, waiting)
	var started sync.WaitGroup
	for i := 0; i < waiting; i++ {
		started.Add(1)
		go func() {
			started.Done()
			resp, err := http.Get(base + "/v1/orders/late-1?timeout=20000")
			if err != nil {
				statuses <- -1
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	started.Wait()
	kafkatest.Eventually(t, 10*time.Second, "GETs waiting", func() bool {
		return scrape(t, base)[`ordersys_orders_pending_waiters`] >= waiting
	})

	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, 5*time.Second, "readiness failing during shutdown", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return true // already stopped accepting
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// The order the GETs wait for arrives after SIGTERM.
	b, _ := platform.StaticCodecs().Order.Marshal(domain.Order{ID: "late-1", CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1})
	env.Produce(t, env.Names.Topic(string(platform.TopicOrders)), "late-1", b)
	for i := 0; i < waiting; i++ {
		select {
		case s := <-statuses:
			if s != http.StatusOK {
				t.Fatalf("in-flight GET ended with %d, want 200", s)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("in-flight GETs did not complete")
		}
	}
	if code := proc.Wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// After a small run the counters moved as expected.
func TestMetricsMoveAfterASmallRun(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 2})
	a := startInstance(t, env, "m1")
	b := startInstance(t, env, "m2")
	waitBalanced(t, env, []*instance{a, b}, 2)
	before := scrape(t, a.url)

	const n = 6
	for i := 0; i < n; i++ {
		o := newOrder(fmt.Sprintf("metrics-%d", i))
		if resp, body := post(t, a.url, o, ""); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		for _, check := range domain.CheckTypes {
			v, _ := codecs.OrderValidation.Marshal(domain.OrderValidation{OrderID: o.ID, CheckType: check, ValidationResult: domain.Pass})
			env.Produce(t, env.Names.Topic(string(platform.TopicOrderValidations)), o.ID, v)
		}
		if status, _, body := get(t, a.url+"/v1/orders/"+o.ID+"/validated"); status != http.StatusOK {
			t.Fatalf("GET: %d %s", status, body)
		}
	}
	env.Produce(t, env.Names.Topic(string(platform.TopicOrders)), "poison", []byte("garbage"))
	get(t, a.url+"/v1/orders/absent?timeout=50")

	delta := func(m map[string]float64, key string) float64 { return m[key] - before[key] }
	var after map[string]float64
	kafkatest.Eventually(t, 10*time.Second, "decisions and dead letters counted", func() bool {
		after = scrape(t, a.url)
		return delta(after, `ordersys_validation_decisions_total{state="VALIDATED"}`) >= n &&
			delta(after, `ordersys_dead_letters_total{group="`+env.Names.Prefix+`orders-service",topic="`+env.Names.Prefix+`orders"}`) >= 1
	})
	checks := map[string]float64{
		`ordersys_http_request_duration_seconds_count{method="POST",route="/v1/orders",status="201"}`:               n,
		`ordersys_http_request_duration_seconds_count{method="GET",route="/v1/orders/{id}/validated",status="200"}`: n,
		`ordersys_http_request_duration_seconds_count{method="GET",route="/v1/orders/{id}",status="504"}`:           1,
	}
	for key, want := range checks {
		if got := delta(after, key); got < want {
			t.Errorf("%s moved by %v, want at least %v", key, got, want)
		}
	}
	// Two instances share the partitions: some requests were forwarded and relayed.
	if delta(after, `ordersys_orders_forwarded_requests_total{outcome="relayed"}`) < 1 {
		t.Errorf("no forwarded request counted")
	}
	if _, ok := after[`ordersys_orders_pending_waiters`]; !ok {
		t.Errorf("pending waiters gauge missing")
	}
	found := false
	for key, v := range after {
		if strings.HasPrefix(key, `ordersys_processor_partition_state{group="`+env.Names.Prefix+`orders-service"`) && strings.Contains(key, `state="running"`) && v == 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("no running partition reported for the orders view")
	}
}
