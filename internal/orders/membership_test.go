package orders_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Issue 13 item 4: anyone who can write to the membership topic once could pin routing. An
// entry with a huge generation won for ever, one with a lower generation but a clock three
// minutes fast replaced the current owner, and an address such as the cloud metadata
// endpoint was forwarded to. Now invalid entries are ignored, generations beyond the group's
// are not routed to, and owners re-announce, which heals an entry forged at the current
// generation: reads through the other instance keep reaching the real owner.
func TestForgedMembershipEntriesDoNotMisroute(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	fast := func(c *orders.Config) { c.AnnounceInterval = 300 * time.Millisecond }
	a := startInstance(t, env, "a", fast)
	b := startInstance(t, env, "b", fast)
	waitBalanced(t, env, []*instance{a, b}, 4)

	// Orders on b's partitions, which a has to forward to b.
	var ids []string
	for i := 0; len(ids) < 4; i++ {
		o := newOrder(fmt.Sprintf("forged-%d", i))
		if p := platform.PartitionFor(o.ID, 4); !slices.Contains(b.svc.OwnedPartitions(), p) {
			continue
		}
		if resp, body := post(t, b.url, o, ""); resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", o.ID, resp.StatusCode, body)
		}
		ids = append(ids, o.ID)
	}

	topic := env.Names.Topic(string(platform.TopicOrdersMembership))
	now := time.Now().UTC()
	for _, p := range b.svc.OwnedPartitions() {
		gen := int32(1)
		forged := []orders.Owner{
			{Partition: p, Addr: "127.0.0.1:1", Generation: math.MaxInt32, MemberID: "forged-huge", UpdatedAt: now},
			{Partition: p, Addr: "169.254.169.254:80", Generation: gen + 1, MemberID: "forged-metadata", UpdatedAt: now},
			{Partition: p, Addr: "0.0.0.0:8080", Generation: gen + 1, MemberID: "forged-unspecified", UpdatedAt: now},
			{Partition: p, Addr: "127.0.0.1:99999", Generation: gen + 1, MemberID: "forged-port", UpdatedAt: now},
			{Partition: p, Addr: "127.0.0.1:1", Generation: gen, MemberID: "forged-fast-clock", UpdatedAt: now.Add(3 * time.Minute)},
			// At the group's current generation, as a real owner would write: the real owner's
			// next announcement puts itself back.
			{Partition: p, Addr: "127.0.0.1:1", Generation: a.svc.Generation(), MemberID: "forged-current", UpdatedAt: now},
		}
		for _, o := range forged {
			v, _ := json.Marshal(o)
			env.Produce(t, topic, strconv.Itoa(int(p)), v)
		}
		env.Produce(t, topic, strconv.Itoa(int(p)), []byte("not json"))
	}
	// Let the forged entries land, and a re-announcement come after them.
	time.Sleep(time.Second)
	for round := range 3 {
		for _, id := range ids {
			status, got, body := get(t, a.url+"/v1/orders/"+id+"?timeout=5000")
			if status != http.StatusOK || got.ID != id {
				t.Fatalf("round %d: GET %s through a: %d %s", round, id, status, body)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
