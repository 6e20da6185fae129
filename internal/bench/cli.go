package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Main is the bench command: it parses args, runs the benchmark, prints the tables to stdout
// and writes the JSON file, returning the exit status. Started with RoleEnv set, it is one of
// the benchmark's service processes instead.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if role := os.Getenv(RoleEnv); role != "" {
		if err := ServeRole(ctx, role, args, os.Stdin, stdout); err != nil {
			_, _ = fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		return 0
	}
	cfg, out, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	cfg.Logs = stderr
	res, runErr := Run(ctx, cfg)
	if res == nil {
		_, _ = fmt.Fprintln(stderr, "error:", runErr)
		return 1
	}
	// Whatever was measured is reported, also when a later phase failed.
	if err := WriteTable(stdout, res); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if out != "" {
		if err := WriteJSON(out, res); err != nil {
			runErr = errors.Join(runErr, err)
		} else {
			_, _ = fmt.Fprintf(stdout, "\nResults written to %s\n", out)
		}
	}
	if runErr != nil {
		_, _ = fmt.Fprintln(stderr, "error:", runErr)
		return 1
	}
	return 0
}

// parseFlags reads the configuration and the JSON output path.
func parseFlags(args []string, stderr io.Writer) (Config, string, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Func("brokers", "bootstrap addresses of a running ecosystem's Kafka (with --url); default: start the ecosystem on an embedded broker", func(s string) error {
		cfg.Kafka.Brokers = platform.SplitList(s)
		return nil
	})
	fs.Func("broker", fmt.Sprintf("where the started ecosystem's broker runs: %s (the embedded broker in a process of its own, so its CPU is reported apart from the services'), %s (inside the services process: the all-in-one figure) or %s (Apache Kafka, started from Maven by the benchmark; needs Java and Maven) (default %s)",
		BrokerProcess, BrokerInside, BrokerApache, cfg.Broker), func(s string) error {
		m, err := ParseBrokerMode(s)
		cfg.Broker = m
		return err
	})
	// TLS and SASL to a running ecosystem's secured Kafka (--brokers); the extra Orders
	// instances read the same settings from the environment variables.
	cfg.Kafka.Security.RegisterFlags(fs)
	fs.DurationVar(&cfg.BrokerCompactEvery, "broker-compact-every", 0, "with --broker process: how often the broker compacts (0: the embedded broker's default, 1h)")
	fs.StringVar(&cfg.Kafka.Producer, "producer", cfg.Kafka.Producer, "client the started ecosystem's stream processors write with: franz-go or sarama (goka's own)")
	fs.StringVar(&cfg.URL, "url", "", "Orders REST base URL of a running ecosystem (with --brokers); its stock is set to 2^30 of every product, customers 1000000–1009999 are written and every order is paid, so its Email service sends one email per order (to @bench.invalid); give --schema-registry when the ecosystem uses one, or the customers and payments carry the built-in schema ids")
	fs.StringVar(&cfg.Kafka.TopicPrefix, "topic-prefix", "", "topic and group prefix of the running ecosystem")
	fs.StringVar(&cfg.Kafka.SchemaRegistryURL, "schema-registry", "", "schema registry of the running ecosystem, for the extra Orders instances")
	fs.IntVar(&cfg.ServicesPID, "services-pid", 0, "with --url: process id of the running ecosystem, to report its CPU and memory")
	fs.IntVar(&cfg.Kafka.Partitions, "partitions", cfg.Kafka.Partitions, "partitions per topic of the started ecosystem")
	fs.IntVar(&cfg.Warmup, "warmup", cfg.Warmup, "orders (and floor records) sent before each latency measurement, not counted")
	fs.IntVar(&cfg.LatencyOrders, "latency-orders", cfg.LatencyOrders, "orders measured one at a time")
	fs.IntVar(&cfg.FloorRecords, "floor-records", cfg.FloorRecords, "records measured one at a time through the broker alone")
	fs.IntVar(&cfg.NaiveOrders, "naive-orders", cfg.NaiveOrders, "orders measured one at a time with goka's default 100 ms flush; 0 skips")
	fs.Func("rates", "target orders/s of the throughput sweep, comma-separated, increasing; empty skips"+
		fmt.Sprintf(" (default %s)", formatRates(cfg.Rates)), func(s string) error {
		rates, err := parseRates(s)
		cfg.Rates = rates
		return err
	})
	fs.DurationVar(&cfg.StepDuration, "step", cfg.StepDuration, "how long each throughput step starts orders")
	fs.DurationVar(&cfg.P99Limit, "p99-limit", cfg.P99Limit, "p99 a throughput step must stay within to pass")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", cfg.MaxInFlight, "most orders in flight at once during a throughput step")
	fs.DurationVar(&cfg.ReadDuration, "read-duration", cfg.ReadDuration, "length of each read test; 0 skips the read tests")
	fs.IntVar(&cfg.ReadClients, "read-clients", cfg.ReadClients, "concurrent readers")
	fs.IntVar(&cfg.ExtraInstances, "extra-instances", cfg.ExtraInstances, "Orders instances added for the second read test; 0 skips it")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "write CPU profiles of the services and the load generator here (a repeated throughput step and the one-instance reads)")
	out := fs.String("out", "bench-results.json", "JSON results file; empty writes none")
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("parse flags: unexpected arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return cfg, "", err
	}
	return cfg, *out, nil
}

func parseRates(s string) ([]float64, error) {
	var rates []float64
	for _, f := range platform.SplitList(s) {
		r, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("rate %q: %w", f, err)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

func formatRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}
