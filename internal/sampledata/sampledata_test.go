package sampledata_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readAll returns every record topic holds now.
func readAll(t *testing.T, env *kafkatest.Env, topic string) []*kgo.Record {
	t.Helper()
	ends, err := env.Admin.ListEndOffsets(ctxFor(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	if total == 0 {
		return nil
	}
	return env.Consume(t, topic, 10*time.Second, kafkatest.CountOf(total))
}

// stockOf reads the table the way a consumer does: the last value per product wins.
func stockOf(t *testing.T, env *kafkatest.Env) map[domain.Product]int32 {
	t.Helper()
	got := map[domain.Product]int32{}
	for _, r := range readAll(t, env, env.Names.Topic(string(platform.TopicWarehouseInventory))) {
		n, err := platform.DecodeStock(r.Value)
		if err != nil {
			t.Fatalf("record %s: %v", r.Key, err)
		}
		got[domain.Product(r.Key)] = n
	}
	return got
}

func TestSetStock(t *testing.T) {
	cases := []struct {
		name  string
		steps []map[domain.Product]int32 // written one after the other
		want  map[domain.Product]int32
	}{
		{"reference defaults", []map[domain.Product]int32{sampledata.DefaultStock()},
			map[domain.Product]int32{domain.Underpants: 20, domain.Jumpers: 10}},
		{"only the products given are written", []map[domain.Product]int32{{domain.Stockings: 7}},
			map[domain.Product]int32{domain.Stockings: 7}},
		{"a later value replaces the product's, others keep theirs",
			[]map[domain.Product]int32{sampledata.DefaultStock(), {domain.Jumpers: 0, domain.Stockings: 1 << 30}},
			map[domain.Product]int32{domain.Underpants: 20, domain.Jumpers: 0, domain.Stockings: 1 << 30}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := kafkatest.New(t, kafkatest.Options{})
			for _, s := range c.steps {
				if err := sampledata.SetStock(ctxFor(t), env.Client, env.Names, s); err != nil {
					t.Fatal(err)
				}
			}
			got := stockOf(t, env)
			if len(got) != len(c.want) {
				t.Fatalf("stock %v, want %v", got, c.want)
			}
			for p, n := range c.want {
				if got[p] != n {
					t.Fatalf("stock %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestSetStockRefusesBadInputBeforeWriting(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	cases := []struct {
		name  string
		stock map[domain.Product]int32
		want  string
	}{
		{"unknown product", map[domain.Product]int32{domain.Jumpers: 1, "SOCKS": 3}, `unknown product "SOCKS"`},
		{"negative count", map[domain.Product]int32{domain.Jumpers: 1, domain.Underpants: -1}, "negative count"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := sampledata.SetStock(ctxFor(t), env.Client, env.Names, c.stock)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	if got := stockOf(t, env); len(got) != 0 {
		t.Fatalf("refused stock was partly written: %v", got)
	}
}

func TestProduceCustomers(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	customers := sampledata.SampleCustomers()
	if err := sampledata.ProduceCustomers(ctxFor(t), env.Client, env.Names, customers); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, env, env.Names.Topic(string(platform.TopicCustomers)))
	got := map[int64]domain.Customer{}
	for _, r := range recs {
		id, err := platform.ParseCustomerKey(string(r.Key))
		if err != nil {
			t.Fatal(err)
		}
		c, err := platform.StaticCodecs().Customer.Unmarshal(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != id {
			t.Fatalf("customer %d stored under key %d", c.ID, id)
		}
		// The key's partition must be the one every other producer (goka, Java) would choose.
		if want := platform.PartitionFor(string(r.Key), int32(env.Config.Partitions)); r.Partition != want {
			t.Fatalf("customer %d on partition %d, murmur2 says %d", id, r.Partition, want)
		}
		got[id] = c
	}
	if len(recs) != len(customers) || len(got) != len(customers) {
		t.Fatalf("%d records for %d distinct ids, want %d", len(recs), len(got), len(customers))
	}

	cases := []struct {
		name  string
		check func() bool
	}{
		{"customers 0-5 exist", func() bool {
			for id := int64(0); id <= 5; id++ {
				if _, ok := got[id]; !ok {
					return false
				}
			}
			return true
		}},
		{"customer 15 is SPEC.md's Franz Kafka", func() bool {
			return got[15] == domain.Customer{ID: 15, FirstName: "Franz", LastName: "Kafka",
				Email: "frans@thedarkside.net", Address: "oppression street, prague, cze", Level: "gold"}
		}},
		{"every level of a level topic is used", func() bool {
			levels := map[string]bool{}
			for _, c := range got {
				levels[c.Level] = true
			}
			for level := range platform.LevelTopics {
				if !levels[level] {
					return false
				}
			}
			return true
		}},
		{"read back equals what was produced", func() bool {
			for _, c := range customers {
				if got[c.ID] != c {
					return false
				}
			}
			return true
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !c.check() {
				t.Fatalf("customers read back: %+v", got)
			}
		})
	}
}
