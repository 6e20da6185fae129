package inventory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Found by review: state is kept by record key but the order acted on is the value's id, so
// a CREATED of other content for a finished order, written under another key, passed the
// First check and reserved units nothing ever released. A record whose key is not its order's
// id is now dead-lettered by every consumer of `orders` (platform.Decode).
func TestOrderUnderAnotherKeyIsDeadLetteredOnBroker(t *testing.T) {
	b := newBrokerService(t)
	b.setStock(t, map[domain.Product]int32{domain.Jumpers: 5, domain.Underpants: 5})
	stop := b.start(t)
	defer stop()
	log := kafkatest.NewVerdictLog(t, b.env, domain.InventoryCheck)

	first := order("dup", domain.Jumpers, 1)
	if got := judge(t, log, b, first); got != domain.Pass {
		t.Fatalf("first order: %s", got)
	}
	validated := first
	validated.State = domain.OrderValidated
	b.produce(t, validated)
	time.Sleep(500 * time.Millisecond)
	// another producer's CREATED for id "dup", under a different record key
	b.env.Produce(t, b.topic(string(platform.TopicOrders)), "dup-decoy", encode(t, order("dup", domain.Underpants, 5)))
	dead := b.env.Consume(t, b.topic(string(platform.TopicDeadLetters)), 30*time.Second, kafkatest.CountOf(1))
	if string(dead[0].Key) != "dup-decoy" || !strings.Contains(kafkatest.Header(dead[0], platform.HeaderDLQError), "not the order's id") {
		t.Fatalf("dead letter %q: %s", dead[0].Key, kafkatest.Header(dead[0], platform.HeaderDLQError))
	}
	if got := judge(t, log, b, order("next", domain.Underpants, 5)); got != domain.Pass {
		t.Fatalf("order for all 5 UNDERPANTS after the ignored one: %s, want PASS (dup's verdicts: %v)", got, log.ByID["dup"])
	}
}
