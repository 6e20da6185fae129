package email

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ordersys/ecosystem/internal/domain"
)

// Email is what one confirmation email is made of: the order, the payment that matched it and
// the customer who placed it.
type Email struct {
	Order    domain.Order
	Payment  domain.Payment
	Customer domain.Customer
}

// Emailer sends confirmation emails. The processor calls Send once per order and blocks the
// order's partition while it runs, so an implementation must honour ctx's deadline.
//
// An error wrapping ErrUndeliverable means retrying cannot help (the server refused the
// recipient): the order is marked as failed and not retried. Any other error is treated as
// transient: retried a few times, then the processor stops without committing the order, so
// that it is retried after a restart rather than lost.
type Emailer interface {
	Send(ctx context.Context, e Email) error
}

// ErrUndeliverable marks a permanent refusal of an email.
var ErrUndeliverable = errors.New("email undeliverable")

// LogEmailer "sends" an email by writing one structured log line: the default, and what the
// reference system did.
type LogEmailer struct {
	Logger *slog.Logger // nil means slog.Default()
}

// Send logs the email.
func (l LogEmailer) Send(ctx context.Context, e Email) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "email sent",
		slog.String("to", e.Customer.Email),
		slog.String("order_id", e.Order.ID),
		slog.Int64("customer_id", e.Customer.ID),
		slog.String("customer_name", e.Customer.FirstName+" "+e.Customer.LastName),
		slog.String("product", string(e.Order.Product)),
		slog.Int("quantity", int(e.Order.Quantity)),
		slog.Float64("price", e.Order.Price),
		slog.String("payment_id", e.Payment.ID),
		slog.Float64("amount", e.Payment.Amount),
		slog.String("currency", e.Payment.Ccy),
	)
	return nil
}
