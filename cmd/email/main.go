// Command email runs the Email service: orders joined with their payments and customers, one
// confirmation email per order, and enriched orders routed to the topic of the customer's level.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/email"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(service.Exit(run(ctx, os.Args[1:])))
}

func run(ctx context.Context, args []string) error {
	cfg := email.DefaultConfig()
	if _, err := service.Setup("email", args, &cfg); err != nil {
		return err
	}
	svc, err := email.New(ctx, cfg)
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
