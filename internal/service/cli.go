package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Config is what every binary's configuration offers: its flags, a check of its values, and
// the platform (Kafka and logging) part.
type Config interface {
	RegisterFlags(fs *flag.FlagSet)
	Validate() error
	PlatformConfig() platform.Config
}

// Setup parses args into cfg (flags over environment over defaults), builds the process logger
// and logs the configuration once. On --help it prints the flags to stdout and returns
// flag.ErrHelp, which Exit turns into status 0.
func Setup(name string, args []string, cfg Config) (*slog.Logger, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := platform.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Fprintf(os.Stdout, "Usage of %s:\n", name)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w (see --help)", name, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pc := cfg.PlatformConfig()
	logger, err := platform.NewLogger(os.Stderr, pc.LogFormat, pc.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	logger = logger.With(slog.String("service", name))
	slog.SetDefault(logger)
	logger.Info("starting", slog.Any("config", cfg))
	return logger, nil
}

// Exit maps run's error to a process exit status: 0 for success and --help, 1 otherwise
// (the error is printed).
func Exit(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	slog.Error("exiting", slog.Any("error", err))
	fmt.Fprintln(os.Stderr, "error:", err)
	return 1
}

// Runner is a built service.
type Runner interface {
	Run(ctx context.Context) error
}

// Main is the whole of a binary's main: it parses the flags into cfg, builds the service with
// build and runs it until SIGINT or SIGTERM, then exits with the status Exit gives.
func Main[C any, PC interface {
	*C
	Config
}](name string, cfg C, build func(context.Context, C) (Runner, error)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := func() error {
		if _, err := Setup(name, os.Args[1:], PC(&cfg)); err != nil {
			return err
		}
		if err := checkCluster(ctx, PC(&cfg)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		svc, err := build(ctx, cfg)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	}()
	stop()
	os.Exit(Exit(err))
}

// EmbeddedBroker is implemented by a configuration that may start its own broker (the
// ecosystem binary), which then cannot be checked before it runs.
type EmbeddedBroker interface {
	EmbeddedBroker() bool
}

// checkCluster connects once before anything is built, so that a wrong password, mechanism,
// certificate or listener ends the process at start with a line saying which.
func checkCluster(ctx context.Context, cfg Config) error {
	if e, ok := cfg.(EmbeddedBroker); ok && e.EmbeddedBroker() {
		return nil
	}
	return platform.CheckCluster(ctx, cfg.PlatformConfig())
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context) error

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context) error { return f(ctx) }
