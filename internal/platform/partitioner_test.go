package platform_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Kafka's own vectors (UtilsTest.testMurmur2 of the Java client): signed murmur2 values.
func TestPartitionForMatchesJavaMurmur2Vectors(t *testing.T) {
	cases := []struct {
		key  string
		hash int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			h := platform.Hasher()()
			_, _ = h.Write([]byte(c.key))
			wantPositive := uint32(c.hash) & 0x7fffffff
			if got := h.Sum32(); got != wantPositive {
				t.Fatalf("hasher Sum32 = %d, want toPositive(%d) = %d", got, c.hash, wantPositive)
			}
			for _, n := range []int32{1, 3, 6, 10, 32} {
				if got, want := platform.PartitionFor(c.key, n), int32(wantPositive%uint32(n)); got != want {
					t.Errorf("PartitionFor(%q, %d) = %d, want %d", c.key, n, got, want)
				}
			}
		})
	}
}

// goka computes abs(int32(Sum32)) % n; sarama int32(Sum32) % n. Both must equal PartitionFor,
// which needs Sum32 to stay below 2^31 for every key.
func TestHasherNeverNegativeAndAgreesWithGokaArithmetic(t *testing.T) {
	for i := 0; i < 100000; i++ {
		key := fmt.Sprintf("key-%d", i)
		h := platform.Hasher()()
		_, _ = h.Write([]byte(key))
		hash := int32(h.Sum32())
		if hash < 0 {
			t.Fatalf("Sum32 of %q is negative as int32: %d", key, hash)
		}
		if got, want := hash%12, platform.PartitionFor(key, 12); got != want {
			t.Fatalf("goka arithmetic %d != PartitionFor %d for %q", got, want, key)
		}
	}
}

func TestPartitionForMatchesFranzGoPartitioner(t *testing.T) {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("order-%d", i)
		got := p.Partition(&kgo.Record{Key: []byte(key)}, 7)
		if want := platform.PartitionFor(key, 7); int32(got) != want {
			t.Fatalf("franz-go puts %q on %d, PartitionFor says %d", key, got, want)
		}
	}
}

// The same 1000 keys written by a goka emitter and by a franz-go producer land, on a real
// broker, on the partition PartitionFor names.
func TestGokaEmitterFranzGoAndPartitionForAgreeOnBroker(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{Partitions: 8})
	topic := env.Names.Stream(platform.TopicPayments)

	em, err := env.Goka(t).NewEmitter(topic, new(codec.String))
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		if _, err := em.Emit(fmt.Sprintf("key-%d", i), "goka"); err != nil {
			t.Fatal(err)
		}
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: string(topic), Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte("franz")})
	}
	if err := env.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	got := env.Consume(t, string(topic), 30*time.Second, kafkatest.CountOf(2*n))
	byWriter := map[string]int{}
	for _, r := range got {
		want := platform.PartitionFor(string(r.Key), 8)
		if r.Partition != want {
			t.Errorf("%s wrote %q to partition %d, PartitionFor says %d", r.Value, r.Key, r.Partition, want)
		}
		byWriter[string(r.Value)]++
	}
	if byWriter["goka"] != n || byWriter["franz"] != n {
		t.Fatalf("records per writer = %v, want %d each", byWriter, n)
	}
}
