// Package ordersctl is the command line of the ordersctl tool: its subcommands, their flags and
// help, and how results are printed. The work is done by platform (provisioning) and
// sampledata (stock, customers, orders, tail); this package only wires flags to them, so that
// cmd/ordersctl stays a one-line main and the commands can be tested in process.
package ordersctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Exit statuses: a failed command, and a command line that could not be understood.
const (
	ExitFailure = 1
	ExitUsage   = 2
)

// errUsage marks errors in the command line itself; Main prints the usage hint for them.
var errUsage = errors.New("usage")

// command is one subcommand. setup registers its own flags on fs and returns the function
// that runs it once the flags are parsed.
type command struct {
	name     string
	args     string // the positional arguments, for the synopsis
	summary  string
	describe string
	setup    func(fs *flag.FlagSet) func(ctx context.Context, r *run) error
}

// run is what a command gets to work with.
type run struct {
	cfg     platform.Config
	args    []string // positional arguments
	stdout  io.Writer
	logger  *slog.Logger
	checked bool // the connection was checked (checkCluster)
}

// commands are listed in the order a user needs them.
var commands = []command{
	{
		name:    "provision",
		summary: "create every topic of the ecosystem (idempotent)",
		describe: "Creates every topic of the ecosystem that does not exist yet, with --partitions partitions and\n" +
			"--replication replicas, compacted where the topic is a table, and prints what it created and\n" +
			"what existed. An existing topic with another partition count is an error.",
		setup: setupProvision,
	},
	{
		name:    "inventory",
		summary: "set warehouse stock per product",
		describe: "Writes the stock of the products given to warehouse-inventory (a table: each value replaces\n" +
			"the product's previous one). Products not given keep their stock. With no product flag it\n" +
			"writes the reference's defaults, UNDERPANTS=20 and JUMPERS=10.",
		setup: setupInventory,
	},
	{
		name:    "customers",
		summary: "produce the sample customers",
		describe: "Writes the sample customers (ids 0-5, the customers the orders command picks from, and\n" +
			"customer 15, Franz Kafka) to the customers table.",
		setup: setupCustomers,
	},
	{
		name:    "orders",
		summary: "post orders with payments through the REST API and read each back",
		describe: "At --rate orders per second, posts an order (random customer 0-5, random product, quantity 1,\n" +
			"price 1.0) to the Orders service, writes its payment to payments, and reads the order back\n" +
			"with GET /v1/orders/{id}. Prints a summary; exits non-zero if any order failed or came back\n" +
			"different. With --count 0 it runs until interrupted.",
		setup: setupOrders,
	},
	{
		name:    "tail",
		args:    "<topic>",
		summary: "print a topic's records decoded, as JSON lines",
		describe: "Prints the records of <topic> (the ecosystem's name, e.g. orders; --topic-prefix is added) as\n" +
			"JSON lines {topic, partition, offset, timestamp, key, value, headers}, decoded by the topic's\n" +
			"format. A record that does not decode is printed with its bytes in base64 and an error field.",
		setup: setupTail,
	},
}

// Main runs ordersctl with args (the program name excluded) and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := Run(ctx, args, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "ordersctl:", err)
		return ExitUsage
	default:
		fmt.Fprintln(stderr, "ordersctl:", err)
		return ExitFailure
	}
}

// Run runs one subcommand. --help anywhere prints help to stdout and returns flag.ErrHelp.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stderr)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return Run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		printUsage(stdout)
		return flag.ErrHelp
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		printUsage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}

	fs := flag.NewFlagSet("ordersctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := platform.DefaultConfig()
	cfg.RegisterFlags(fs)
	exec := cmd.setup(fs)
	positional, err := parse(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, cmd, fs)
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v (see ordersctl %s --help)", errUsage, cmd.name, err, cmd.name)
	}
	if want := strings.Count(cmd.args, "<"); len(positional) != want {
		return fmt.Errorf("%w: %s takes %d argument(s) %s, got %q (see ordersctl %s --help)",
			errUsage, cmd.name, want, cmd.args, positional, cmd.name)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, cmd.name, err)
	}
	logger, err := platform.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, cmd.name, err)
	}
	if err := exec(ctx, &run{cfg: cfg, args: positional, stdout: stdout, logger: logger}); err != nil {
		return fmt.Errorf("%s: %w", cmd.name, err)
	}
	return nil
}

// parse parses flags placed before, between or after positional arguments (the flag package
// stops at the first positional), and reports environment values that did not parse.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	// Parsing nothing again only collects the errors of environment values.
	if err := platform.Parse(fs, nil); err != nil {
		return nil, err
	}
	return positional, nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: ordersctl <command> [flags]

Sample-data and inspection tools of the order-management ecosystem.

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "ordersctl <command> --help" for a command's flags. Every command takes the Kafka flags
(--brokers, --topic-prefix, --schema-registry, ...), each also read from its environment
variable (KAFKA_BROKERS, TOPIC_PREFIX, SCHEMA_REGISTRY_URL, ...).
`)
}

// printCommandHelp prints a command's help with the flag package's own flag listing, the same
// format as the services' --help, so that tools reading one read the other.
func printCommandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	synopsis := "ordersctl " + cmd.name + " [flags]"
	if cmd.args != "" {
		synopsis = "ordersctl " + cmd.name + " " + cmd.args + " [flags]"
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", synopsis, cmd.describe)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// timeoutFlag bounds the one-shot commands: without it an unreachable cluster would make them
// wait forever, and a provisioning container must fail instead of hanging.
func timeoutFlag(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("timeout", time.Minute, "give up after this long")
}

// checkCluster checks the connection to Kafka once per command (platform.CheckCluster: a
// wrong password or certificate is one line, at once). Every command that talks to Kafka
// reaches it through client, codecs or provision, after checking its own flags.
func (r *run) checkCluster(ctx context.Context) error {
	if r.checked {
		return nil
	}
	if err := platform.CheckCluster(ctx, r.cfg); err != nil {
		return err
	}
	r.checked = true
	return nil
}

// client checks the connection, then connects a producer with the ecosystem's client settings
// (murmur2 partitioner, acks=all); its client id names the tool.
func (r *run) client(ctx context.Context) (*kgo.Client, error) {
	if err := r.checkCluster(ctx); err != nil {
		return nil, err
	}
	cfg := r.cfg
	cfg.ClientID += "-ordersctl"
	cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w", cfg.Brokers, err)
	}
	return cl, nil
}

// codecs checks the connection, then loads the codecs.
func (r *run) codecs(ctx context.Context) (*platform.Codecs, error) {
	if err := r.checkCluster(ctx); err != nil {
		return nil, err
	}
	c, err := platform.CodecsFor(ctx, r.cfg)
	if err != nil {
		return nil, fmt.Errorf("load codecs: %w", err)
	}
	return c, nil
}
