package platform_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Both producers put every key where Kafka's murmur2 placement (platform.PartitionFor, the
// Java default) says, finish each promise with the partition and offset the record got (goka's
// table writes store that offset), and carry headers.
func TestProducersPlaceKeysAndReportOffsets(t *testing.T) {
	keys := []string{"", "a", "order-1", "Ünïcödé-ключ-键", strings.Repeat("x", 200), "\x00\x01", "cluster-2196"}
	for i := range 60 {
		keys = append(keys, fmt.Sprintf("k-%d", i))
	}
	for _, producer := range []string{platform.ProducerFranz, platform.ProducerSarama} {
		t.Run(producer, func(t *testing.T) {
			env := kafkatest.New(t, kafkatest.Options{Partitions: 6})
			topic := env.Names.Stream(platform.TopicOrders)
			g := env.Goka(t)
			g.Producer = producer
			em, err := g.NewEmitter(topic, new(codec.Bytes))
			if err != nil {
				t.Fatal(err)
			}
			defer em.Finish()
			type sent struct {
				partition int32
				offset    int64
			}
			got := make(chan error, len(keys))
			results := make([]sent, len(keys))
			for i, k := range keys {
				promise, err := em.EmitWithHeaders(k, []byte("v-"+k), goka.Headers{"h": []byte(k)})
				if err != nil {
					t.Fatal(err)
				}
				promise.ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
					if err == nil {
						results[i] = sent{msg.Partition, msg.Offset}
					}
					got <- err
				})
			}
			for range keys {
				select {
				case err := <-got:
					if err != nil {
						t.Fatalf("emit: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("promises not finished")
				}
			}
			records := env.ConsumeToEnd(t, string(topic), 30*time.Second)
			byKey := map[string]*kgo.Record{}
			for _, r := range records {
				byKey[string(r.Key)] = r
			}
			for i, k := range keys {
				r := byKey[k]
				switch {
				case r == nil:
					t.Fatalf("key %q not on the topic", k)
				case r.Partition != platform.PartitionFor(k, 6):
					t.Errorf("key %q on partition %d, murmur2 says %d", k, r.Partition, platform.PartitionFor(k, 6))
				case results[i].partition != r.Partition || results[i].offset != r.Offset:
					t.Errorf("key %q: promise said %d/%d, the record is at %d/%d", k, results[i].partition, results[i].offset, r.Partition, r.Offset)
				case kafkatest.Header(r, "h") != k || string(r.Value) != "v-"+k:
					t.Errorf("key %q: value %q, header %q", k, r.Value, kafkatest.Header(r, "h"))
				}
			}
		})
	}
}

// A record the broker cannot take fails its promise with the reason, so the processor that
// emitted it stops instead of committing past it.
func TestFranzProducerReportsARefusedRecord(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	g := env.Goka(t)
	em, err := g.NewEmitter(env.Names.Stream(platform.TopicOrders), new(codec.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Finish()
	promise, err := em.Emit("big", make([]byte, 2<<20))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	promise.Then(func(err error) { done <- err })
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a 2 MiB record was reported written")
		}
	case <-time.After(45 * time.Second):
		t.Fatal("promise of a refused record never finished")
	}
}
