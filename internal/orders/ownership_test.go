package orders

import (
	"context"
	"fmt"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// A session that ends while the view is still recovering must not claim the partition: goka's
// Setup returns nil when its context is cancelled during recovery, and the instance once
// marked the half-recovered partition owned and announced it, so GETs routed to it answered
// from a view missing the previous owner's orders.
func TestSessionCutShortDuringRecoveryClaimsNothing(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 1})
	codecs := platform.StaticCodecs()

	// A table large enough that recovering it takes a while.
	table := string(goka.GroupTable(env.Names.Group(platform.GroupOrders)))
	var recs []*kgo.Record
	for i := range 300000 {
		id := fmt.Sprintf("o-%06d", i)
		b, err := codecs.Order.Marshal(domain.Order{ID: id, CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: table, Key: []byte(id), Value: b})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for rest := recs; len(rest) > 0; {
		n := min(len(rest), 10000)
		if err := env.Client.ProduceSync(ctx, rest[:n]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}

	var mu sync.Mutex
	var announced []int32
	ownership := &Ownership{topic: env.Names.Topic(string(platform.TopicOrders)),
		announce: func(_ context.Context, generation int32, _ string, partitions []int32) error {
			mu.Lock()
			defer mu.Unlock()
			announced = append(announced, generation)
			return nil
		}}
	g := env.Goka(t)
	g.ConsumerGroupBuilder = ownership.ConsumerGroupBuilder(g.SaramaConsumerGroupBuilder())
	p, err := g.NewProcessor(ViewGraph(env.Names, codecs, func(domain.Order) {}))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	kafkatest.Eventually(t, time.Minute, "the view recovering", func() bool { return p.StateReader().State() == goka.ProcStateSetup })
	time.Sleep(100 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if size, err := p.Get("o-299999"); err == nil && size != nil {
		t.Skip("the table recovered before the session ended; nothing was cut short")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(announced) > 0 || ownership.Owns(0) {
		t.Fatalf("a session cut short during recovery announced generations %v (owns partition 0: %v)", announced, ownership.Owns(0))
	}
}

func TestOwnerValidate(t *testing.T) {
	ok := Owner{Partition: 2, Addr: "orders-1:8080", Generation: 3, MemberID: "m"}
	cases := []struct {
		name  string
		key   string
		edit  func(*Owner)
		valid bool
	}{
		{"host name", "2", func(*Owner) {}, true},
		{"IPv4 loopback", "2", func(o *Owner) { o.Addr = "127.0.0.1:9000" }, true},
		{"IPv6", "2", func(o *Owner) { o.Addr = "[2001:db8::1]:9000" }, true},
		{"key of another partition", "3", func(*Owner) {}, false},
		{"partition out of range", "9", func(o *Owner) { o.Partition = 9 }, false},
		{"negative partition", "-1", func(o *Owner) { o.Partition = -1 }, false},
		{"generation zero", "2", func(o *Owner) { o.Generation = 0 }, false},
		{"no port", "2", func(o *Owner) { o.Addr = "orders-1" }, false},
		{"port zero", "2", func(o *Owner) { o.Addr = "orders-1:0" }, false},
		{"port too large", "2", func(o *Owner) { o.Addr = "orders-1:65536" }, false},
		{"named port", "2", func(o *Owner) { o.Addr = "orders-1:http" }, false},
		{"no host", "2", func(o *Owner) { o.Addr = ":8080" }, false},
		{"unspecified IPv4", "2", func(o *Owner) { o.Addr = "0.0.0.0:8080" }, false},
		{"unspecified IPv6", "2", func(o *Owner) { o.Addr = "[::]:8080" }, false},
		{"link-local metadata endpoint", "2", func(o *Owner) { o.Addr = "169.254.169.254:80" }, false},
		{"link-local IPv6", "2", func(o *Owner) { o.Addr = "[fe80::1]:80" }, false},
		{"multicast", "2", func(o *Owner) { o.Addr = "224.0.0.1:80" }, false},
		{"user info", "2", func(o *Owner) { o.Addr = "user@evil:80" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.edit(&o)
			if err := o.validate(c.key, 4); (err == nil) != c.valid {
				t.Fatalf("validate(%+v) = %v, want valid=%v", o, err, c.valid)
			}
		})
	}
}

func TestOwnerCandidatesBest(t *testing.T) {
	owner := func(member string, gen int32) Owner {
		return Owner{Partition: 0, Addr: member + ":80", Generation: gen, MemberID: member}
	}
	cases := []struct {
		name    string
		added   []Owner
		current int32
		want    string // member routed to; "" none
	}{
		{"newest generation wins", []Owner{owner("a", 3), owner("b", 4)}, 4, "b"},
		{"a late older announcement does not replace a newer one", []Owner{owner("b", 4), owner("a", 3)}, 4, "b"},
		{"beyond the group's generation is not routed to", []Owner{owner("a", 4), owner("forged", math.MaxInt32)}, 4, "a"},
		{"one generation: the latest announced", []Owner{owner("a", 4), owner("forged", 4), owner("a", 4)}, 4, "a"},
		{"a rebalance not yet joined here", []Owner{owner("a", 4), owner("b", 5)}, 4, "a"},
		{"nothing at or below the group's generation", []Owner{owner("a", 9)}, 4, ""},
		{"a flood pushes out the oldest candidates", []Owner{owner("a", 4), owner("f1", 99), owner("f2", 99), owner("f3", 99), owner("f4", 99)}, 4, ""},
		{"and the owner's re-announcement comes back", []Owner{owner("a", 4), owner("f1", 99), owner("f2", 99), owner("f3", 99), owner("f4", 99), owner("a", 4)}, 4, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cands ownerCandidates
			for _, o := range c.added {
				cands.add(o)
			}
			got, ok := cands.best(c.current)
			if (c.want == "") == ok || (ok && got.MemberID != c.want) {
				t.Fatalf("best(%d) of %+v = %+v %v, want %q", c.current, cands.Entries, got, ok, c.want)
			}
		})
	}
}

// The address published in the membership table: the configured one, else the listener's,
// with an unspecified IP replaced by loopback; a listener that is not TCP is published as it is
// (it used to dereference a nil *TCPAddr).
func TestAdvertisedAddress(t *testing.T) {
	cases := []struct {
		name, configured string
		listen           net.Addr
		want             string
	}{
		{"configured wins", "orders-1:8080", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9}, "orders-1:8080"},
		{"listener address", "", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 8080}, "10.0.0.1:8080"},
		{"unspecified becomes loopback", "", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "127.0.0.1:8080"},
		{"not TCP", "", &net.UnixAddr{Name: "/run/orders.sock", Net: "unix"}, "/run/orders.sock"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := advertised(c.configured, c.listen); got != c.want {
				t.Fatalf("advertised(%q, %v) = %q, want %q", c.configured, c.listen, got, c.want)
			}
		})
	}
}
