package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// unknownCustomers never exist: their orders wait for a customer record that does not come,
// so they are validated but neither enriched nor emailed.
var unknownCustomers = []int64{900, 901, 902, 903, 904}

// orderMix draws the orders of a load run. The mix makes every rule fire: details FAIL
// (negative price), fraud FAIL (a few large orders push customers over the limit), inventory
// FAIL (jumpers and stockings run out), unpaid orders and orders of unknown customers (no
// email), and plain orders that are validated and emailed.
type orderMix struct {
	mu    sync.Mutex
	rng   *rand.Rand
	known []int64
}

func newOrderMix(t *testing.T, known []int64) *orderMix {
	seed := uint64(time.Now().UnixNano())
	t.Logf("order mix seed %d", seed)
	return &orderMix{rng: rand.New(rand.NewPCG(seed, seed>>1)), known: known}
}

// next returns the order with id and whether its payment is to be written once accepted.
func (m *orderMix) next(id string) (domain.Order, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := domain.Order{
		ID:       id,
		State:    domain.OrderCreated,
		Product:  domain.Products[m.rng.IntN(len(domain.Products))],
		Quantity: int32(1 + m.rng.IntN(3)),
	}
	if m.rng.IntN(10) == 0 {
		o.CustomerID = unknownCustomers[m.rng.IntN(len(unknownCustomers))]
	} else {
		o.CustomerID = m.known[m.rng.IntN(len(m.known))]
	}
	switch r := m.rng.IntN(100); {
	case r < 6:
		o.Price = -1
	case r < 9:
		o.Price = 1500
	default:
		o.Price = float64(1+m.rng.IntN(5000)) / 100
	}
	return o, m.rng.IntN(20) != 0
}

// placement is one order the load client tried to place, and what came of it.
type placement struct {
	order  domain.Order
	via    string // base URL it was posted to
	status int    // status of the POST; 0 when no answer came
	err    string
	paid   bool // its payment was written
	at     time.Time
	took   time.Duration
	// readStatus is the status of the read-back GET of /validated, when the load reads back,
	// and readTook how long from the POST until the order was decided.
	readStatus int
	readTook   time.Duration
}

func (p *placement) accepted() bool { return p.status == http.StatusCreated }

// loadClient posts orders at a steady rate through the REST API, as users would, and writes
// each accepted order's payment to `payments`, as the reference's payment tool does. It keeps
// every attempt with its outcome: only orders answered 201 were promised anything.
type loadClient struct {
	c           *cluster
	urls        []string
	mix         *orderMix
	prefix      string
	http        *http.Client
	postTimeout time.Duration
	// readBack makes every accepted order be read back with GET /validated, as the
	// reference's order tool reads its orders back, so that long-polls are exercised too.
	readBack bool

	mu     sync.Mutex
	placed []*placement

	cancel context.CancelFunc
	done   chan struct{}
}

// startLoad starts posting rate orders per second, round-robin over urls, until stop.
func (c *cluster) startLoad(urls []string, rate float64, prefix string, mix *orderMix) *loadClient {
	return c.startLoadReading(urls, rate, prefix, mix, false)
}

// startLoadReading is startLoad that also reads every accepted order back when readBack is set.
func (c *cluster) startLoadReading(urls []string, rate float64, prefix string, mix *orderMix, readBack bool) *loadClient {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loadClient{
		c: c, urls: urls, mix: mix, prefix: prefix, readBack: readBack,
		http:        &http.Client{Timeout: 30 * time.Second},
		postTimeout: 5 * time.Second,
		cancel:      cancel,
		done:        make(chan struct{}),
	}
	go l.run(ctx, rate)
	c.t.Cleanup(func() { l.stop() })
	return l
}

func (l *loadClient) run(ctx context.Context, rate float64) {
	defer close(l.done)
	ticker := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer ticker.Stop()
	slots := make(chan struct{}, 512)
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		o, pay := l.mix.next(fmt.Sprintf("%s-%d", l.prefix, n))
		via := l.urls[n%len(l.urls)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p := l.place(o, pay, via)
			l.mu.Lock()
			l.placed = append(l.placed, p)
			l.mu.Unlock()
		}()
	}
}

// place posts one order and, when it is accepted and the mix says so, writes its payment.
// In-flight orders finish after stop: their outcome is part of what the scenario checks.
func (l *loadClient) place(o domain.Order, pay bool, via string) *placement {
	p := &placement{order: o, via: via, at: time.Now()}
	body, _ := json.Marshal(o)
	url := fmt.Sprintf("%s/v1/orders?timeout=%d", via, l.postTimeout.Milliseconds())
	resp, err := l.http.Post(url, "application/json", bytes.NewReader(body))
	p.took = time.Since(p.at)
	if err != nil {
		p.err = err.Error()
		return p
	}
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	p.status = resp.StatusCode
	if !p.accepted() {
		p.err = string(bytes.TrimSpace(text))
		return p
	}
	if pay {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := l.c.pay(ctx, o); err != nil {
			p.err = err.Error()
			return p
		}
		p.paid = true
	}
	if l.readBack {
		resp, err := l.http.Get(fmt.Sprintf("%s/v1/orders/%s/validated?timeout=10000", via, o.ID))
		if err != nil {
			p.err = err.Error()
			return p
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		p.readStatus = resp.StatusCode
		p.readTook = time.Since(p.at)
	}
	return p
}

// stop stops starting orders, waits for the ones in flight and returns every attempt.
func (l *loadClient) stop() []*placement {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*placement(nil), l.placed...)
}

// progress returns how many orders were attempted and accepted so far.
func (l *loadClient) progress() (attempted, accepted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.placed {
		if p.accepted() {
			accepted++
		}
	}
	return len(l.placed), accepted
}

// pay writes the payment of o, keyed by payment id, as sampledata's order tool does.
func (c *cluster) pay(ctx context.Context, o domain.Order) error {
	pm := domain.Payment{ID: "Payment:" + o.ID, OrderID: o.ID, Ccy: "CZK", Amount: float64(o.Quantity) * o.Price}
	value, err := c.codecs.Payment.Marshal(pm)
	if err != nil {
		return fmt.Errorf("pay order %s: %w", o.ID, err)
	}
	rec := &kgo.Record{Topic: c.names.Topic(string(platform.TopicPayments)), Key: []byte(pm.ID), Value: value}
	if err := c.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("pay order %s: %w", o.ID, err)
	}
	return nil
}
