// Package ecosystem runs the whole order-management ecosystem in one process: the embedded
// broker (or an external Kafka), topic provisioning, sample data on first start, and every
// service — Orders with the validations aggregator, Order Details, Fraud, Inventory, Email.
// It is what `go run ./cmd/ecosystem` starts, and what end-to-end tests drive.
package ecosystem

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/broker"
	"github.com/ordersys/ecosystem/internal/details"
	"github.com/ordersys/ecosystem/internal/email"
	"github.com/ordersys/ecosystem/internal/fraud"
	"github.com/ordersys/ecosystem/internal/inventory"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/sampledata"
	"github.com/ordersys/ecosystem/internal/service"
)

// Config configures the one-command ecosystem.
type Config struct {
	// Kafka holds the shared flags; Brokers empty means "start the embedded broker".
	Kafka platform.Config
	// HTTPAddr is where the Orders REST API (and /readyz for the whole ecosystem) listens.
	HTTPAddr string
	// DataDir holds the embedded broker's data (broker/) and the services' state (state/).
	DataDir string
	// BrokerAddr is the embedded broker's listen address, printed for kcat and other tools.
	BrokerAddr string
	// Seed writes sample stock and customers when the inventory topic is empty.
	Seed bool
	// BrokerOnly runs just the broker and provisioning (for running services separately).
	BrokerOnly bool
	// DefaultTimeout and MaxTimeout bound the Orders long-polls, as the orders binary's flags
	// of the same names do; zero keeps orders.DefaultConfig's.
	DefaultTimeout, MaxTimeout time.Duration
	// Emailer, when set, is where the Email service sends (embedding, tests); nil keeps its
	// default, a log line per email.
	Emailer email.Emailer
}

// DefaultConfig returns the defaults of `go run ./cmd/ecosystem`.
func DefaultConfig() Config {
	k := platform.DefaultConfig()
	k.Brokers = nil
	// A person runs this in a terminal: readable logs, and quiet enough that the banner and
	// real problems stand out. --log-level info shows every request.
	k.LogFormat = "text"
	k.LogLevel = "warn"
	return Config{
		Kafka:      k,
		HTTPAddr:   "127.0.0.1:8080",
		DataDir:    "data",
		BrokerAddr: "127.0.0.1:9092",
		Seed:       true,
	}
}

// RegisterFlags binds the configuration to flags and environment variables.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	// The shared flags describe --brokers as required; here it is an alternative.
	if f := fs.Lookup("brokers"); f != nil {
		f.Usage = "use this external Kafka (comma-separated bootstrap addresses) instead of the embedded broker (env KAFKA_BROKERS)"
	}
	if f := fs.Lookup("state-dir"); f != nil {
		f.Usage = "overrides <data-dir>/state as the services' local state directory (env STATE_DIR)"
	}
	platform.StringVar(fs, &c.HTTPAddr, "http-addr", "HTTP_ADDR", c.HTTPAddr, "listen address of the Orders REST API, /readyz (whole ecosystem) and /metrics")
	platform.StringVar(fs, &c.DataDir, "data-dir", "DATA_DIR", c.DataDir, "directory for the embedded broker's data and the services' state")
	platform.StringVar(fs, &c.BrokerAddr, "broker-addr", "BROKER_ADDR", c.BrokerAddr, "listen address of the embedded broker")
	platform.BoolVar(fs, &c.Seed, "seed", "SEED", c.Seed, "on first start, write sample stock and customers")
	platform.BoolVar(fs, &c.BrokerOnly, "broker-only", "BROKER_ONLY", c.BrokerOnly, "run only the broker and topic provisioning")
	platform.DurationVar(fs, &c.DefaultTimeout, "default-timeout", "DEFAULT_TIMEOUT", c.DefaultTimeout, "long-poll timeout when a request gives none (0: the Orders default, 10s)")
	platform.DurationVar(fs, &c.MaxTimeout, "max-timeout", "MAX_TIMEOUT", c.MaxTimeout, "largest long-poll timeout a request may ask for (0: the Orders default, 1m)")
}

// ordersConfig is the Orders service's configuration with the long-poll bounds applied.
func (c Config) ordersConfig() orders.Config {
	o := orders.DefaultConfig()
	if c.DefaultTimeout > 0 {
		o.DefaultTimeout = c.DefaultTimeout
	}
	if c.MaxTimeout > 0 {
		o.MaxTimeout = c.MaxTimeout
	}
	return o
}

// Validate checks the configuration.
func (c Config) Validate() error {
	k := c.Kafka
	if len(k.Brokers) == 0 {
		k.Brokers = []string{c.BrokerAddr} // validated as the embedded broker's address
	}
	if err := k.Validate(); err != nil {
		return err
	}
	if c.BrokerOnly && len(c.Kafka.Brokers) > 0 {
		return errors.New("config: --broker-only runs the embedded broker; it makes no sense with --brokers")
	}
	if len(c.Kafka.Brokers) == 0 && c.Kafka.Security.Configured() {
		return errors.New("config: TLS and SASL settings are for a secured Kafka (--brokers); the embedded broker speaks plaintext")
	}
	if c.DataDir == "" {
		return errors.New("config: --data-dir is required")
	}
	if o := c.ordersConfig(); c.DefaultTimeout < 0 || c.MaxTimeout < 0 || o.MaxTimeout < o.DefaultTimeout {
		return fmt.Errorf("config: need 0 < default timeout (%v) <= max timeout (%v)", o.DefaultTimeout, o.MaxTimeout)
	}
	return nil
}

// PlatformConfig returns the Kafka and logging part.
func (c Config) PlatformConfig() platform.Config { return c.Kafka }

// EmbeddedBroker reports whether the ecosystem runs its own broker (no --brokers).
func (c Config) EmbeddedBroker() bool { return len(c.Kafka.Brokers) == 0 }

// LogValue prints the configuration in the start-up log line.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("kafka", c.Kafka),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("data_dir", c.DataDir),
		slog.String("broker_addr", c.BrokerAddr),
		slog.Bool("seed", c.Seed),
		slog.Bool("broker_only", c.BrokerOnly),
		slog.Duration("default_timeout", c.DefaultTimeout),
		slog.Duration("max_timeout", c.MaxTimeout),
	)
}

// Ecosystem is a started broker with provisioned topics and built (not yet running) services.
type Ecosystem struct {
	cfg     Config
	broker  *broker.Broker // nil with an external Kafka
	brokers []string
	orders  *orders.Service
	parts   []part
}

// part is one service besides Orders.
type part struct {
	name   string
	run    func(context.Context) error
	health *service.Health
}

// New starts the broker (unless external), provisions the topics, seeds sample data on first
// start and builds every service.
func New(ctx context.Context, cfg Config) (_ *Ecosystem, err error) {
	e := &Ecosystem{cfg: cfg, brokers: cfg.Kafka.Brokers}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if len(e.brokers) == 0 {
		b, err := broker.Start(broker.Options{
			Addr:       cfg.BrokerAddr,
			DataDir:    filepath.Join(cfg.DataDir, "broker"),
			Partitions: cfg.Kafka.Partitions,
			Logger:     slog.Default(),
		})
		if err != nil {
			return nil, fmt.Errorf("ecosystem: %w", err)
		}
		e.broker = b
		e.brokers = b.Addrs()
	}
	kcfg := cfg.Kafka
	kcfg.Brokers = e.brokers
	if kcfg.StateDir == "" || kcfg.StateDir == platform.DefaultConfig().StateDir {
		kcfg.StateDir = filepath.Join(cfg.DataDir, "state")
	}

	provisionCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := platform.ProvisionCluster(provisionCtx, kcfg)
	if err != nil {
		return nil, fmt.Errorf("ecosystem: %w", err)
	}
	slog.Info("topics provisioned", slog.Int("created", len(res.Created)), slog.Int("existing", len(res.Existing)))
	if cfg.Seed {
		if err := seedOnce(provisionCtx, kcfg); err != nil {
			return nil, fmt.Errorf("ecosystem: %w", err)
		}
	}
	if cfg.BrokerOnly {
		return e, nil
	}

	withState := func(name string) platform.Config {
		c := kcfg
		c.StateDir = filepath.Join(kcfg.StateDir, name)
		return c
	}
	ocfg := cfg.ordersConfig()
	ocfg.Kafka = withState("orders")
	ocfg.HTTPAddr = cfg.HTTPAddr
	if e.orders, err = orders.New(ctx, ocfg); err != nil {
		return nil, fmt.Errorf("ecosystem: %w", err)
	}

	// The validators, each with its state apart and no admin port of its own: /readyz of the
	// REST API answers for them.
	validators := []struct {
		name string
		new  func(context.Context, service.ProcessorConfig) (*service.ProcessorService, error)
	}{{"details", details.New}, {"fraud", fraud.New}, {"inventory", inventory.New}}
	for _, v := range validators {
		svc, err := v.new(ctx, service.ProcessorConfig{Kafka: withState(v.name)})
		if err != nil {
			return nil, fmt.Errorf("ecosystem: %w", err)
		}
		e.parts = append(e.parts, part{v.name, svc.Run, svc.Health})
	}
	ecfg := email.DefaultConfig()
	ecfg.Kafka, ecfg.AdminAddr = withState("email"), ""
	var emailOpts []email.Option
	if cfg.Emailer != nil {
		emailOpts = append(emailOpts, email.WithEmailer(cfg.Emailer))
	}
	em, err := email.New(ctx, ecfg, emailOpts...)
	if err != nil {
		return nil, fmt.Errorf("ecosystem: %w", err)
	}
	e.parts = append(e.parts, part{"email", em.Run, em.Health})
	// /readyz of the REST API answers for the whole ecosystem.
	for _, p := range e.parts {
		e.orders.Health.Add(p.name, p.health.Ready)
	}
	return e, nil
}

// seedOnce writes the sample stock and customers when the inventory topic holds nothing yet,
// so a restart never resets stock that orders have been reserved against.
func seedOnce(ctx context.Context, cfg platform.Config) error {
	cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
	if err != nil {
		return fmt.Errorf("seed: connect: %w", err)
	}
	defer cl.Close()
	names := cfg.Names()
	empty, err := sampledata.TopicIsEmpty(ctx, cl, names.Topic(string(platform.TopicWarehouseInventory)))
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if !empty {
		slog.Info("sample data already present; not seeding")
		return nil
	}
	if err := sampledata.SetStock(ctx, cl, names, sampledata.DefaultStock()); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	// Customers are Avro: write them with the same schema ids the services read with.
	codecs, err := platform.CodecsFor(ctx, cfg)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := sampledata.ProduceCustomersWith(ctx, cl, names, codecs, sampledata.SampleCustomers()); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	slog.Info("seeded sample stock and customers")
	return nil
}

// Info is what a user needs once the ecosystem is up.
type Info struct {
	HTTPAddr string   // REST API listen address ("" in broker-only mode)
	Brokers  []string // bootstrap addresses
}

// Info returns the addresses to connect to.
func (e *Ecosystem) Info() Info {
	i := Info{Brokers: e.brokers}
	if e.orders != nil {
		i.HTTPAddr = e.orders.Addr()
	}
	return i
}

// OrdersHealth is the readiness of the whole ecosystem (served as /readyz).
func (e *Ecosystem) OrdersHealth() *service.Health {
	if e.orders == nil {
		return nil
	}
	return e.orders.Health
}

// Run runs every service until ctx ends or one fails, then stops them all — Orders first, so
// that the requests it drains can still be validated — and closes the broker. ready is called
// once every service is ready.
func (e *Ecosystem) Run(ctx context.Context, ready func(Info)) error {
	defer e.close()
	if e.orders == nil { // broker only
		if ready != nil {
			ready(e.Info())
		}
		<-ctx.Done()
		return nil
	}
	// The validators and Email run under their own context, stopped only once Orders has
	// returned: requests Orders still answers while it drains wait for verdicts, which only
	// running validators give. A failing part stops Orders too.
	partsCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()
	parts, partsFailed := service.NewGroup(partsCtx)
	for _, p := range e.parts {
		parts.Go(p.name, p.run)
	}
	frontCtx, stopFront := context.WithCancel(ctx)
	defer stopFront()
	stopOnPartFailure := context.AfterFunc(partsFailed, stopFront)
	defer stopOnPartFailure()
	front, frontDone := service.NewGroup(frontCtx)
	front.Go("orders", e.orders.Run)
	if ready != nil {
		front.Go("readiness", func(ctx context.Context) error {
			if service.WaitReady(ctx, e.orders.Health.Ready) == nil {
				ready(e.Info())
			}
			return nil
		})
	}
	<-frontDone.Done()
	frontErr := front.Wait()
	stopParts()
	return errors.Join(frontErr, parts.Wait())
}

func (e *Ecosystem) close() {
	if e.broker != nil {
		e.broker.Close()
		e.broker = nil
	}
}

// Banner is the text printed once the ecosystem is ready.
func Banner(i Info) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nThe order-management ecosystem is ready.\n\n")
	if i.HTTPAddr != "" {
		fmt.Fprintf(&b, "  REST API:  http://%s   (readiness: http://%s/readyz)\n", i.HTTPAddr, i.HTTPAddr)
	}
	fmt.Fprintf(&b, "  Kafka:     %s   (e.g. kcat -b %s -L)\n", strings.Join(i.Brokers, ","), i.Brokers[0])
	if i.HTTPAddr != "" {
		fmt.Fprintf(&b, "\nTry it:\n\n")
		fmt.Fprintf(&b, "  curl -i -X POST http://%s/v1/orders -H 'Content-Type: application/json' \\\n", i.HTTPAddr)
		fmt.Fprintf(&b, "    -d '{\"id\":\"1\",\"customerId\":2,\"state\":\"CREATED\",\"product\":\"JUMPERS\",\"quantity\":1,\"price\":1.0}'\n")
		fmt.Fprintf(&b, "  curl -s http://%s/v1/orders/1/validated\n", i.HTTPAddr)
	}
	fmt.Fprintf(&b, "\nCtrl-C stops everything.\n")
	return b.String()
}
