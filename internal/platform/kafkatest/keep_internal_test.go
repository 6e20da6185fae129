package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// A record stamped years back stays on a test namespace's stream through the embedded broker's
// compaction and retention pass, so a test can replay from offset 0 (before keepStreams, the
// pass deleted it; CI met it when the broker compacted every minute).
func TestStreamsKeepOldRecordsThroughRetention(t *testing.T) {
	env := New(t, Options{Partitions: 1})
	if env.Backend != KFake {
		t.Skip("the retention pass is forced on the embedded broker only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := env.Names.Topic(string(platform.TopicOrders))
	old := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("old"), Timestamp: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	if err := env.Client.ProduceSync(ctx, old).FirstErr(); err != nil {
		t.Fatal(err)
	}
	kfakeBroker.Cluster().Compact()
	offsets, err := env.Admin.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offsets.Lookup(topic, 0); o.Offset != 0 {
		t.Fatalf("%s starts at offset %d after the retention pass: the old record was deleted", topic, o.Offset)
	}
}
