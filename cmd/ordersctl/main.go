// Command ordersctl is the ecosystem's data tool: it provisions the topics, sets warehouse
// stock, produces sample customers, posts orders with payments and reads them back, and tails
// any topic decoded. Run "ordersctl --help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/ordersctl"
)

func main() {
	// An interrupt stops a running command gracefully: orders finishes the orders in flight and
	// prints its summary, tail stops reading.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(ordersctl.Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
