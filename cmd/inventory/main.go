// Command inventory runs the Inventory validator.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/inventory"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(service.Exit(run(ctx, os.Args[1:])))
}

func run(ctx context.Context, args []string) error {
	cfg := inventory.DefaultConfig()
	if _, err := service.Setup("inventory", args, &cfg); err != nil {
		return err
	}
	svc, err := inventory.New(ctx, cfg)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
