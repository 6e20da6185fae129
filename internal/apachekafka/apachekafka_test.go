package apachekafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/apachekafka"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// A node SIGKILLed and started again on its ports and log directory keeps what it
// acknowledged, and reports the version it was asked to run.
func TestNodeSurvivesKillAndRestart(t *testing.T) {
	if !kafkatest.WantsApache() {
		t.Skip("starts Apache Kafka: set KAFKA_BACKEND=apache (make test-kafka does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl, err := apachekafka.Start(ctx, apachekafka.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	node := cl.Node(1)
	if got := node.RunningVersion(); got != cl.Version() {
		t.Fatalf("broker reports version %q, asked for %q", got, cl.Version())
	}

	client, err := kgo.NewClient(kgo.SeedBrokers(cl.Bootstrap()...), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 1, 1, nil, "survivor"); err != nil {
		t.Fatal(err)
	}
	if err := client.ProduceSync(ctx, &kgo.Record{Topic: "survivor", Value: []byte("acknowledged")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	node.Kill()
	if node.Running() {
		t.Fatal("node still running after Kill")
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}

	reader, err := kgo.NewClient(kgo.SeedBrokers(cl.Bootstrap()...), kgo.ConsumeTopics("survivor"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	fetches := reader.PollRecords(ctx, 1)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	if recs := fetches.Records(); len(recs) != 1 || string(recs[0].Value) != "acknowledged" {
		t.Fatalf("after restart read %v, want the acknowledged record", recs)
	}

	start := time.Now()
	node.Stop()
	if node.Running() {
		t.Fatal("node still running after Stop")
	}
	t.Logf("SIGTERM shutdown took %v", time.Since(start).Round(time.Millisecond))
}
