// Command fraud runs the Fraud validator.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/fraud"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(service.Exit(run(ctx, os.Args[1:])))
}

func run(ctx context.Context, args []string) error {
	cfg := fraud.DefaultConfig()
	if _, err := service.Setup("fraud", args, &cfg); err != nil {
		return err
	}
	svc, err := fraud.New(ctx, cfg)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
