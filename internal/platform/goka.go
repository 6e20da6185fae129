package platform

import (
	"fmt"
	"hash"
	"path/filepath"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	gometrics "github.com/rcrowley/go-metrics"
)

// Sarama keeps go-metrics meters and histograms of every request it sends, which nothing in
// this project reads (/metrics comes from Prometheus collectors). At 1500 orders/s they cost
// 6.5% of the ecosystem's CPU (docs/benchmarks.md), so they are switched off for every binary;
// this must happen before the first sarama client exists, hence init.
func init() { gometrics.UseNilMetrics = true }

// KafkaVersion is the protocol version sarama speaks. goka's default (2.0) predates what the
// idempotent producer and KIP-345 need; every supported broker and kfake speak 3.x.
var KafkaVersion = sarama.V3_6_0_0

// SaramaConfig returns the sarama configuration every goka processor, view and emitter uses.
// Each call returns a fresh copy, so builders may set client ids and partitioners freely.
func SaramaConfig(clientID string) *sarama.Config {
	cfg := goka.DefaultConfig()
	cfg.ClientID = clientID
	cfg.Version = KafkaVersion

	// New groups start at the beginning: a new service must see every order, not only new ones.
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	// A long-poll fetch returns as soon as one byte is there; MaxWaitTime bounds how long a
	// newly assigned partition waits for the in-flight fetch to come back (KAFKA-NOTES).
	cfg.Consumer.Fetch.Min = 1
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	// Session 6 s is the broker minimum: a crashed member's partitions move on quickly.
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond

	// Durable writes: acks from all in-sync replicas, no duplicates from producer retries.
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	// Retry for about 25 s: when a broker dies, its partitions have no leader until the
	// controller fences it (broker.session.timeout.ms, 9 s by default) and elects another.
	// Ten retries 50 ms apart gave up after about a second, so every processor of every
	// service failed and restarted on a single broker loss (measured on a 3-broker Kafka,
	// docs/kafka.md). Callers with a deadline of their own wait on the promise, not for this.
	cfg.Producer.Retry.Max = 30
	cfg.Producer.Retry.BackoffFunc = producerBackoff
	// Send at once: goka's 100 ms flush interval costs 100 ms on every hop (KAFKA-NOTES).
	cfg.Producer.Flush.Frequency = 0
	cfg.Producer.Flush.Bytes = 0
	cfg.Producer.Flush.Messages = 0
	// Small records on a local network: compression costs more CPU than it saves.
	cfg.Producer.Compression = sarama.CompressionNone

	cfg.Metadata.RefreshFrequency = 1 * time.Minute
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

// producerBackoff doubles from 50 ms up to 1 s per retry: quick when a leader moves
// gracefully, patient while a dead broker's partitions wait for a new one.
func producerBackoff(retries, _ int) time.Duration {
	return min(50*time.Millisecond<<min(retries, 5), time.Second)
}

// withClientID copies cfg and sets its client id; goka's own *WithConfig builders mutate the
// shared config, which races when several components start at once.
func withClientID(base *sarama.Config, clientID string) *sarama.Config {
	c := *base
	c.ClientID = clientID
	return &c
}

// Goka builds goka processors, views and emitters with the project's configuration.
type Goka struct {
	Brokers     []string
	Replication int
	StateDir    string
	ClientID    string
	// Sarama overrides the sarama configuration (tests and benchmarks); nil means SaramaConfig.
	Sarama *sarama.Config
	// ConsumerGroupBuilder overrides how processors join their group (the orders service wraps
	// it to learn generations); nil means sarama's consumer group.
	ConsumerGroupBuilder goka.ConsumerGroupBuilder
	// Producer is the client processors, views and emitters write with (Config.Producer);
	// empty means ProducerFranz.
	Producer string
	// Security is applied to every sarama and franz-go client goka builds.
	Security Security
}

// NewGoka returns the goka builders for cfg, with cfg.Sarama as the sarama override.
func NewGoka(cfg Config) *Goka {
	return &Goka{Brokers: cfg.Brokers, Replication: cfg.Replication, StateDir: cfg.StateDir, ClientID: cfg.ClientID, Sarama: cfg.Sarama, Producer: cfg.Producer, Security: cfg.Security}
}

func (g *Goka) sarama() *sarama.Config {
	cfg := SaramaConfig(g.ClientID)
	if g.Sarama != nil {
		cfg = withClientID(g.Sarama, g.Sarama.ClientID)
	}
	g.Security.applySarama(cfg)
	return cfg
}

func (g *Goka) topicManagerBuilder() goka.TopicManagerBuilder {
	base := g.sarama()
	return func(brokers []string) (goka.TopicManager, error) {
		tm := goka.NewTopicManagerConfig()
		tm.Table.Replication = g.Replication
		tm.Stream.Replication = g.Replication
		tm.Stream.Retention = StreamRetention
		return goka.NewTopicManager(brokers, withClientID(base, g.ClientID+"-topics"), tm)
	}
}

func (g *Goka) producerBuilder() goka.ProducerBuilder {
	if g.Producer != ProducerSarama {
		return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
			return newFranzProducer(Config{Brokers: brokers, ClientID: clientID, Security: g.Security}, hasher)
		}
	}
	base := g.sarama()
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		c := withClientID(base, clientID)
		c.Producer.Partitioner = sarama.NewCustomHashPartitioner(hasher)
		return goka.NewProducer(brokers, c)
	}
}

func (g *Goka) consumerGroupBuilder() goka.ConsumerGroupBuilder {
	if g.ConsumerGroupBuilder != nil {
		return g.ConsumerGroupBuilder
	}
	return g.SaramaConsumerGroupBuilder()
}

// SaramaConsumerGroupBuilder builds sarama consumer groups with the project's configuration,
// committing each partition only up to its first unfinished message (see inOrderGroup) and
// going from one session to the next without goka's 5 s pause (see continuousGroup); a service
// that wraps its group (to observe sessions) starts from it.
func (g *Goka) SaramaConsumerGroupBuilder() goka.ConsumerGroupBuilder {
	base := g.sarama()
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := sarama.NewConsumerGroup(brokers, group, withClientID(base, clientID))
		if err != nil {
			return nil, err
		}
		return &continuousGroup{ConsumerGroup: &inOrderGroup{ConsumerGroup: cg}}, nil
	}
}

func (g *Goka) consumerBuilder() goka.SaramaConsumerBuilder {
	base := g.sarama()
	return func(brokers []string, clientID string) (sarama.Consumer, error) {
		return sarama.NewConsumer(brokers, withClientID(base, clientID))
	}
}

// ProcessorOptions are the options of every processor of group: murmur2 partitioning, the
// project's sarama config for its consumer group, consumer, producer and topic manager, LevelDB
// state under StateDir/processor/<group>, and slog logging. Options given after these (e.g.
// goka.WithTester in tests) override them.
func (g *Goka) ProcessorOptions(group goka.Group) []goka.ProcessorOption {
	return []goka.ProcessorOption{
		goka.WithHasher(Hasher()),
		goka.WithClientID(fmt.Sprintf("%s-%s", g.ClientID, group)),
		goka.WithTopicManagerBuilder(g.topicManagerBuilder()),
		goka.WithProducerBuilder(g.producerBuilder()),
		goka.WithConsumerGroupBuilder(g.consumerGroupBuilder()),
		goka.WithConsumerSaramaBuilder(g.consumerBuilder()),
		goka.WithStorageBuilder(stateStorage(filepath.Join(g.StateDir, "processor", string(group)))),
		goka.WithLogger(gokaLogger(string(group))),
	}
}

// NewProcessor builds a processor for the graph with ProcessorOptions plus extra.
func (g *Goka) NewProcessor(graph *goka.GroupGraph, extra ...goka.ProcessorOption) (*goka.Processor, error) {
	opts := append(g.ProcessorOptions(graph.Group()), extra...)
	p, err := goka.NewProcessor(g.Brokers, graph, opts...)
	if err != nil {
		return nil, fmt.Errorf("create processor %s: %w", graph.Group(), err)
	}
	return p, nil
}

// ViewOptions are the options of every view: murmur2 partitioning, the project's sarama
// config, LevelDB state under StateDir/view/<name> (name must be unique in the process).
func (g *Goka) ViewOptions(name string) []goka.ViewOption {
	return []goka.ViewOption{
		goka.WithViewHasher(Hasher()),
		goka.WithViewClientID(fmt.Sprintf("%s-view-%s", g.ClientID, name)),
		goka.WithViewTopicManagerBuilder(g.topicManagerBuilder()),
		goka.WithViewConsumerSaramaBuilder(g.consumerBuilder()),
		goka.WithViewStorageBuilder(stateStorage(filepath.Join(g.StateDir, "view", name))),
		goka.WithViewLogger(gokaLogger("view " + name)),
		goka.WithViewAutoReconnect(),
	}
}

// NewView builds a view of table with ViewOptions plus extra.
func (g *Goka) NewView(name string, table goka.Table, codec goka.Codec, extra ...goka.ViewOption) (*goka.View, error) {
	opts := append(g.ViewOptions(name), extra...)
	v, err := goka.NewView(g.Brokers, table, codec, opts...)
	if err != nil {
		return nil, fmt.Errorf("create view %s of %s: %w", name, table, err)
	}
	return v, nil
}

// EmitterOptions are the options of every emitter: murmur2 partitioning and the project's
// producer configuration.
func (g *Goka) EmitterOptions() []goka.EmitterOption {
	return []goka.EmitterOption{
		goka.WithEmitterHasher(Hasher()),
		goka.WithEmitterClientID(g.ClientID + "-emitter"),
		goka.WithEmitterTopicManagerBuilder(g.topicManagerBuilder()),
		goka.WithEmitterProducerBuilder(g.producerBuilder()),
		goka.WithEmitterLogger(gokaLogger("emitter")),
	}
}

// NewEmitter builds an emitter to topic with EmitterOptions plus extra.
func (g *Goka) NewEmitter(topic goka.Stream, codec goka.Codec, extra ...goka.EmitterOption) (*goka.Emitter, error) {
	opts := append(g.EmitterOptions(), extra...)
	e, err := goka.NewEmitter(g.Brokers, topic, codec, opts...)
	if err != nil {
		return nil, fmt.Errorf("create emitter to %s: %w", topic, err)
	}
	return e, nil
}
