package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ordersys/ecosystem/internal/apachekafka"
	"github.com/ordersys/ecosystem/internal/broker"
	"github.com/ordersys/ecosystem/internal/platform"
)

// BrokerMode says where the broker of an ecosystem started by the benchmark runs.
type BrokerMode string

// The broker modes.
const (
	// BrokerProcess runs the embedded broker (kfake) in a process of its own (the broker role:
	// `ecosystem --broker-only`), so the services' CPU is measured without the broker's and the
	// broker's beside it. The default.
	BrokerProcess BrokerMode = "process"
	// BrokerInside runs the embedded broker inside the services process, as `cmd/ecosystem`
	// does on a laptop: the all-in-one figure.
	BrokerInside BrokerMode = "inside"
	// BrokerApache runs Apache Kafka, one node started from Maven (internal/apachekafka).
	BrokerApache BrokerMode = "apache"
)

// ParseBrokerMode reads a --broker value.
func ParseBrokerMode(s string) (BrokerMode, error) {
	switch m := BrokerMode(s); m {
	case BrokerProcess, BrokerInside, BrokerApache:
		return m, nil
	}
	return "", fmt.Errorf("broker mode %q: want %s, %s or %s", s, BrokerProcess, BrokerInside, BrokerApache)
}

// ownBroker is a broker the benchmark started in a process of its own. Every services start on
// it gets a topic prefix of its own, as a fresh embedded broker would give it fresh topics.
type ownBroker struct {
	bootstrap []string
	pid       int
	describe  string
	stop      func()
	// requests is the URL of the broker's request counts (the broker role only).
	requests string
}

// startBroker starts the broker of cfg.Broker in dir; nil when it runs inside the services.
func (r *runner) startBroker(ctx context.Context, dir string) (*ownBroker, error) {
	switch r.cfg.Broker {
	case BrokerApache:
		logf(r.cfg.Logs, "starting Apache Kafka")
		kc, err := apachekafka.Start(ctx, apachekafka.Options{Dir: filepath.Join(dir, "kafka"), Optimized: true})
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		n := kc.Node(1)
		return &ownBroker{
			bootstrap: kc.Bootstrap(),
			pid:       n.PID(),
			describe:  fmt.Sprintf("Apache Kafka %s, one node (JVM process %d, heap 512 MiB, G1, full JIT) at %s", n.RunningVersion(), n.PID(), n.Addr()),
			stop:      kc.Stop,
		}, nil
	case BrokerProcess:
		logf(r.cfg.Logs, "starting the embedded broker in a process of its own")
		proc, err := startServices(ctx, r.cfg.Self, roleBroker,
			[]string{"--data-dir", filepath.Join(dir, "broker"), "--partitions", fmt.Sprint(r.cfg.Kafka.Partitions),
				"--compact-every", r.cfg.BrokerCompactEvery.String()},
			r.cfg.Logs, r.cfg.StartTimeout)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		return &ownBroker{
			bootstrap: proc.ready.Brokers,
			pid:       proc.ready.PID,
			requests:  proc.ready.Requests,
			describe:  fmt.Sprintf("embedded (kfake) in a process of its own (%d) at %s, pprof %s", proc.ready.PID, strings.Join(proc.ready.Brokers, ","), proc.ready.Pprof),
			stop: func() {
				if err := proc.stop(60 * time.Second); err != nil {
					logf(r.cfg.Logs, "%v", err)
				}
			},
		}, nil
	default:
		return nil, nil
	}
}

// serveBroker is the broker role: the embedded broker alone, as `ecosystem --broker-only` runs
// it, counting the requests it is sent and the bytes produced (broker.Counts, served as JSON at
// the ready line's Requests URL). It
// provisions nothing: each services start on it provisions its own prefixed topics.
func serveBroker(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(roleBroker, flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "directory for the broker's data")
	partitions := fs.Int("partitions", platform.DefaultConfig().Partitions, "partitions of every topic")
	logLevel := fs.String("log-level", "warn", "log level")
	compactEvery := fs.Duration("compact-every", 0, "how often the broker compacts (0: broker.DefaultCompactEvery)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	logger, err := platform.NewLogger(os.Stderr, "text", *logLevel)
	if err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	b, err := broker.Start(broker.Options{DataDir: *dataDir, Partitions: *partitions, Logger: logger, CompactEvery: *compactEvery})
	if err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	defer b.Close()
	counts := b.CountRequests()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("serve broker: listen for request counts: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(counts())
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	pprofAddr, stopPprof, err := servePprof()
	if err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	defer stopPprof()
	writeReady(stdout, readyLine{Brokers: b.Addrs(), PID: os.Getpid(), Requests: "http://" + ln.Addr().String(), Pprof: pprofAddr})
	<-ctx.Done()
	return nil
}

// brokerCounts reads the broker role's counts; nil when the broker does not count.
func (r *runner) brokerCounts(ctx context.Context) *broker.Counts {
	if r.broker == nil || r.broker.requests == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.broker.requests, nil)
	if err != nil {
		return nil
	}
	resp, err := r.client.http.Do(req)
	if err != nil {
		logf(r.cfg.Logs, "broker counts: %v", err)
		return nil
	}
	defer resp.Body.Close()
	var c broker.Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		logf(r.cfg.Logs, "broker counts: %v", err)
		return nil
	}
	return &c
}
