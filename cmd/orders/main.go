// Command orders runs one Orders service instance: the REST API, its share of the orders
// view, and (unless --aggregator=false) the validations aggregator.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(service.Exit(run(ctx, os.Args[1:])))
}

func run(ctx context.Context, args []string) error {
	cfg := orders.DefaultConfig()
	if _, err := service.Setup("orders", args, &cfg); err != nil {
		return err
	}
	svc, err := orders.New(ctx, cfg)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
