// Package details is the Order Details validator: for every CREATED order it emits one
// ORDER_DETAILS_CHECK verdict to order-validations — FAIL when quantity or price is negative
// or the product is missing, PASS otherwise.
//
// It is a goka processor (the reference used a hand-written consumer/producer loop). The
// verdict depends only on the order, so a redelivered order re-emits the same verdict and no
// state is needed to stay correct under at-least-once delivery.
package details

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/service"
)

// Config configures the Order Details service.
type Config struct {
	Kafka platform.Config
	// AdminAddr serves /livez, /readyz and /metrics; empty disables it (e.g. inside the ecosystem binary).
	AdminAddr string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Kafka: platform.DefaultConfig(), AdminAddr: ":9101"}
}

// RegisterFlags binds the configuration to flags and environment variables.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Kafka.RegisterFlags(fs)
	platform.StringVar(fs, &c.AdminAddr, "admin-addr", "ADMIN_ADDR", c.AdminAddr, "listen address of /livez, /readyz and /metrics; empty disables")
}

// Validate checks the configuration.
func (c Config) Validate() error { return c.Kafka.Validate() }

// PlatformConfig returns the Kafka and logging part.
func (c Config) PlatformConfig() platform.Config { return c.Kafka }

// LogValue prints the configuration in the start-up log line.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("kafka", c.Kafka), slog.String("admin_addr", c.AdminAddr))
}

// Check is the order-details rule of SPEC.md.
func Check(o domain.Order) domain.ValidationResult {
	if o.Quantity < 0 || o.Price < 0 || !o.Product.Valid() {
		return domain.Fail
	}
	return domain.Pass
}

// Graph is the processor's topology: orders in, verdicts out, undecodable orders to the
// dead-letter topic.
func Graph(n platform.Names, codecs *platform.Codecs) *goka.GroupGraph {
	validations := n.Stream(platform.TopicOrderValidations)
	return goka.DefineGroup(n.Group(platform.GroupDetails),
		goka.Input(n.Stream(platform.TopicOrders), new(codec.Bytes), platform.Decode(n, codecs.Order,
			func(ctx goka.Context, o domain.Order) {
				if o.State != domain.OrderCreated {
					return
				}
				result := Check(o)
				ctx.Emit(validations, o.ID, domain.OrderValidation{
					OrderID:          o.ID,
					CheckType:        domain.OrderDetailsCheck,
					ValidationResult: result,
				})
				metrics.Verdicts.WithLabelValues(string(domain.OrderDetailsCheck), string(result)).Inc()
			})),
		goka.Output(validations, codecs.OrderValidation),
		platform.DeadLetterEdge(n),
	)
}

// Service is a running Order Details validator.
type Service struct {
	cfg    Config
	proc   *goka.Processor
	Health *service.Health
}

// New builds the service: codecs (registering schemas when a registry is configured) and the
// processor. Topics must have been provisioned.
func New(ctx context.Context, cfg Config) (*Service, error) {
	codecs, err := platform.CodecsFor(ctx, cfg.Kafka.SchemaRegistryURL)
	if err != nil {
		return nil, fmt.Errorf("order details: %w", err)
	}
	proc, err := platform.NewGoka(cfg.Kafka).NewProcessor(Graph(cfg.Kafka.Names(), codecs))
	if err != nil {
		return nil, fmt.Errorf("order details: %w", err)
	}
	health := service.NewHealth()
	health.AddProcessor(proc)
	return &Service{cfg: cfg, proc: proc, Health: health}, nil
}

// Run processes orders and serves health until ctx ends or the processor fails.
func (s *Service) Run(ctx context.Context) error {
	ln, err := service.Listen(s.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("order details: %w", err)
	}
	g, gctx := service.NewGroup(ctx)
	g.Go("processor", func(ctx context.Context) error { return service.RunProcessor(ctx, s.proc) })
	g.Go("admin http", func(ctx context.Context) error { return service.Serve(ctx, ln, s.Health.Handler()) })
	<-gctx.Done()
	s.Health.SetStopping()
	return g.Wait()
}
