// Command fraud runs the Fraud validator.
package main

import (
	"context"

	"github.com/ordersys/ecosystem/internal/fraud"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	service.Main("fraud", fraud.DefaultConfig(), func(ctx context.Context, cfg fraud.Config) (service.Runner, error) {
		return fraud.New(ctx, cfg)
	})
}
