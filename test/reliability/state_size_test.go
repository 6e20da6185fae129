package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// Found by the soak: the inventory service kept, per product, one group-table value holding
// an entry for every order of that product in the last 24 hours of event time, and wrote the
// whole value for every order. Once the value passed the producer's 1 MiB message limit, the
// table write failed, the service exited, and after a restart it failed again on the same
// order: that product's orders were never answered again. With ids of 240 characters (the API
// allows 256) the limit was reached after about 3,500 orders of one product; with 20-character
// ids after about 13,500, a day's orders at 0.16 orders a second per product. Commit b34a86a
// moved per-order facts under the orders' own keys.
//
// The test writes 4,000 orders of one product with such ids straight to `orders` and requires
// every one to get its inventory verdict from a service that stays up.
func TestInventoryStateSurvivesADayOfOrdersOfOneProduct(t *testing.T) {
	suiteMode(t, modeShort, modeFull)
	c := newCluster(t, 4)
	c.seed(sampleStock(10_000_000, 10))
	inv := c.startService(kindInventory, "inventory")
	c.waitReady(inv, 60*time.Second)

	const orders = 4000
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pad := strings.Repeat("x", 240)
	var recs []*kgo.Record
	for i := 0; i < orders; i++ {
		o := domain.Order{ID: fmt.Sprintf("%s-%05d", pad, i), CustomerID: int64(i), State: domain.OrderCreated,
			Product: domain.Jumpers, Quantity: 1, Price: 1}
		v, err := c.codecs.Order.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: c.names.Topic(string(platform.TopicOrders)), Key: []byte(o.ID), Value: v})
	}
	if err := c.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	verdicts := func() int {
		seen := map[string]bool{}
		c.scanTopic(c.names.Topic(string(platform.TopicOrderValidations)), func(r *kgo.Record) { seen[string(r.Key)] = true })
		return len(seen)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for n := verdicts(); n < orders; n = verdicts() {
		if exited(inv.current(), 0) {
			t.Fatalf("inventory ended (%s) after %d of %d verdicts: %.600s",
				inv.current().ExitState(), n, orders, exitReason(inv.current().Output()))
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d orders got an inventory verdict", n, orders)
		}
		time.Sleep(time.Second)
	}
	c.checkAlive()
}
