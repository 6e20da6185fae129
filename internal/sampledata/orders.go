package sampledata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ordersapi"
	"github.com/ordersys/ecosystem/internal/platform"
)

// OrderLoad configures PostOrders.
type OrderLoad struct {
	// URL is the Orders service's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Rate is how many orders are started per second.
	Rate float64
	// Count is how many orders to post; 0 posts until ctx ends.
	Count int
	// IDPrefix starts every order id; empty picks a random one, so that runs never reuse an id
	// (the Orders service refuses a different order under an existing id).
	IDPrefix string
	// ReadTimeout is the long-poll timeout of each read-back; default 10 s, the service's own.
	ReadTimeout time.Duration
	// MaxInFlight bounds the orders being worked on at once; when reached, the rate drops.
	// Default 256.
	MaxInFlight int
	// HTTPClient is used for the REST calls; default a client with a timeout above ReadTimeout.
	HTTPClient *http.Client
	// Logger receives one line per mismatch or failure; default slog.Default().
	Logger *slog.Logger
}

// OrderLoadSummary counts what PostOrders did.
type OrderLoadSummary struct {
	Posted     int `json:"posted"`     // orders the service accepted (201)
	ReadBack   int `json:"readBack"`   // orders read back through GET
	Mismatches int `json:"mismatches"` // orders read back different from what was posted
	Errors     int `json:"errors"`     // failed POSTs, payment writes and GETs
}

// Ok reports whether every order went through unchanged.
func (s OrderLoadSummary) Ok() bool { return s.Mismatches == 0 && s.Errors == 0 }

func (s OrderLoadSummary) String() string {
	return fmt.Sprintf("posted %d, read back %d, mismatches %d, errors %d", s.Posted, s.ReadBack, s.Mismatches, s.Errors)
}

// SampleCustomerIDs are the customers the reference's order tool picks from.
var SampleCustomerIDs = []int64{0, 1, 2, 3, 4, 5}

// PostOrders does what the reference's order-and-payment tool does: at the configured rate it
// posts an order (random customer 0–5, random product, quantity 1, price 1.0, a fresh id) to
// the REST API, writes its payment to `payments` (keyed by payment id, orderId set), and reads
// the order back with GET /v1/orders/{id}, which long-polls until the service's view has it.
// A read-back must equal what was posted except for the state, which the validators may
// already have moved to VALIDATED or FAILED.
//
// When ctx ends it stops starting orders and lets the started ones finish. The error is non-nil
// when anything mismatched or failed, or when ctx ended before Count orders were started.
func PostOrders(ctx context.Context, client *kgo.Client, names platform.Names, codecs *platform.Codecs, load OrderLoad) (OrderLoadSummary, error) {
	if err := load.defaults(); err != nil {
		return OrderLoadSummary{}, err
	}
	r := &orderRun{load: load, client: client, codecs: codecs, payments: names.Topic(string(platform.TopicPayments))}

	// In-flight orders finish even when ctx ends (interrupt means "stop starting orders"), but
	// within a bound.
	workCtx := context.WithoutCancel(ctx)
	interval := time.Duration(float64(time.Second) / load.Rate)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	slots := make(chan struct{}, load.MaxInFlight)
	var wg sync.WaitGroup
	started := 0
	for load.Count == 0 || started < load.Count {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		id := fmt.Sprintf("%s-%d", load.IDPrefix, started)
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			octx, cancel := context.WithTimeout(workCtx, load.ReadTimeout+30*time.Second)
			defer cancel()
			r.one(octx, id)
		}()
		if load.Count > 0 && started == load.Count {
			break
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
		}
	}
	wg.Wait()

	sum := r.summary()
	var err error
	if !sum.Ok() {
		err = fmt.Errorf("post orders: %s", sum)
	}
	if load.Count > 0 && started < load.Count {
		err = errors.Join(err, fmt.Errorf("post orders: interrupted after %d of %d orders", started, load.Count))
	}
	return sum, err
}

func (l *OrderLoad) defaults() error {
	switch {
	case l.URL == "":
		return errors.New("post orders: no Orders service URL")
	case !(l.Rate > 0):
		return fmt.Errorf("post orders: rate %v is not a positive number of orders per second", l.Rate)
	case l.Count < 0:
		return fmt.Errorf("post orders: negative count %d", l.Count)
	}
	if u, err := url.Parse(l.URL); err != nil {
		return fmt.Errorf("post orders: service URL: %w", err)
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("post orders: service URL %q: want http://host:port", l.URL)
	}
	l.URL = strings.TrimRight(l.URL, "/")
	if l.IDPrefix == "" {
		l.IDPrefix = fmt.Sprintf("ctl-%08x", rand.Uint32())
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 10 * time.Second
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 256
	}
	if l.HTTPClient == nil {
		l.HTTPClient = &http.Client{Timeout: l.ReadTimeout + 10*time.Second}
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	return nil
}

// orderRun is one PostOrders call's shared state.
type orderRun struct {
	load     OrderLoad
	client   *kgo.Client
	codecs   *platform.Codecs
	payments string

	mu  sync.Mutex
	sum OrderLoadSummary
}

func (r *orderRun) summary() OrderLoadSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sum
}

func (r *orderRun) count(f func(*OrderLoadSummary)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.sum)
}

// one posts, pays and reads back one order, counting the outcome.
func (r *orderRun) one(ctx context.Context, id string) {
	o := domain.Order{
		ID:         id,
		CustomerID: SampleCustomerIDs[rand.IntN(len(SampleCustomerIDs))],
		State:      domain.OrderCreated,
		Product:    domain.Products[rand.IntN(len(domain.Products))],
		Quantity:   1,
		Price:      1.0,
	}
	fail := func(err error) {
		r.count(func(s *OrderLoadSummary) { s.Errors++ })
		r.load.Logger.Warn("order failed", slog.String("order", id), slog.Any("error", err))
	}
	if err := r.post(ctx, o); err != nil {
		fail(err)
		return
	}
	r.count(func(s *OrderLoadSummary) { s.Posted++ })

	if err := r.pay(ctx, o); err != nil {
		fail(err)
		return
	}

	got, err := r.get(ctx, id)
	if err != nil {
		fail(err)
		return
	}
	r.count(func(s *OrderLoadSummary) { s.ReadBack++ })
	if diff := compare(o, got); diff != "" {
		r.count(func(s *OrderLoadSummary) { s.Mismatches++ })
		r.load.Logger.Warn("order read back differs from the one posted",
			slog.String("order", id), slog.String("difference", diff),
			slog.String("posted", o.String()), slog.String("read", got.String()))
	}
}

func (r *orderRun) post(ctx context.Context, o domain.Order) error {
	return ordersapi.New(r.load.URL, r.load.HTTPClient).Post(ctx, o)
}

// pay writes the order's payment, as the reference's tool does right after posting.
func (r *orderRun) pay(ctx context.Context, o domain.Order) error {
	rec, err := PaymentRecord(r.payments, r.codecs, o)
	if err != nil {
		return err
	}
	if err := produce(ctx, r.client, []*kgo.Record{rec}); err != nil {
		return fmt.Errorf("pay order %s: %w", o.ID, err)
	}
	return nil
}

// PaymentRecord is the record paying for o in full on topic (the namespaced payments topic),
// keyed by payment id as the reference's tool keys it.
func PaymentRecord(topic string, codecs *platform.Codecs, o domain.Order) (*kgo.Record, error) {
	p := domain.Payment{ID: "Payment:" + o.ID, OrderID: o.ID, Ccy: "CZK", Amount: float64(o.Quantity) * o.Price}
	value, err := codecs.Payment.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("pay order %s: %w", o.ID, err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(p.ID), Value: value}, nil
}

func (r *orderRun) get(ctx context.Context, id string) (domain.Order, error) {
	return ordersapi.New(r.load.URL, r.load.HTTPClient).Get(ctx, id, r.load.ReadTimeout)
}

// compare says how got differs from the posted order, or "" when it is the same order. The
// state may have moved on from CREATED, but only to a verdict.
func compare(posted, got domain.Order) string {
	var diffs []string
	field := func(name string, p, g any) {
		if p != g {
			diffs = append(diffs, fmt.Sprintf("%s %v, posted %v", name, g, p))
		}
	}
	field("id", posted.ID, got.ID)
	field("customerId", posted.CustomerID, got.CustomerID)
	field("product", posted.Product, got.Product)
	field("quantity", posted.Quantity, got.Quantity)
	field("price", posted.Price, got.Price)
	if got.State != domain.OrderCreated && got.State != domain.OrderValidated && got.State != domain.OrderFailed {
		diffs = append(diffs, fmt.Sprintf("state %s, want CREATED or a verdict", got.State))
	}
	return strings.Join(diffs, "; ")
}
