package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lovoo/goka"
)

// Sending is retried a few times inside the callback before the processor gives up; each
// attempt is bounded so that a hanging server cannot hold a partition forever.
const (
	sendAttempts       = 3
	sendAttemptTimeout = 30 * time.Second
)

// send delivers one email. failed reports a permanent refusal (the order is settled without
// an email); sent is false when delivery failed transiently: then the record is left
// uncommitted and the processor stops, so the order is retried after a restart, not lost.
func (j *joiner) send(ctx goka.Context, e Email) (failed, sent bool) {
	err := j.sendWithRetry(ctx.Context(), e)
	switch {
	case err == nil:
		j.counters.EmailsSent.Add(1)
		return false, true
	case errors.Is(err, ErrUndeliverable):
		j.counters.EmailsUndeliverable.Add(1)
		slog.Error("email undeliverable; the order is not emailed again",
			slog.String("order_id", e.Order.ID), slog.Int64("customer_id", e.Customer.ID), slog.Any("error", err))
		return true, true
	default:
		// DeferCommit's completion with an error fails the message: its offset is never marked
		// and the processor stops. Unlike ctx.Fail, this also holds during shutdown.
		ctx.DeferCommit()(fmt.Errorf("send email for order %s: %w", e.Order.ID, err))
		return false, false
	}
}

func (j *joiner) sendWithRetry(ctx context.Context, e Email) error {
	backoff := j.backoff
	for attempt := 1; ; attempt++ {
		// An attempt runs to completion even when the processor is stopping, so that an email
		// that was sent is also remembered, instead of being sent again after the restart.
		attemptCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendAttemptTimeout)
		err := j.emailer.Send(attemptCtx, e)
		cancel()
		if err == nil || errors.Is(err, ErrUndeliverable) || attempt == sendAttempts {
			return err
		}
		slog.Warn("sending email failed; retrying", slog.String("order_id", e.Order.ID),
			slog.Int("attempt", attempt), slog.Duration("backoff", backoff), slog.Any("error", err))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (stopped retrying: %w)", err, ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}
