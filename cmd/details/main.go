// Command details runs the Order Details validator.
package main

import (
	"context"

	"github.com/ordersys/ecosystem/internal/details"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	service.Main("details", details.DefaultConfig(), func(ctx context.Context, cfg details.Config) (service.Runner, error) {
		return details.New(ctx, cfg)
	})
}
