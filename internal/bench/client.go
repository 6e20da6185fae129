package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ordersapi"
	"github.com/ordersys/ecosystem/internal/platform"
)

// Customers spread the orders so that no customer's fraud total nears the 2000 limit: every
// order is worth 1.0, so a customer would need 2000 orders within an hour to fail, and the
// longest run posts far fewer than customerSpread × 2000 orders.
const (
	customerBase   = 1_000_000
	customerSpread = 10_000
)

// plentifulStock is the stock of every product: far more than a run reserves (one unit per
// order), so the inventory check always passes.
const plentifulStock = 1 << 30

// benchCustomers are the customers of benchOrder, the levels in turn, so the Email service
// finds every order's customer and routes to all four level topics.
func benchCustomers() []domain.Customer {
	levels := slices.Sorted(maps.Keys(platform.LevelTopics))
	customers := make([]domain.Customer, customerSpread)
	for i := range customers {
		id := customerBase + int64(i)
		customers[i] = domain.Customer{
			ID: id, FirstName: "Bench", LastName: strconv.FormatInt(id, 10),
			Email: "customer" + strconv.FormatInt(id, 10) + "@bench.invalid", Address: "1 load street, loopback",
			Level: levels[i%len(levels)],
		}
	}
	return customers
}

// benchOrder is order number i of a run: one unit of a product at 1.0, for a spread customer.
func benchOrder(id string, i int) domain.Order {
	return domain.Order{
		ID:         id,
		CustomerID: customerBase + int64(i%customerSpread),
		State:      domain.OrderCreated,
		Product:    domain.Products[i%len(domain.Products)],
		Quantity:   1,
		Price:      1.0,
	}
}

// ordersClient calls the Orders REST API with keep-alive connections; one is shared by all
// the benchmark's requests so connections are reused across phases.
type ordersClient struct {
	http *http.Client
}

func newOrdersClient(maxConns int) *ordersClient {
	return &ordersClient{http: &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        0, // no overall limit; per host below
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}}
}

func (c *ordersClient) close() { c.http.CloseIdleConnections() }

// post creates o through the instance at base.
func (c *ordersClient) post(ctx context.Context, base string, o domain.Order) error {
	return ordersapi.New(base, c.http).Post(ctx, o)
}

// awaitDecided long-polls GET /v1/orders/{id}/validated and returns the order's final state.
func (c *ordersClient) awaitDecided(ctx context.Context, base, id string, timeout time.Duration) (domain.OrderState, error) {
	o, err := ordersapi.New(base, c.http).AwaitDecided(ctx, id, timeout)
	return o.State, err
}

// read is the read test's request: GET /v1/orders/{id}, answered from the view of the
// instance owning the id (locally or forwarded), its status checked but its body not decoded.
func (c *ordersClient) read(ctx context.Context, base, id string) error {
	return ordersapi.New(base, c.http).Probe(ctx, id, 2*time.Second)
}

// errStatus is a reply other than 200.
var errStatus = errors.New("unexpected status")

// scrapeCounter sums the samples of a Prometheus counter whose line starts with series (name
// and labels, e.g. `x_total{outcome="relayed"}`) on base/metrics.
func (c *ordersClient) scrapeCounter(ctx context.Context, base, series string) (float64, error) {
	body, err := c.getLimited(ctx, base+"/metrics")
	if err != nil {
		return 0, fmt.Errorf("scrape %s/metrics: %w", base, err)
	}
	var sum float64
	for line := range bytes.Lines(body) {
		rest, ok := bytes.CutPrefix(line, []byte(series))
		if !ok || len(rest) == 0 || rest[0] != ' ' {
			continue
		}
		v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
		if err != nil {
			return 0, fmt.Errorf("scrape %s/metrics: %s: %w", base, series, err)
		}
		sum += v
	}
	return sum, nil
}

func (c *ordersClient) getLimited(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w %d", errStatus, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 8<<20))
}
