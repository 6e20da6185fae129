package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ordersys/ecosystem/internal/apachekafka"
	"github.com/ordersys/ecosystem/internal/ecosystem"
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
			[]string{"--data-dir", filepath.Join(dir, "broker"), "--partitions", fmt.Sprint(r.cfg.Kafka.Partitions)},
			r.cfg.Logs, r.cfg.StartTimeout)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		return &ownBroker{
			bootstrap: proc.ready.Brokers,
			pid:       proc.ready.PID,
			describe:  fmt.Sprintf("embedded (kfake) in a process of its own (%d) at %s", proc.ready.PID, strings.Join(proc.ready.Brokers, ",")),
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

// serveBroker is the broker role: the embedded broker alone, as `ecosystem --broker-only`.
func serveBroker(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(roleBroker, flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "directory for the broker's data")
	partitions := fs.Int("partitions", platform.DefaultConfig().Partitions, "partitions of every topic")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	if _, err := platform.NewLogger(os.Stderr, "text", *logLevel); err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	cfg := ecosystem.DefaultConfig()
	cfg.DataDir = *dataDir
	cfg.BrokerAddr = "127.0.0.1:0"
	cfg.BrokerOnly = true
	cfg.Seed = false
	cfg.Kafka.Partitions = *partitions
	cfg.Kafka.LogLevel = *logLevel
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	eco, err := ecosystem.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	err = eco.Run(ctx, func(i ecosystem.Info) {
		writeReady(stdout, readyLine{Brokers: i.Brokers, PID: os.Getpid()})
	})
	if err != nil {
		return fmt.Errorf("serve broker: %w", err)
	}
	return nil
}
