package platform

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientOptions are the franz-go options every plain client uses: murmur2 key partitioning
// (the same placement as goka with Hasher and as Java clients), acks from all replicas with
// the idempotent producer (franz-go's default), no linger, for latency, and cfg's TLS and SASL.
func ClientOptions(cfg Config, extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	opts = append(opts, cfg.Security.franzOptions()...)
	return append(opts, extra...)
}
