// Package broker runs the embedded Kafka broker: franz-go's kfake, a Kafka-protocol broker
// inside this process, persisting to a data directory so that topics, records and committed
// offsets survive a restart. It is the default broker of the one-command ecosystem and of
// the tests; real Kafka clients (kcat, Java) connect to it like to any broker.
package broker

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Options configures the embedded broker.
type Options struct {
	// Addr is the listen address, host:port; port 0 picks a free port. The host is also what
	// clients are told to connect to, so it must be reachable by them (default 127.0.0.1).
	Addr string
	// DataDir persists the broker's state; empty keeps everything in memory.
	DataDir string
	// Partitions is the default partition count for topics created without one.
	Partitions int
	// SyncWrites fsyncs every batch: slower, but a machine crash loses nothing acknowledged.
	SyncWrites bool
	// Logger receives the broker's warnings and errors; nil discards them.
	Logger *slog.Logger
	// CompactEvery is how often compaction and retention run; zero means DefaultCompactEvery.
	CompactEvery time.Duration
}

// DefaultCompactEvery is how often the embedded broker compacts: kfake's own hour. The services
// rewrite their table values on every step of every order and kfake keeps every record in
// memory until compaction drops the superseded ones, but kfake compacts inside its request
// loop, so every pass stalls every client: measured at 300 orders/s over 108,000 orders
// (docs/benchmarks.md), passes every minute kept the broker at 297 MiB instead of 445 MiB but
// made p99 6.5 s (max 9.4 s) instead of 374 ms.
const DefaultCompactEvery = time.Hour

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Start starts a single-node broker. With one node every topic has replication 1.
func Start(opts Options) (*Broker, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("start broker: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("start broker: port %q: %w", portText, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	kopts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ClusterID("ordersys-embedded"),
		// Listen where asked; kfake itself would always pick 127.0.0.1.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		// Allow session timeouts below Kafka's 6 s minimum, for fast failover in tests.
		kfake.GroupMinSessionTimeout(time.Second),
		kfake.BrokerConfigs(map[string]string{
			"log.cleaner.backoff.ms": strconv.FormatInt(cmp.Or(opts.CompactEvery, DefaultCompactEvery).Milliseconds(), 10),
			// Nothing expires unless its topic says so (provisioning gives streams a week):
			// kfake applies retention to compacted topics too, so tables created before
			// provisioning said retention.ms=-1 would otherwise lose week-old values.
			"log.retention.ms": "-1",
		}),
	}
	if opts.Partitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(opts.Partitions))
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
	}
	if opts.SyncWrites {
		kopts = append(kopts, kfake.SyncWrites())
	}
	if opts.Logger != nil {
		kopts = append(kopts, kfake.WithLogger(kfakeLogger{opts.Logger}))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start broker on %s: %w", addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("start broker: expected one listener, got %v", addrs)
	}
	return &Broker{cluster: c, addr: addrs[0]}, nil
}

// Addr is the bootstrap address clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Addrs is the bootstrap list, for configuration structs.
func (b *Broker) Addrs() []string { return []string{b.addr} }

// Cluster exposes kfake for tests that need its controls (compaction, fault injection).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker and, with a data directory, saves its state.
func (b *Broker) Close() { b.cluster.Close() }

// kfakeLogger forwards kfake's warnings and errors to slog; its info level logs every request.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	if level > kfake.LogLevelWarn || level == kfake.LogLevelNone {
		return
	}
	text := fmt.Sprintf(msg, args...)
	if level == kfake.LogLevelError {
		k.l.Error(text, slog.String("component", "broker"))
		return
	}
	k.l.Warn(text, slog.String("component", "broker"))
}

// Counts are what CountRequests has seen so far.
type Counts struct {
	// Requests counts requests by API name ("Produce", "Fetch", ...).
	Requests map[string]int64 `json:"requests"`
	// ProducedBytes sums, by topic, the record batches produced to it as they came over the
	// wire: keys, values, headers and the batches' own framing. Produce v13+ names a topic by
	// its id only: such topics are keyed "id:" + the id in standard base64 (as kadm prints a
	// TopicID), for the reader to resolve.
	ProducedBytes map[string]int64 `json:"producedBytes"`
}

// CountRequests makes the broker count every request it is sent, by API name, and the bytes
// produced to each topic, and returns a function reading the counts so far; the benchmark
// divides them by the orders validated. Counting observes only: every request is still
// handled as usual.
func (b *Broker) CountRequests() func() Counts {
	var mu sync.Mutex
	c := Counts{Requests: map[string]int64{}, ProducedBytes: map[string]int64{}}
	b.cluster.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		c.Requests[kmsg.NameForKey(req.Key())]++
		if p, ok := req.(*kmsg.ProduceRequest); ok {
			for _, t := range p.Topics {
				name := t.Topic
				if name == "" {
					name = "id:" + base64.StdEncoding.EncodeToString(t.TopicID[:])
				}
				for _, part := range t.Partitions {
					c.ProducedBytes[name] += int64(len(part.Records))
				}
			}
		}
		return nil, nil, false
	})
	return func() Counts {
		mu.Lock()
		defer mu.Unlock()
		return Counts{Requests: maps.Clone(c.Requests), ProducedBytes: maps.Clone(c.ProducedBytes)}
	}
}
