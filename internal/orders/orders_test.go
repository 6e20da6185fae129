package orders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

var codecs = platform.StaticCodecs()

type instance struct {
	svc  *orders.Service
	url  string
	stop func()
}

// startInstance runs one Orders instance on env and waits until it is ready.
func startInstance(t *testing.T, env *kafkatest.Env, name string, options ...func(*orders.Config)) *instance {
	t.Helper()
	cfg := orders.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.Kafka.StateDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Instance = name
	for _, option := range options {
		option(&cfg)
	}
	svc, err := orders.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("instance %s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	kafkatest.Eventually(t, 60*time.Second, name+" ready", func() bool { return svc.Health.Ready() == nil })
	return &instance{svc: svc, url: "http://" + svc.Addr(), stop: stop}
}

func newOrder(id string) domain.Order {
	return domain.Order{ID: id, CustomerID: 2, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1}
}

func post(t *testing.T, base string, o domain.Order, query string) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(o)
	resp, err := http.Post(base+"/v1/orders"+query, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func get(t *testing.T, url string) (int, domain.Order, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var o domain.Order
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, body)
		}
	}
	return resp.StatusCode, o, body
}

func TestReferenceCasesOnOneInstance(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	in := startInstance(t, env, "solo")
	ordersTopic := env.Names.Topic(string(platform.TopicOrders))

	t.Run("post then get by location", func(t *testing.T) {
		o := newOrder("post-1")
		resp, body := post(t, in.url, o, "")
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/v1/orders/post-1" {
			t.Fatalf("POST: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		status, got, body := get(t, in.url+resp.Header.Get("Location"))
		if status != http.StatusOK || got != o {
			t.Fatalf("GET: %d %+v %s", status, got, body)
		}
	})

	t.Run("identical post again is 201 without a second record, different is 409", func(t *testing.T) {
		o := newOrder("post-2")
		for i := 0; i < 3; i++ {
			if resp, body := post(t, in.url, o, ""); resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST %d: %d %s", i, resp.StatusCode, body)
			}
		}
		changed := o
		changed.Quantity = 5
		resp, body := post(t, in.url, changed, "")
		if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("conflicting POST: %d %s", resp.StatusCode, body)
		}
		recs := env.Consume(t, ordersTopic, 10*time.Second, func(rs []*kafkaRecords) bool { return countKey(rs, "post-2") >= 1 })
		time.Sleep(300 * time.Millisecond)
		recs = env.Consume(t, ordersTopic, 10*time.Second, func(rs []*kafkaRecords) bool { return len(rs) >= len(recs) })
		if n := countKey(recs, "post-2"); n != 1 {
			t.Fatalf("%d records for post-2, want 1", n)
		}
	})

	t.Run("validated order written straight to the topic", func(t *testing.T) {
		// An order begins with its CREATED (a decision without one is nobody's order).
		o := newOrder("direct-1")
		b, _ := codecs.Order.Marshal(o)
		env.Produce(t, ordersTopic, o.ID, b)
		o.State = domain.OrderValidated
		b, _ = codecs.Order.Marshal(o)
		env.Produce(t, ordersTopic, o.ID, b)
		status, got, body := get(t, in.url+"/v1/orders/direct-1/validated")
		if status != http.StatusOK || got != o {
			t.Fatalf("GET validated: %d %+v %s", status, got, body)
		}
	})

	t.Run("missing order times out with 504 problem", func(t *testing.T) {
		start := time.Now()
		status, _, body := get(t, in.url+"/v1/orders/1?timeout=100")
		if status != http.StatusGatewayTimeout || !strings.Contains(string(body), "timeout") {
			t.Fatalf("GET missing: %d %s", status, body)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("timeout=100 took %v", took)
		}
	})

	t.Run("bad body is 400 naming the field and writes nothing", func(t *testing.T) {
		resp, err := http.Post(in.url+"/v1/orders", "application/json", strings.NewReader(`{"id":"bad-1","customerId":1,"product":"SOCKS","quantity":1,"price":1}`))
		if err != nil {
			t.Fatal(err)
		}
		var p orders.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 400 || p.Field != "product" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%d %+v", resp.StatusCode, p)
		}
		if status, _, _ := get(t, in.url+"/v1/orders/bad-1?timeout=200"); status != http.StatusGatewayTimeout {
			t.Fatalf("rejected order is readable: %d", status)
		}
	})

	t.Run("aggregator validates after three passes", func(t *testing.T) {
		o := newOrder("agg-1")
		if resp, body := post(t, in.url, o, ""); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		for _, check := range domain.CheckTypes {
			b, _ := codecs.OrderValidation.Marshal(domain.OrderValidation{OrderID: o.ID, CheckType: check, ValidationResult: domain.Pass})
			env.Produce(t, env.Names.Topic(string(platform.TopicOrderValidations)), o.ID, b)
		}
		status, got, body := get(t, in.url+"/v1/orders/agg-1/validated")
		want := o
		want.State = domain.OrderValidated
		if status != http.StatusOK || got != want {
			t.Fatalf("GET validated: %d %+v %s", status, got, body)
		}
	})
}

type kafkaRecords = kgo.Record

func countKey(rs []*kafkaRecords, key string) int {
	n := 0
	for _, r := range rs {
		if string(r.Key) == key {
			n++
		}
	}
	return n
}

func TestTwoInstancesEitherServesTheOrder(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	a := startInstance(t, env, "a")
	b := startInstance(t, env, "b")
	waitBalanced(t, env, []*instance{a, b}, 4)
	for i := 0; i < 10; i++ {
		o := newOrder(fmt.Sprintf("two-%d", i))
		via := []*instance{a, b}[i%2]
		if resp, body := post(t, via.url, o, ""); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST via %d: %d %s", i%2, resp.StatusCode, body)
		}
		for _, in := range []*instance{a, b} {
			status, got, body := get(t, in.url+"/v1/orders/"+o.ID)
			if status != http.StatusOK || got != o {
				t.Fatalf("GET %s via %s: %d %s", o.ID, in.url, status, body)
			}
		}
	}
}

// Issue 13 item 5: every id POST accepts round-trips through its Location, escaped paths and
// forwarding. Before, "a;b" and "c,d" were accepted and then answered 504 for ever, and an id
// holding "%2Fvalidated" answered another resource once forwarded.
func TestEveryAcceptedIDRoundTrips(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	a := startInstance(t, env, "a")
	b := startInstance(t, env, "b")
	waitBalanced(t, env, []*instance{a, b}, 4)
	ids := []string{"a;b", "c,d", "x1%2Fvalidated", "50%off", "sp ace", "plus+sign", "eq=al&amp", "ünïcødé", "emoji-🦀", "semi;colon,comma", "dot.", ".hidden", "...", "@at:colon"}
	for i, id := range ids {
		o := newOrder(id)
		resp, body := post(t, []*instance{a, b}[i%2].url, o, "")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %q: %d %s", id, resp.StatusCode, body)
		}
		loc := resp.Header.Get("Location")
		for _, in := range []*instance{a, b} {
			status, got, body := get(t, in.url+loc+"?timeout=5000")
			if status != http.StatusOK || got != o {
				t.Errorf("GET %s (id %q) via %s: %d %s", loc, id, in.url, status, body)
			}
		}
		v := o
		v.State = domain.OrderValidated
		raw, err := codecs.Order.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		env.Produce(t, env.Names.Topic(string(platform.TopicOrders)), o.ID, raw)
		for _, in := range []*instance{a, b} {
			status, got, body := get(t, in.url+loc+"/validated?timeout=5000")
			if status != http.StatusOK || got != v {
				t.Errorf("GET %s/validated (id %q) via %s: %d %s", loc, id, in.url, status, body)
			}
		}
	}
}

// Issue 13 item 9: a client that hangs up on a long-poll is not a server error: /metrics
// counts it as 499 (client closed request), never 500.
func TestClientHangUpIsNotAServerError(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	in := startInstance(t, env, "a")
	waitBalanced(t, env, []*instance{in}, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.url+"/v1/orders/never-posted?timeout=20000", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the long-poll answered %d before the client hung up", resp.StatusCode)
	}
	count := func(status string) float64 {
		resp, err := http.Get(in.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		prefix := `ordersys_http_request_duration_seconds_count{method="GET",route="/v1/orders/{id}",status="` + status + `"} `
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return 0
	}
	kafkatest.Eventually(t, 5*time.Second, "the hung-up request counted as 499", func() bool { return count("499") >= 1 })
	if n := count("500"); n != 0 {
		t.Fatalf("%v GETs counted as 500", n)
	}
}

// waitBalanced waits until the instances together own all partitions and each owns some.
func waitBalanced(t *testing.T, env *kafkatest.Env, ins []*instance, partitions int) {
	t.Helper()
	kafkatest.Eventually(t, 60*time.Second, "partitions spread over every instance", func() bool {
		total := 0
		for _, in := range ins {
			n := len(in.svc.OwnedPartitions())
			if n == 0 {
				return false
			}
			total += n
		}
		return total == partitions
	})
}

// Three instances on six partitions; a client keeps posting and reading with a 20 s timeout
// while one instance stops and another starts. No request may fail.
func TestRebalancesAreInvisibleToClients(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for several rebalances")
	}
	env := kafkatest.New(t, kafkatest.Options{Partitions: 6})
	ins := []*instance{startInstance(t, env, "r1"), startInstance(t, env, "r2"), startInstance(t, env, "r3")}
	waitBalanced(t, env, ins, 6)

	var mu sync.Mutex
	live := append([]*instance(nil), ins...)
	pick := func() *instance {
		mu.Lock()
		defer mu.Unlock()
		return live[rand.IntN(len(live))]
	}
	var posted []string
	for i := 0; i < 30; i++ {
		o := newOrder(fmt.Sprintf("pre-%d", i))
		if resp, body := post(t, pick().url, o, "?timeout=20000"); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		posted = append(posted, o.ID)
	}
	for _, id := range posted {
		for _, in := range ins {
			if status, _, body := get(t, in.url+"/v1/orders/"+id+"?timeout=20000"); status != http.StatusOK {
				t.Fatalf("GET %s via %s: %d %s", id, in.url, status, body)
			}
		}
	}

	var failures, requests atomic.Int64
	stopClient := make(chan struct{})
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		client := &http.Client{Timeout: 25 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stopClient:
				return
			default:
			}
			id := fmt.Sprintf("live-%d", i)
			b, _ := json.Marshal(newOrder(id))
			check := func(resp *http.Response, err error, want int, what string) {
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("%s: %v", what, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					failures.Add(1)
					t.Errorf("%s: %d %s", what, resp.StatusCode, body)
				}
			}
			resp, err := client.Post(pick().url+"/v1/orders?timeout=20000", "application/json", bytes.NewReader(b))
			check(resp, err, http.StatusCreated, "POST "+id)
			old := posted[i%len(posted)]
			resp, err = client.Get(pick().url + "/v1/orders/" + old + "?timeout=20000")
			check(resp, err, http.StatusOK, "GET "+old)
			resp, err = client.Get(pick().url + "/v1/orders/" + id + "?timeout=20000")
			check(resp, err, http.StatusOK, "GET "+id)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	// Take r1 out of the client's rotation (as a load balancer would on failing readiness),
	// then stop it: its partitions move to the others.
	mu.Lock()
	live = live[1:]
	mu.Unlock()
	ins[0].stop()
	// A new instance joins: partitions move again.
	r4 := startInstance(t, env, "r4")
	mu.Lock()
	live = append(live, r4)
	mu.Unlock()
	waitBalanced(t, env, []*instance{ins[1], ins[2], r4}, 6)
	time.Sleep(2 * time.Second)
	close(stopClient)
	<-clientDone
	t.Logf("%d requests during two rebalances, %d failed", requests.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failures.Load(), requests.Load())
	}
}
