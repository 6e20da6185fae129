package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/broker"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Records, topics and committed offsets survive a restart on the same address and data dir.
func TestDataSurvivesRestartOnAFixedPort(t *testing.T) {
	addr, dir := kafkatest.FreeAddr(t), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := broker.Start(broker.Options{Addr: addr, DataDir: dir, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if b.Addr() != addr {
		t.Fatalf("listening on %s, asked for %s", b.Addr(), addr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if fs := cl.PollFetches(ctx); len(fs.Records()) != 1 {
		t.Fatalf("read %d records", len(fs.Records()))
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Close()

	b, err = broker.Start(broker.Options{Addr: addr, DataDir: dir})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer b.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("second")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The group resumes after "first": only "second" is new to it.
	fs := cl.PollFetches(ctx)
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "second" {
		t.Fatalf("after restart the group read %d records: %v", len(recs), recs)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 2 {
		t.Fatalf("topic holds %d records after restart, want 2", total)
	}
}

// A table topic keeps its latest value per key however old: kfake applies retention.ms (7 days
// by default) to compacted topics too, which Kafka does not, so a stock row or a processor's
// state written a week ago vanished from the embedded broker. Streams still expire.
func TestTablesKeepOldRecordsStreamsExpire(t *testing.T) {
	b, err := broker.Start(broker.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	names := platform.Names{}
	if _, err := platform.Provision(ctx, kadm.NewClient(cl), names, 1, 1); err != nil {
		t.Fatal(err)
	}
	table, stream := string(platform.TopicWarehouseInventory), string(platform.TopicOrders)
	old := time.Now().Add(-8 * 24 * time.Hour)
	for _, topic := range []string{table, stream} {
		// One call each, so that each record is a batch of its own: retention drops batches.
		for _, r := range []*kgo.Record{{Key: []byte("k"), Value: []byte("old"), Timestamp: old}, {Key: []byte("other"), Value: []byte("new")}} {
			r.Topic = topic
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Cluster().Compact()

	offsets, err := kadm.NewClient(cl).ListStartOffsets(ctx, table, stream)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offsets.Lookup(table, 0); o.Offset != 0 {
		t.Errorf("%s starts at offset %d after compaction: its week-old value was deleted", table, o.Offset)
	}
	if o, _ := offsets.Lookup(stream, 0); o.Offset != 1 {
		t.Errorf("%s starts at offset %d, want 1: its week-old record is past the 7-day retention", stream, o.Offset)
	}
}

// The request counter sees every request by API name and the bytes produced by topic, and
// changes nothing: the records still arrive.
func TestCountRequestsObservesWithoutHandling(t *testing.T) {
	b, err := broker.Start(broker.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	counts := b.CountRequests()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < 3 {
		got += cl.PollFetches(ctx).NumRecords()
		if ctx.Err() != nil {
			t.Fatalf("read %d of 3 records", got)
		}
	}
	c := counts()
	if c.Requests["Produce"] != 3 || c.Requests["Fetch"] == 0 || c.Requests["Metadata"] == 0 {
		t.Fatalf("requests %v: want 3 Produce, some Fetch and Metadata", c.Requests)
	}
	// Three one-record batches: at least the 61-byte batch header and the value each. The
	// client names the topic by its id (Produce v13).
	details, err := kadm.NewClient(cl).ListTopics(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.ProducedBytes["t"] + c.ProducedBytes["id:"+details["t"].ID.String()]; n < 3*62 {
		t.Fatalf("produced bytes %v: want at least three batches' worth to t", c.ProducedBytes)
	}
}
