// Command email runs the Email service: orders joined with payments and customers, one email
// per order, and orders routed by customer level.
package main

import (
	"context"

	"github.com/ordersys/ecosystem/internal/email"
	"github.com/ordersys/ecosystem/internal/service"
)

func main() {
	service.Main("email", email.DefaultConfig(), func(ctx context.Context, cfg email.Config) (service.Runner, error) {
		return email.New(ctx, cfg)
	})
}
