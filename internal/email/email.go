// Package email is the Email service: it joins each order with its payment (re-keyed by order
// id, event times at most JoinWindow apart, whichever arrives first) and with its customer (a
// lookup of the whole customers table), sends one confirmation email per order through an
// Emailer, and routes every order joined with its customer, as OrderEnriched, to the topic of
// the customer's level.
//
// Everything is one goka processor whose group table holds, per order id, the join candidates
// and the outcomes, and per customer key, the orders waiting for that customer.
//
// Once per order: the outcomes (email sent or refused, enriched record emitted, order
// abandoned) are kept in the order's state, so redelivered records and later state changes of
// the order (VALIDATED, SHIPPED) send nothing again, as long as the order is remembered
// (Retention.Dedup, 7 days by default: the topics' retention).
//
// Missing customers: the order waits (is "held"). Its id is registered under the customer's
// key through the loop topic; when the customer's record arrives on the customers input (same
// partition as the registration, since the topics are copartitioned), the waiting orders get
// the record through the loop topic and complete. A periodic sweep retries the lookup for
// every waiting order, which covers a customer arriving while the registration is in flight
// and release messages lost in a crash; an order still without customer after Retention.Hold
// is abandoned, logged and counted.
//
// Expiry: goka has no timers, so Service.Run sweeps every partition's state every
// SweepInterval with a goka visitor (SweepAt); a sweep visits every key, so on a state large
// enough that sweeping would take more than 5% of the time, sweeps come further apart, up to
// ten intervals (service.RunSweeps), and what they enforce comes that much later. Candidates
// that found no partner within Retention.Join are dropped and counted as unmatched; finished
// orders are forgotten after Retention.Dedup. Retention is measured in processing time; the
// window in event time.
//
// Crashes: the email is sent before the state saying so is stored, and the input offset is
// committed only after that state and the outputs are acknowledged. A crash in between
// (milliseconds) can send an email again when the record is replayed: delivery is at least
// once, never lost. Duplicates carry the same Message-ID (MessageID) so mail systems can drop
// them. A replayed record that had produced the enriched record emits it again, in case the
// first copy was lost.
package email

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/service"
)

// Emailer kinds selectable with -emailer.
const (
	EmailerLog  = "log"
	EmailerSMTP = "smtp"
)

// Config configures the Email service.
type Config struct {
	Kafka platform.Config
	// AdminAddr serves /livez, /readyz and /counters; empty disables it.
	AdminAddr string
	// Emailer is EmailerLog or EmailerSMTP.
	Emailer string
	SMTP    SMTPConfig
	// Retention bounds the state; SweepInterval is how often it is enforced.
	Retention     Retention
	SweepInterval time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Kafka:         platform.DefaultConfig(),
		AdminAddr:     ":9104",
		Emailer:       EmailerLog,
		SMTP:          SMTPConfig{Timeout: 30 * time.Second},
		Retention:     DefaultRetention(),
		SweepInterval: 30 * time.Second,
	}
}

// RegisterFlags binds the configuration to flags and environment variables. The SMTP password
// is read from SMTP_PASSWORD only: a flag would show it in the process list.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	platform.StringVar(fs, &c.AdminAddr, "admin-addr", "ADMIN_ADDR", c.AdminAddr, "listen address of /livez, /readyz, /metrics and /counters; empty disables")
	platform.StringVar(fs, &c.Emailer, "emailer", "EMAILER", c.Emailer, "how emails are sent: log (one log line per email) or smtp")
	platform.StringVar(fs, &c.SMTP.Addr, "smtp-addr", "SMTP_ADDR", c.SMTP.Addr, "host:port of the SMTP server (with -emailer smtp)")
	platform.StringVar(fs, &c.SMTP.From, "smtp-from", "SMTP_FROM", c.SMTP.From, "sender address of the emails (with -emailer smtp)")
	platform.StringVar(fs, &c.SMTP.Username, "smtp-username", "SMTP_USERNAME", c.SMTP.Username,
		"SMTP user for PLAIN authentication, password from env SMTP_PASSWORD; empty: no authentication")
	platform.DurationVar(fs, &c.SMTP.Timeout, "smtp-timeout", "SMTP_TIMEOUT", c.SMTP.Timeout, "time limit of one SMTP delivery")
	if v := os.Getenv("SMTP_PASSWORD"); v != "" {
		c.SMTP.Password = v
	}
	platform.DurationVar(fs, &c.Retention.Join, "join-retention", "JOIN_RETENTION", c.Retention.Join,
		"how long an order record or payment waits for its partner (at least the 1m window plus the lag between topics)")
	platform.DurationVar(fs, &c.Retention.Hold, "hold-timeout", "HOLD_TIMEOUT", c.Retention.Hold,
		"how long an order waits for a missing customer before it is abandoned")
	platform.DurationVar(fs, &c.Retention.Dedup, "dedup-retention", "DEDUP_RETENTION", c.Retention.Dedup,
		"how long a finished order is remembered so that nothing is sent for it again")
	platform.DurationVar(fs, &c.SweepInterval, "sweep-interval", "SWEEP_INTERVAL", c.SweepInterval,
		"how often expired state is dropped and waiting orders look for their customer again (up to ten times less often while sweeps take over 5% of the time)")
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	switch c.Emailer {
	case EmailerLog:
	case EmailerSMTP:
		if _, err := NewSMTPEmailer(c.SMTP); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	default:
		return fmt.Errorf("config: emailer %q is neither %s nor %s", c.Emailer, EmailerLog, EmailerSMTP)
	}
	switch {
	case c.Retention.Join < JoinWindow:
		return fmt.Errorf("config: join retention %v is shorter than the %v join window", c.Retention.Join, JoinWindow)
	case c.Retention.Hold <= 0:
		return fmt.Errorf("config: hold timeout %v must be positive", c.Retention.Hold)
	case c.Retention.Dedup < c.Retention.Join || c.Retention.Dedup < c.Retention.Hold:
		return fmt.Errorf("config: dedup retention %v must cover the join retention and the hold timeout", c.Retention.Dedup)
	case c.SweepInterval <= 0:
		return fmt.Errorf("config: sweep interval %v must be positive", c.SweepInterval)
	}
	return nil
}

// PlatformConfig returns the Kafka and logging part.
func (c Config) PlatformConfig() platform.Config { return c.Kafka }

// LogValue prints the configuration in the start-up log line, without the SMTP password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("kafka", c.Kafka),
		slog.String("admin_addr", c.AdminAddr),
		slog.String("emailer", c.Emailer),
		slog.String("smtp_addr", c.SMTP.Addr),
		slog.String("smtp_from", c.SMTP.From),
		slog.String("smtp_username", c.SMTP.Username),
		slog.Bool("smtp_password_set", c.SMTP.Password != ""),
		slog.Duration("join_retention", c.Retention.Join),
		slog.Duration("hold_timeout", c.Retention.Hold),
		slog.Duration("dedup_retention", c.Retention.Dedup),
		slog.Duration("sweep_interval", c.SweepInterval),
	)
}

// newEmailer builds the emailer the configuration selects.
func (c Config) newEmailer() (Emailer, error) {
	if c.Emailer == EmailerSMTP {
		return NewSMTPEmailer(c.SMTP)
	}
	return LogEmailer{}, nil
}

// Option changes how New builds the service.
type Option func(*options)

type options struct {
	emailer Emailer
}

// WithEmailer sends emails through e instead of the configured emailer (tests, embedding).
func WithEmailer(e Emailer) Option { return func(o *options) { o.emailer = e } }

// Service is a running Email service: the processor, its sweeper and /counters.
type Service struct {
	*service.ProcessorService
	Counters *Counters
}

// New builds the service: codecs (registering schemas when a registry is configured), the
// emailer and the processor. Topics must have been provisioned.
func New(ctx context.Context, cfg Config, opts ...Option) (*Service, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	emailer := o.emailer
	if emailer == nil {
		var err error
		if emailer, err = cfg.newEmailer(); err != nil {
			return nil, fmt.Errorf("email: %w", err)
		}
	}
	counters := &Counters{}
	graph := func(n platform.Names, codecs *platform.Codecs) *goka.GroupGraph {
		return Graph(n, codecs, Processing{Emailer: emailer, Retention: cfg.Retention, Counters: counters})
	}
	svc, err := service.NewProcessorService(ctx, "email", service.ProcessorConfig{Kafka: cfg.Kafka, AdminAddr: cfg.AdminAddr}, graph,
		service.WithRoute("/counters", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(counters.Snapshot())
		})),
		service.WithSweeps("email state", cfg.SweepInterval, SweepAt))
	if err != nil {
		return nil, err
	}
	return &Service{ProcessorService: svc, Counters: counters}, nil
}

// Run processes orders, sweeps expired state and serves health and /counters until ctx ends or
// the processor fails; the counters are on /metrics for as long as it runs, shutdown included.
func (s *Service) Run(ctx context.Context) error {
	defer metrics.TrackEmailCounters(s.Counters.Snapshot)()
	return s.ProcessorService.Run(ctx)
}
