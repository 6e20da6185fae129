package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

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
