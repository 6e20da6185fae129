package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Config configures a benchmark run.
type Config struct {
	// Kafka is the services' broker and namespace. With Brokers empty the benchmark starts the
	// ecosystem itself (embedded broker, Kafka.Partitions partitions) in a child process.
	Kafka platform.Config
	// URL is the Orders REST base URL of an ecosystem already running on Kafka.Brokers.
	URL string
	// ServicesPID, with URL, is the services' process whose CPU and memory are reported.
	ServicesPID int
	// Self is the executable that serves the child roles (RoleEnv); default os.Executable().
	Self string
	// StartTimeout bounds the start of a services process.
	StartTimeout time.Duration
	// Broker is where the started ecosystem's broker runs (ignored with URL): in a process of
	// its own by default, so that the broker's CPU is reported apart from the services'.
	Broker BrokerMode
	// BrokerCompactEvery is how often the broker compacts with --broker process; zero means
	// broker.DefaultCompactEvery.
	BrokerCompactEvery time.Duration

	// Warmup orders precede every latency measurement and are not counted.
	Warmup int
	// LatencyOrders are measured one at a time with the tuned configuration.
	LatencyOrders int
	// FloorRecords are measured one at a time through the broker alone.
	FloorRecords int
	// NaiveOrders are measured one at a time with goka's default flush; 0 skips the baseline.
	NaiveOrders int

	// Rates are the target orders/s of the sweep, in increasing order; empty skips it.
	Rates []float64
	// StepDuration is how long each rate starts orders.
	StepDuration time.Duration
	// P99Limit is the latency a passing step's p99 stays within.
	P99Limit time.Duration
	// MaxInFlight bounds concurrent orders (and so connections) of the load generator.
	MaxInFlight int

	// ReadDuration is each read test's length; 0 skips the read tests.
	ReadDuration time.Duration
	// ReadClients are the concurrent readers.
	ReadClients int
	// ReadKeys is how many validated order ids the reads pick from.
	ReadKeys int
	// ExtraInstances are the Orders instances added for the second read test; 0 skips it.
	ExtraInstances int

	// ProfileDir, when set, receives CPU profiles of the services and of the load generator
	// during a repeated throughput step and during the one-instance read test.
	ProfileDir string
	// Logs receives progress lines and the services' own logs.
	Logs io.Writer
}

// DefaultConfig is `make bench`: one to three minutes on a 2-core machine, depending on how
// far the sweep gets.
func DefaultConfig() Config {
	k := platform.DefaultConfig()
	k.Brokers = nil
	k.ClientID = "ordersys-bench"
	return Config{
		Kafka:         k,
		Broker:        BrokerProcess,
		StartTimeout:  3 * time.Minute,
		Warmup:        200,
		LatencyOrders: 2000,
		FloorRecords:  2000,
		NaiveOrders:   30,
		// Low rates first: the sweep stops at the first failing step, and the inventory
		// service's cost per order grows with the orders it has seen (docs/benchmarks.md).
		Rates:          []float64{100, 200, 300, 400, 500, 750, 1000, 1250, 1500, 2000, 3000, 4000, 5000, 6000},
		StepDuration:   8 * time.Second,
		P99Limit:       100 * time.Millisecond,
		MaxInFlight:    2048,
		ReadDuration:   5 * time.Second,
		ReadClients:    32,
		ReadKeys:       20000,
		ExtraInstances: 2,
		Logs:           os.Stderr,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.URL != "" && len(c.Kafka.Brokers) == 0:
		return errors.New("config: --url needs --brokers: the floor, the stock and the extra instances use the services' broker")
	case c.URL == "" && len(c.Kafka.Brokers) > 0:
		return errors.New("config: --brokers needs --url: the benchmark starts its own broker unless it measures a running ecosystem")
	case c.URL == "" && c.Broker != BrokerProcess && c.Broker != BrokerInside && c.Broker != BrokerApache:
		return fmt.Errorf("config: broker mode %q: want %s, %s or %s", c.Broker, BrokerProcess, BrokerInside, BrokerApache)
	case c.ServicesPID != 0 && c.URL == "":
		return errors.New("config: --services-pid is for a running ecosystem (--url)")
	case c.LatencyOrders < 1 || c.FloorRecords < 1:
		return errors.New("config: need at least one latency order and one floor record")
	case c.Warmup < 0 || c.NaiveOrders < 0 || c.ReadClients < 0 || c.ExtraInstances < 0:
		return errors.New("config: counts must not be negative")
	case len(c.Rates) > 0 && (c.StepDuration <= 0 || c.MaxInFlight < 1 || c.P99Limit <= 0):
		return errors.New("config: a sweep needs a positive step duration, p99 limit and in-flight bound")
	case c.ReadDuration > 0 && (c.ReadClients < 1 || c.ReadKeys < 1):
		return errors.New("config: reads need at least one client and one key")
	case c.Kafka.Partitions < 1:
		return fmt.Errorf("config: partitions %d < 1", c.Kafka.Partitions)
	}
	if err := c.Kafka.Security.Check(); err != nil {
		return err
	}
	if len(c.Kafka.Brokers) == 0 && c.Kafka.Security.Configured() {
		return errors.New("config: TLS and SASL settings are for a running ecosystem's secured Kafka (--brokers); the broker the benchmark starts speaks plaintext")
	}
	for i, r := range c.Rates {
		if !(r > 0) || (i > 0 && r <= c.Rates[i-1]) {
			return fmt.Errorf("config: rates %v must be positive and increasing", c.Rates)
		}
	}
	return nil
}
