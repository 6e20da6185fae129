// Command ecosystem runs the whole order-management ecosystem in one process on an embedded
// Kafka-protocol broker (or an external Kafka with --brokers), seeds sample data on first
// start, and prints the REST and broker addresses with a curl example once ready.
package main

import (
	"context"
	"fmt"

	"github.com/ordersys/ecosystem/internal/ecosystem"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	service.Main("ecosystem", ecosystem.DefaultConfig(), func(ctx context.Context, cfg ecosystem.Config) (service.Runner, error) {
		eco, err := ecosystem.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return service.RunnerFunc(func(ctx context.Context) error {
			return eco.Run(ctx, func(i ecosystem.Info) { fmt.Print(ecosystem.Banner(i)) })
		}), nil
	})
}
