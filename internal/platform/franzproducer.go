package platform

import (
	"context"
	"fmt"
	"hash"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer clients goka's processors, views and emitters can write with.
const (
	// ProducerFranz writes with a franz-go client (the default). On a real cluster under
	// broker restarts, sarama's idempotent producer answered in-flight records with "out of
	// order sequence number" and "message out of sequence added to a batch" storms, each
	// failing and restarting every processor of a service, and twice in eight runs of the
	// cluster scenario a record of such a storm was never followed up (an order undecided,
	// eleven emails not sent; docs/reliability.md). franz-go's idempotent producer handles a
	// sequence gap itself (KIP-360 epoch bump), keeps each partition's records in order
	// across retries and reports a failure only once a record cannot be written.
	ProducerFranz = "franz-go"
	// ProducerSarama is goka's own producer over sarama (SaramaConfig): the switch back.
	ProducerSarama = "sarama"
)

// producerFlushTimeout bounds how long Close waits for buffered records, as goka's own
// producer does.
const producerFlushTimeout = 60 * time.Second

// producerDeliveryTimeout is how long a record may take to be written before its promise
// fails: the retries outlast a leader election, as SaramaConfig's do.
const producerDeliveryTimeout = 30 * time.Second

// franzProducer is a goka.Producer writing through a franz-go client. Each promise is finished
// from the record's produce callback with the partition and offset it got, which goka's table
// writes need (they store the offset of their changelog record).
type franzProducer struct {
	client *kgo.Client
}

// newFranzProducer builds a producer placing keys with hasher exactly as sarama's hash
// partitioner does, so records land where goka's own producer would put them.
func newFranzProducer(cfg Config, hasher func() hash.Hash32) (goka.Producer, error) {
	// The project's client settings (acks, no linger, metadata age), with goka's placement in
	// place of ClientOptions' partitioner: later options win.
	cl, err := kgo.NewClient(ClientOptions(cfg,
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(producerDeliveryTimeout),
		kgo.RecordPartitioner(hashPartitioner{hasher: hasher}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("create franz-go producer %s: %w", cfg.ClientID, err)
	}
	return &franzProducer{client: cl}, nil
}

func (p *franzProducer) Emit(topic, key string, value []byte) *goka.Promise {
	return p.EmitWithHeaders(topic, key, value, nil)
}

func (p *franzProducer) EmitWithHeaders(topic, key string, value []byte, headers goka.Headers) *goka.Promise {
	promise, finish := goka.NewPromiseWithFinisher()
	rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	for k, v := range headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: v})
	}
	p.client.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
		msg := &sarama.ProducerMessage{
			Topic:     r.Topic,
			Key:       sarama.ByteEncoder(r.Key),
			Value:     sarama.ByteEncoder(r.Value),
			Partition: r.Partition,
			Offset:    r.Offset,
			Timestamp: r.Timestamp,
		}
		if err != nil {
			finish(msg, fmt.Errorf("produce to %s: %w", topic, err))
			return
		}
		finish(msg, nil)
	})
	return promise
}

// Close writes what is buffered, for at most producerFlushTimeout, then closes the client:
// records still unwritten then fail their promises, which is how their emitters learn of it.
// Like goka's own producer it reports no error itself, so that a shutdown while the broker is
// away still ends cleanly.
func (p *franzProducer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), producerFlushTimeout)
	defer cancel()
	if err := p.client.Flush(ctx); err != nil {
		slog.Warn("producer closed with records unwritten; their promises fail", slog.Any("error", err))
	}
	p.client.Close()
	return nil
}

// hashPartitioner is sarama's hash partitioner over goka's hasher: the key's hash, as a signed
// 32-bit number, modulo the partition count, made positive. With platform.Hasher this is
// Kafka's murmur2 placement, the one Java clients use.
type hashPartitioner struct {
	hasher func() hash.Hash32
}

func (hp hashPartitioner) ForTopic(string) kgo.TopicPartitioner {
	return &hashTopicPartitioner{h: hp.hasher()}
}

type hashTopicPartitioner struct{ h hash.Hash32 }

// RequiresConsistency: a key's partition never depends on which partitions are writable.
func (*hashTopicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

// Partition is called by one goroutine per topic at a time (franz-go's partitioner contract),
// so the hasher can be reused.
func (p *hashTopicPartitioner) Partition(r *kgo.Record, n int) int {
	p.h.Reset()
	_, _ = p.h.Write(r.Key)
	part := int32(p.h.Sum32()) % int32(n)
	if part < 0 {
		part = -part
	}
	return int(part)
}
