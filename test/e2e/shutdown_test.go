package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ecosystem/ecotest"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Issue 13 item 8: when the ecosystem is told to stop, Orders drains its waiting requests
// before the validators stop, so an order that arrives during the drain is still validated and
// its waiting GET answered. The validators used to stop at once, and the GET could only time
// out.
func TestShutdownValidatesWhileOrdersDrains(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	setStock(t, env, map[domain.Product]int32{domain.Jumpers: 10, domain.Underpants: 10})
	eco := ecotest.Start(t, env)
	base := eco.URL

	type answer struct {
		status int
		body   []byte
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get(base + "/v1/orders/drain-1/validated?timeout=20000")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		answered <- answer{status: resp.StatusCode, body: body}
	}()
	time.Sleep(500 * time.Millisecond) // the GET is waiting
	eco.Shutdown()
	time.Sleep(200 * time.Millisecond) // shutdown has begun
	o := referenceOrder(1)
	o.ID = "drain-1"
	b, err := platform.StaticCodecs().Order.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	env.Produce(t, env.Names.Topic(string(platform.TopicOrders)), o.ID, b)

	a := <-answered
	var got domain.Order
	if a.err != nil || a.status != http.StatusOK || json.Unmarshal(a.body, &got) != nil || got.State != domain.OrderValidated {
		t.Fatalf("GET …/validated waiting through shutdown: %d %s %v, want 200 VALIDATED", a.status, a.body, a.err)
	}
	if err := eco.Wait(); err != nil {
		t.Fatalf("ecosystem: %v", err)
	}
}
