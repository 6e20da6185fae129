// Command ecosystem runs the whole order-management ecosystem in one process on an embedded
// Kafka-protocol broker (or an external Kafka with --brokers), seeds sample data on first
// start, and prints the REST and broker addresses with a curl example once ready.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/ecosystem"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(service.Exit(run(ctx, os.Args[1:])))
}

func run(ctx context.Context, args []string) error {
	cfg := ecosystem.DefaultConfig()
	if _, err := service.Setup("ecosystem", args, &cfg); err != nil {
		return err
	}
	eco, err := ecosystem.New(ctx, cfg)
	if err != nil {
		return err
	}
	return eco.Run(ctx, func(i ecosystem.Info) { fmt.Print(ecosystem.Banner(i)) })
}
