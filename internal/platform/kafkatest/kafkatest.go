// Package kafkatest gives a test a Kafka broker and a namespace of its own on it.
//
// The broker is, in order of preference: the cluster in KAFKA_BROKERS when set (`make
// test-kafka` starts Apache Kafka and sets it for every package); Apache Kafka started from
// Maven for the tests of one package when KAFKA_BACKEND=apache (internal/apachekafka); a
// Testcontainers Kafka (confluent-local image) when KAFKA_BACKEND=testcontainers, or when the
// test prefers Docker (end-to-end tests) and a Docker daemon is reachable; otherwise an
// in-process kfake broker shared by the tests of one package (KAFKA_BACKEND=kfake forces it).
// Every Env gets a unique topic and group prefix, so tests never see each other's records.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Backend names where the broker of a test comes from.
type Backend string

// The backends, as KAFKA_BACKEND spells them.
const (
	External       Backend = "external"
	Testcontainers Backend = "testcontainers"
	KFake          Backend = "kfake"
	Apache         Backend = "apache"
)

// BackendEnv names the environment variable that chooses the backend.
const BackendEnv = "KAFKA_BACKEND"

// WantsApache reports whether the tests are asked to run on Apache Kafka (KAFKA_BACKEND=apache),
// for suites that start brokers of their own (test/reliability).
func WantsApache() bool { return Backend(os.Getenv(BackendEnv)) == Apache }

// ConfluentLocalImage is the Kafka image used with Testcontainers.
const ConfluentLocalImage = "confluentinc/confluent-local:7.6.1"

// Options tunes an Env.
type Options struct {
	// Partitions of every topic; default 4.
	Partitions int
	// PreferDocker asks for a Testcontainers Kafka when Docker is reachable (end-to-end tests).
	PreferDocker bool
	// NoProvision skips creating the ecosystem's topics.
	NoProvision bool
}

// Env is one test's view of the broker: its bootstrap addresses, its own names, a config for
// services, an admin and a plain client.
type Env struct {
	Backend Backend
	Brokers []string
	Names   platform.Names
	Config  platform.Config
	Client  *kgo.Client
	Admin   *kadm.Client
}

// New returns an Env with the ecosystem's topics provisioned under a unique prefix.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Partitions == 0 {
		opts.Partitions = 4
	}
	backend, brokers := brokersFor(t, opts.PreferDocker)
	cfg := platform.DefaultConfig()
	cfg.Brokers = brokers
	cfg.Partitions = opts.Partitions
	cfg.Replication = 1
	cfg.StateDir = t.TempDir()
	cfg.TopicPrefix = uniquePrefix(t)
	cfg.ClientID = "test"
	if backend == External {
		cfg.Security = securityFromEnv()
	}
	env := &Env{Backend: backend, Brokers: brokers, Names: cfg.Names(), Config: cfg}

	cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	t.Cleanup(cl.Close)
	env.Client = cl
	env.Admin = kadm.NewClient(cl)
	if !opts.NoProvision {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := platform.Provision(ctx, env.Admin, env.Names, cfg.Partitions, 1); err != nil {
			t.Fatalf("kafkatest: provision: %v", err)
		}
		keepStreams(t, ctx, env)
	}
	return env
}

// keepStreams turns time retention off on the namespace's streams. Tests write records stamped
// with fixed dates years back (event times of the worked cases) and replay topics from offset
// 0; the embedded broker applies the week of retention provisioning gives streams at each
// compaction pass, batch by batch (Kafka only ever deletes closed segments), and deleted a test's orders between
// its runs (fraud's TestRestartOnBroker found no record to replay).
func keepStreams(t testing.TB, ctx context.Context, env *Env) {
	t.Helper()
	var streams []string
	for _, spec := range env.Names.AllTopics() {
		if !spec.Compact {
			streams = append(streams, spec.Name)
		}
	}
	resp, err := env.Admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("-1")}}, streams...)
	if err == nil {
		for _, r := range resp {
			err = errors.Join(err, r.Err)
		}
	}
	if err != nil {
		t.Fatalf("kafkatest: keep the streams of %s: %v", env.Names.Prefix, err)
	}
}

// Goka returns goka builders for this Env, with state under a fresh temporary directory.
func (e *Env) Goka(t testing.TB) *platform.Goka {
	g := platform.NewGoka(e.Config)
	g.StateDir = t.TempDir()
	return g
}

// Produce writes one record synchronously.
func (e *Env) Produce(t testing.TB, topic, key string, value []byte, headers ...kgo.RecordHeader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Headers: headers}
	if err := e.Client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("kafkatest: produce to %s: %v", topic, err)
	}
}

// Consume reads topic from the beginning until stop returns true for the records read so
// far, or fails the test after timeout.
func (e *Env) Consume(t testing.TB, topic string, timeout time.Duration, stop func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(platform.ClientOptions(e.Config,
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatalf("kafkatest: consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []*kgo.Record
	for !stop(got) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kafkatest: consume %s: timed out after %v with %d records", topic, timeout, len(got))
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("kafkatest: consume %s/%d: %v", topic, p, err)
		})
		got = append(got, fetches.Records()...)
	}
	return got
}

// CountOf returns a stop condition for Consume: at least n records.
func CountOf(n int) func([]*kgo.Record) bool {
	return func(r []*kgo.Record) bool { return len(r) >= n }
}

// RunProcessor runs p until the test ends, and waits until it has recovered.
func RunProcessor(t testing.TB, p *goka.Processor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor %s: %v", p.Graph().Group(), err)
		}
	})
	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	defer waitCancel()
	if err := p.WaitForReadyContext(waitCtx); err != nil {
		t.Fatalf("kafkatest: processor %s not ready: %v", p.Graph().Group(), err)
	}
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ConsumeToEnd reads topic from the beginning up to its end offsets at the time of the call:
// everything written so far, less what compaction may already have removed (so it counts
// offsets reached, not records).
func (e *Env) ConsumeToEnd(t testing.TB, topic string, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ends, err := e.Admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("kafkatest: end offsets of %s: %v", topic, err)
	}
	return e.Consume(t, topic, timeout, func(recs []*kgo.Record) bool {
		reached := map[int32]int64{}
		for _, r := range recs {
			reached[r.Partition] = max(reached[r.Partition], r.Offset+1)
		}
		done := true
		ends.Each(func(end kadm.ListedOffset) {
			if end.Offset > 0 && reached[end.Partition] < end.Offset {
				done = false
			}
		})
		return done
	})
}

// AwaitCaughtUp waits until group has committed, on every partition of topics, the end
// offset the topic had when this was called or later — everything written so far has been
// processed.
func (e *Env) AwaitCaughtUp(t testing.TB, timeout time.Duration, group string, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ends, err := e.Admin.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("kafkatest: end offsets of %v: %v", topics, err)
	}
	Eventually(t, timeout, fmt.Sprintf("group %s caught up on %v", group, topics), func() bool {
		committed, err := e.Admin.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		behind := false
		ends.Each(func(end kadm.ListedOffset) {
			c, ok := committed.Lookup(end.Topic, end.Partition)
			if end.Offset > 0 && (!ok || c.At < end.Offset) {
				behind = true
			}
		})
		return !behind
	})
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func uniquePrefix(t testing.TB) string {
	name := strings.Trim(nonName.ReplaceAllString(t.Name(), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("t-%s-%s.", name, hex.EncodeToString(b[:]))
}

// Header returns the value of a record's header, "" when it has none.
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// securityFromEnv reads the TLS and SASL variables (KAFKA_TLS, KAFKA_SASL_*, ...) the way every
// binary does, so that a suite run against a secured cluster (withkafka --listener sasl-ssl)
// connects as the binaries it starts will.
func securityFromEnv() platform.Security {
	var s platform.Security
	fs := flag.NewFlagSet("kafkatest", flag.ContinueOnError)
	s.RegisterFlags(fs) // defaults come from the environment
	return s
}

// PlaintextEnv clears the TLS and SASL variables for a binary that runs its own embedded broker
// (plaintext) in a suite pointed at a secured cluster.
var PlaintextEnv = platform.Security{}.Environ()
