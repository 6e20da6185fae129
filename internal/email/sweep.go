package email

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lovoo/goka"
	"github.com/ordersys/ecosystem/internal/platform"
)

// sweepVisitor names the visitor edge that expires state; SweepAt drives it.
const sweepVisitor = "expire"

// SweepAt expires the state of every partition p owns as of now: join candidates past the
// join retention, orders whose customer has not arrived within the hold, waiters and finished
// orders past their retention. It also retries the customer lookup of every waiting order, so
// that an order whose release message was lost in a crash is released all the same. The
// service calls it periodically; it returns the number of keys visited.
func SweepAt(ctx context.Context, p *goka.Processor, now time.Time) (int64, error) {
	n, err := p.VisitAllWithStats(ctx, sweepVisitor, now)
	if err != nil {
		return n, fmt.Errorf("sweep email state: %w", err)
	}
	return n, nil
}

// onSweep expires the state under one key; meta is the sweep's time.
func (j *joiner) onSweep(ctx goka.Context, meta any) {
	now, ok := meta.(time.Time)
	if !ok {
		ctx.Fail(fmt.Errorf("sweep: meta is %T, want time.Time", meta))
	}
	e, existed := j.load(ctx)
	if !existed {
		return
	}
	changed := false
	if s := e.Order; s != nil {
		if s.Waiting != nil {
			if c := j.lookupCustomer(ctx, s.Waiting.CustomerID); c != nil {
				advanced, ok := j.advance(ctx, s, c, platform.Source{Topic: sweepVisitor, Offset: -1}, now)
				if !ok {
					return
				}
				if advanced {
					s.Updated = stamp{now}
					changed = true
				}
			}
		}
		before := *s
		x := s.expire(now, j.retention)
		if x.unpaidOrder {
			j.counters.UnpaidOrders.Add(1)
		}
		if x.unmatchedPayment {
			j.counters.UnmatchedPayments.Add(1)
		}
		if x.holdExpired {
			j.counters.HoldsExpired.Add(1)
			s.Updated = stamp{now}
			slog.Warn("order abandoned: its customer did not arrive in time",
				slog.String("order_id", ctx.Key()), slog.Int64("customer_id", before.Waiting.CustomerID),
				slog.Time("waiting_since", before.Waiting.Since.Time), slog.Duration("hold", j.retention.Hold))
		}
		if x.forget {
			e.Order = nil
		}
		if x != (expiry{}) {
			changed = true
		}
	}
	if c := e.Customer; c != nil {
		before := len(c.Waiting)
		if !c.expireWaiters(now, j.retention) {
			e.Customer = nil
		}
		if e.Customer == nil || len(c.Waiting) != before {
			changed = true
		}
	}
	if changed {
		j.store(ctx, e, existed)
	}
}
