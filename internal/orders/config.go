package orders

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Config configures an Orders service instance.
type Config struct {
	Kafka platform.Config
	// HTTPAddr is where the REST API, /livez and /readyz listen.
	HTTPAddr string
	// AdvertisedAddr is the host:port other instances use to reach this one; it is published
	// in the membership table. Empty derives it from the listener (127.0.0.1 for a wildcard
	// host), which only suits instances on one machine.
	AdvertisedAddr string
	// Aggregator runs the validations aggregator in this process too.
	Aggregator bool
	// DefaultTimeout is the long-poll timeout when a request gives none.
	DefaultTimeout time.Duration
	// MaxTimeout caps the timeout a request may ask for; larger values are clamped to it.
	MaxTimeout time.Duration
	// MaxWaiters caps concurrent long-polls; beyond it GETs get 503.
	MaxWaiters int
	// MaxBodyBytes caps a POST body.
	MaxBodyBytes int64
	// Instance names this instance in the membership table and logs.
	Instance string
	// AnnounceInterval is how often an instance publishes its ownership again between
	// rebalances, which bounds how long a stale or forged membership entry can misroute.
	AnnounceInterval time.Duration
	// DrainTimeout is how long requests still waiting when shutdown begins may go on waiting
	// (an order may arrive meanwhile) before they are answered 503 with Retry-After, so that
	// clients retry elsewhere instead of seeing the connection dropped.
	DrainTimeout time.Duration
}

// maxDrainTimeout keeps the drain well inside service.ShutdownTimeout, after which the HTTP
// server drops the connections still open.
const maxDrainTimeout = 10 * time.Second

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Kafka:          platform.DefaultConfig(),
		HTTPAddr:       ":8080",
		Aggregator:     true,
		DefaultTimeout: 10 * time.Second,
		MaxTimeout:     60 * time.Second,
		MaxWaiters:     100000,
		MaxBodyBytes:   64 << 10,
		Instance:       fmt.Sprintf("%s-%d", host, os.Getpid()),

		AnnounceInterval: 30 * time.Second,
		DrainTimeout:     5 * time.Second,
	}
}

// RegisterFlags binds the configuration to flags and environment variables.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	platform.StringVar(fs, &c.HTTPAddr, "http-addr", "HTTP_ADDR", c.HTTPAddr, "listen address of the REST API, /livez, /readyz and /metrics")
	platform.StringVar(fs, &c.AdvertisedAddr, "advertised-addr", "ADVERTISED_ADDR", c.AdvertisedAddr,
		"host:port other instances reach this one at (published in the membership table); empty derives it from --http-addr")
	platform.BoolVar(fs, &c.Aggregator, "aggregator", "AGGREGATOR", c.Aggregator, "also run the validations aggregator")
	platform.DurationVar(fs, &c.DefaultTimeout, "default-timeout", "DEFAULT_TIMEOUT", c.DefaultTimeout, "long-poll timeout when a request gives none")
	platform.DurationVar(fs, &c.MaxTimeout, "max-timeout", "MAX_TIMEOUT", c.MaxTimeout, "largest long-poll timeout a request may ask for")
	platform.IntVar(fs, &c.MaxWaiters, "max-waiters", "MAX_WAITERS", c.MaxWaiters, "most concurrent long-poll requests; more get 503")
	platform.StringVar(fs, &c.Instance, "instance", "INSTANCE", c.Instance, "name of this instance in the membership table")
	platform.DurationVar(fs, &c.AnnounceInterval, "announce-interval", "ANNOUNCE_INTERVAL", c.AnnounceInterval,
		"how often to publish this instance's partitions to the membership table again between rebalances")
	platform.DurationVar(fs, &c.DrainTimeout, "drain-timeout", "DRAIN_TIMEOUT", c.DrainTimeout,
		"on shutdown, how long waiting requests may still wait before they are answered 503 (at most 10s)")
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	switch {
	case c.HTTPAddr == "":
		return errors.New("config: --http-addr is required")
	case c.DefaultTimeout <= 0 || c.MaxTimeout < c.DefaultTimeout:
		return fmt.Errorf("config: need 0 < default timeout (%v) <= max timeout (%v)", c.DefaultTimeout, c.MaxTimeout)
	case c.MaxWaiters < 1:
		return errors.New("config: --max-waiters must be at least 1")
	case c.DrainTimeout < 0 || c.DrainTimeout > maxDrainTimeout:
		return fmt.Errorf("config: --drain-timeout %v must be between 0 and %v", c.DrainTimeout, maxDrainTimeout)
	case c.AnnounceInterval <= 0:
		return errors.New("config: --announce-interval must be positive")
	case c.MaxBodyBytes < 1:
		return errors.New("config: max body bytes must be at least 1")
	}
	return nil
}

// PlatformConfig returns the Kafka and logging part.
func (c Config) PlatformConfig() platform.Config { return c.Kafka }

// LogValue prints the configuration in the start-up log line.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("kafka", c.Kafka),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("advertised_addr", c.AdvertisedAddr),
		slog.Bool("aggregator", c.Aggregator),
		slog.Duration("default_timeout", c.DefaultTimeout),
		slog.Duration("max_timeout", c.MaxTimeout),
		slog.Int("max_waiters", c.MaxWaiters),
		slog.String("instance", c.Instance),
		slog.Duration("announce_interval", c.AnnounceInterval),
		slog.Duration("drain_timeout", c.DrainTimeout),
	)
}
