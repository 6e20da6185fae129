package orders_test

// Found by an outside review of cd906db..e502b90; each test failed on e502b90.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// keysIn returns n distinct keys with prefix that fall in partition p of parts.
func keysIn(prefix string, p, parts int32, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if platform.PartitionFor(k, parts) == p {
			keys = append(keys, k)
		}
	}
	return keys
}

// produceMany writes records asynchronously and waits for all acks.
func produceMany(t *testing.T, env *kafkatest.Env, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, r := range recs {
		wg.Add(1)
		env.Client.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func marshal(t *testing.T, o domain.Order) []byte {
	t.Helper()
	b, err := codecs.Order.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A record whose Kafka key is not its value's id ("decoy" key, value id "victim") was stored
// by the view under the decoy key, but released the waiters of the value's id: a POST
// confirming "victim" was answered 409 with the decoy's content, although its own record is
// the only one under key "victim". Such records are now dead-lettered.
func TestDecoyKeyedRecordsDoNotAnswerAPost(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	in := startInstance(t, env, "decoy409")
	topic := env.Names.Topic(string(platform.TopicOrders))
	mine := newOrder("victim")
	decoy := mine
	decoy.CustomerID = 666 // other content, same value id
	// A backlog of decoys (keys != "victim") in victim's own partition, so that the view is
	// still going through them while the POST confirms.
	p := platform.PartitionFor("victim", 4)
	var recs []*kgo.Record
	for _, k := range keysIn("decoy", p, 4, 20000) {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: marshal(t, decoy)})
	}
	produceMany(t, env, recs)
	resp, body := post(t, in.url, mine, "?timeout=20000")
	// After the backlog the only record under key "victim" is ours.
	env.AwaitCaughtUp(t, 2*time.Minute, string(env.Names.Group(platform.GroupOrders)), topic)
	status, got, gbody := get(t, in.url+"/v1/orders/victim?timeout=30000")
	t.Logf("POST: %d %s; GET: %d %s", resp.StatusCode, body, status, gbody)
	if status != http.StatusOK || !domain.SameContent(got, mine) {
		t.Fatalf("GET: %d %s, want our order", status, gbody)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST of the only record under key victim answered %d, want 201", resp.StatusCode)
	}
}

// The same mechanism gave a 201 for an order that is not the id's first record: the first
// record under key "victim" is a rival, yet a decoy carrying our content under another key
// released confirm() with our content.
func TestDecoyKeyedRecordsDoNotConfirmAPost(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	in := startInstance(t, env, "decoy201")
	topic := env.Names.Topic(string(platform.TopicOrders))
	mine := newOrder("victim")
	rival := mine
	rival.CustomerID = 777
	p := platform.PartitionFor("victim", 4)
	var recs []*kgo.Record
	// decoys with OUR content under other keys of the same partition, then the rival under
	// key victim: the rival is the first record of key victim.
	for _, k := range keysIn("decoy", p, 4, 20000) {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: marshal(t, mine)})
	}
	produceMany(t, env, recs)
	env.Produce(t, topic, "victim", marshal(t, rival))
	resp, body := post(t, in.url, mine, "?timeout=20000")
	env.AwaitCaughtUp(t, 2*time.Minute, string(env.Names.Group(platform.GroupOrders)), topic)
	status, got, gbody := get(t, in.url+"/v1/orders/victim?timeout=30000")
	t.Logf("POST: %d %s; GET: %d %s", resp.StatusCode, body, status, gbody)
	if status == http.StatusOK && domain.SameContent(got, rival) && resp.StatusCode == http.StatusCreated {
		t.Fatalf("POST answered 201 while the id's first record (and the view) is the rival %+v", got)
	}
}

// create()'s "acknowledged, not yet in the view" shortcut answered 409 from this instance's
// pending write alone. When the id's first record is another producer's (the previous owner's
// write of the same client's POST, re-routed here) and this instance wrote a second content
// before its view caught up, a retry of the first content — the id's order — got 409.
func TestPendingWriteOfOtherContentDefersToTheView(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	in := startInstance(t, env, "pending")
	topic := env.Names.Topic(string(platform.TopicOrders))
	first := newOrder("victim")
	first.CustomerID = 777 // written by "another instance" first
	second := newOrder("victim")
	p := platform.PartitionFor("victim", 4)
	var recs []*kgo.Record
	for _, k := range keysIn("filler", p, 4, 20000) {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(k), Value: marshal(t, newOrder(k))})
	}
	produceMany(t, env, recs)
	env.Produce(t, topic, "victim", marshal(t, first)) // the id's first record
	secondDone := make(chan int, 1)
	go func() {
		resp, _ := post(t, in.url, second, "?timeout=20000")
		secondDone <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond) // the second POST's write is acknowledged; its confirm waits
	resp, body := post(t, in.url, first, "?timeout=20000")
	secondStatus := <-secondDone
	env.AwaitCaughtUp(t, 2*time.Minute, string(env.Names.Group(platform.GroupOrders)), topic)
	status, got, gbody := get(t, in.url+"/v1/orders/victim?timeout=30000")
	t.Logf("POST first: %d %s; POST second: %d; GET: %d %s", resp.StatusCode, body, secondStatus, status, gbody)
	if status != http.StatusOK || !domain.SameContent(got, first) {
		t.Fatalf("GET: %d %s, want the first record", status, gbody)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST of the id's first record answered %d, want 201", resp.StatusCode)
	}
}

// The view kept an id's first record whatever its state, while SPEC, the validators and the
// aggregator take the first CREATED as the order: a FAILED record of other content written
// first made every POST of the id 409.
func TestRecordBeforeTheFirstCreatedDoesNotPinTheView(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 4})
	in := startInstance(t, env, "firstnotcreated")
	topic := env.Names.Topic(string(platform.TopicOrders))
	forged := newOrder("pinned")
	forged.CustomerID = 666
	forged.State = domain.OrderFailed
	env.Produce(t, topic, forged.ID, marshal(t, forged))
	time.Sleep(500 * time.Millisecond) // the view has read the forged record
	resp, body := post(t, in.url, newOrder("pinned"), "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST of the id's first CREATED answered %d %s, want 201 (the first record was a FAILED, not a CREATED)", resp.StatusCode, body)
	}
}

// One record with a 300 KB key that is not its id stopped the Orders view and the aggregator:
// its dead letter (the reason quoted the key) exceeded the producer's message limit, the
// processor failed and replayed it for ever, and POSTs got 504.
func TestHugeMismatchedKeyDoesNotStopTheView(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 1})
	in := startInstance(t, env, "hugekey")
	topic := env.Names.Topic(string(platform.TopicOrders))
	env.Produce(t, topic, strings.Repeat("\x01", 300_000), marshal(t, newOrder("victim")))
	if resp, body := post(t, in.url, newOrder("after-poison"), "?timeout=10000"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST after the poison record: %d %s", resp.StatusCode, body)
	}
}
