// Command bench measures the ecosystem's end-to-end latency against the broker's own round
// trip, its throughput and its read speed, and prints the tables and a JSON file of results
// (see internal/bench and docs/benchmarks.md). `make bench` runs it with its defaults.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersys/ecosystem/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
