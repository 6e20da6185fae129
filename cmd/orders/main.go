// Command orders runs one Orders service instance: the REST API, its share of the orders view
// and, unless --aggregator=false, the validations aggregator.
package main

import (
	"context"

	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	service.Main("orders", orders.DefaultConfig(), func(ctx context.Context, cfg orders.Config) (service.Runner, error) {
		return orders.New(ctx, cfg)
	})
}
