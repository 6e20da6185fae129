package platform

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Config is the Kafka side of every binary's configuration. Defaults live here; each field can
// be set by flag or, failing that, by the environment variable named in RegisterFlags.
type Config struct {
	Brokers           []string
	SchemaRegistryURL string
	StateDir          string
	Partitions        int
	Replication       int
	ClientID          string
	TopicPrefix       string // prepended to every topic and group; empty in production
	LogFormat         string // json or text
	LogLevel          string // debug, info, warn, error
	// Producer is the client goka's processors, views and emitters write with: ProducerFranz
	// (default) or ProducerSarama.
	Producer string
	// Sarama, when set, replaces SaramaConfig for every goka processor, view and emitter built
	// from this config (see NewGoka), so a whole ecosystem can run with another client tuning;
	// the benchmark uses it for its goka-defaults baseline. It has no flag: nil in production.
	Sarama *sarama.Config
	// Security is TLS and SASL to Kafka and auth to the schema registry; zero is plaintext.
	Security Security
}

// DefaultConfig is what a binary runs with when nothing is set: a local single broker.
func DefaultConfig() Config {
	return Config{
		Brokers:     []string{"localhost:9092"},
		StateDir:    "state",
		Partitions:  6,
		Replication: 1,
		ClientID:    "ordersys",
		LogFormat:   "json",
		LogLevel:    "info",
		Producer:    ProducerFranz,
	}
}

// RegisterFlags binds the fields to flags on fs, each defaulting to its environment variable
// when set, else to the value already in c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("brokers", "comma-separated Kafka bootstrap addresses (env KAFKA_BROKERS)"+defaultNote(strings.Join(c.Brokers, ",")), func(s string) error {
		c.Brokers = SplitList(s)
		return nil
	})
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		c.Brokers = SplitList(v)
	}
	StringVar(fs, &c.SchemaRegistryURL, "schema-registry", "SCHEMA_REGISTRY_URL", c.SchemaRegistryURL,
		"Confluent schema registry URL; empty uses the built-in schema id table")
	StringVar(fs, &c.StateDir, "state-dir", "STATE_DIR", c.StateDir, "directory for local processor state (LevelDB)")
	IntVar(fs, &c.Partitions, "partitions", "PARTITIONS", c.Partitions, "partition count of every topic, used when provisioning")
	IntVar(fs, &c.Replication, "replication", "REPLICATION", c.Replication, "replication factor of every topic")
	StringVar(fs, &c.ClientID, "client-id", "KAFKA_CLIENT_ID", c.ClientID, "Kafka client id prefix")
	StringVar(fs, &c.TopicPrefix, "topic-prefix", "TOPIC_PREFIX", c.TopicPrefix,
		"prefix for every topic and group name, to share a cluster between ecosystems")
	StringVar(fs, &c.LogFormat, "log-format", "LOG_FORMAT", c.LogFormat, "log format: json or text")
	StringVar(fs, &c.LogLevel, "log-level", "LOG_LEVEL", c.LogLevel, "log level: debug, info, warn or error")
	StringVar(fs, &c.Producer, "producer", "KAFKA_PRODUCER", c.Producer,
		"client the stream processors write with: franz-go, or sarama (goka's own)")
	c.Security.RegisterFlags(fs)
}

// Validate reports the first unusable value.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return fmt.Errorf("config: no brokers")
	case c.Partitions < 1:
		return fmt.Errorf("config: partitions %d < 1", c.Partitions)
	case c.Replication < 1:
		return fmt.Errorf("config: replication %d < 1", c.Replication)
	case c.LogFormat != "json" && c.LogFormat != "text":
		return fmt.Errorf("config: log format %q is neither json nor text", c.LogFormat)
	case c.Producer != ProducerFranz && c.Producer != ProducerSarama:
		return fmt.Errorf("config: producer %q is neither %s nor %s", c.Producer, ProducerFranz, ProducerSarama)
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return c.Security.Check()
}

// LogValue lets slog print the config once at start.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("brokers", strings.Join(c.Brokers, ",")),
		slog.String("schema_registry", c.SchemaRegistryURL),
		slog.String("state_dir", c.StateDir),
		slog.Int("partitions", c.Partitions),
		slog.Int("replication", c.Replication),
		slog.String("client_id", c.ClientID),
		slog.String("topic_prefix", c.TopicPrefix),
		slog.String("producer", c.Producer),
		slog.Any("security", c.Security),
	)
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func defaultNote(def string) string {
	if def == "" {
		return ""
	}
	return fmt.Sprintf(" (default %q)", def)
}

// StringVar defines a string flag whose default comes from env when set.
func StringVar(fs *flag.FlagSet, p *string, name, env, def, usage string) {
	if v, ok := envValue(env); ok {
		def = v
	}
	fs.StringVar(p, name, def, usage+envNote(env))
}

// IntVar defines an int flag whose default comes from env when set and parseable; a value
// that does not parse is reported when flags are parsed, not silently ignored.
func IntVar(fs *flag.FlagSet, p *int, name, env string, def int, usage string) {
	*p = def
	fs.Func(name, usage+envNote(env)+defaultNote(strconv.Itoa(def)), func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		*p = n
		return nil
	})
	if v, ok := envValue(env); ok {
		if err := fs.Set(name, v); err != nil {
			addEnvError(fs, fmt.Errorf("env %s: %w", env, err))
		}
	}
}

// DurationVar defines a duration flag whose default comes from env when set.
func DurationVar(fs *flag.FlagSet, p *time.Duration, name, env string, def time.Duration, usage string) {
	*p = def
	fs.Func(name, usage+envNote(env)+defaultNote(def.String()), func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*p = d
		return nil
	})
	if v, ok := envValue(env); ok {
		if err := fs.Set(name, v); err != nil {
			addEnvError(fs, fmt.Errorf("env %s: %w", env, err))
		}
	}
}

// BoolVar defines a bool flag whose default comes from env when set.
func BoolVar(fs *flag.FlagSet, p *bool, name, env string, def bool, usage string) {
	if v, ok := envValue(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			addEnvError(fs, fmt.Errorf("env %s: not a boolean: %q", env, v))
		} else {
			def = b
		}
	}
	fs.BoolVar(p, name, def, usage+envNote(env))
}

// envErrors collects, per flag set, environment values that did not parse; Parse reports them.
var envErrors sync.Map // *flag.FlagSet → []error

func addEnvError(fs *flag.FlagSet, err error) {
	prev, _ := envErrors.Load(fs)
	errs, _ := prev.([]error)
	envErrors.Store(fs, append(errs, err))
}

// Parse parses args with fs and reports environment values that did not parse.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if errs, ok := envErrors.LoadAndDelete(fs); ok {
		return fmt.Errorf("parse config: %v", errs)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("parse config: unexpected arguments %q", fs.Args())
	}
	return nil
}

func envNote(env string) string {
	if env == "" {
		return ""
	}
	return " (env " + env + ")"
}

// Names returns the topic and group names under the configured prefix.
func (c Config) Names() Names { return Names{Prefix: c.TopicPrefix} }

// envValue reads an environment variable; set-but-empty counts as unset.
func envValue(env string) (string, bool) {
	if env == "" {
		return "", false
	}
	v := os.Getenv(env)
	return v, v != ""
}
