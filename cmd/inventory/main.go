// Command inventory runs the Inventory validator.
package main

import (
	"context"

	"github.com/ordersys/ecosystem/internal/inventory"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	service.Main("inventory", inventory.DefaultConfig(), func(ctx context.Context, cfg inventory.Config) (service.Runner, error) {
		return inventory.New(ctx, cfg)
	})
}
