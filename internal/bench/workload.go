package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

// The workload around the orders: stock and customers written before the run, and a payment
// for every order.

// pay writes o's payment without waiting: the order's verdict does not depend on it, but the
// Email service's work does, and it counts in the step's CPU, records and bytes. A payment
// that fails is logged and counted in payFailures; the phase it belongs to (after flushing
// svc.payer) adds it to its errors, so a step whose payments fail does not pass.
func (r *runner) pay(ctx context.Context, svc *services, o domain.Order) {
	rec, err := sampledata.PaymentRecord(svc.payments, svc.codecs, o)
	if err != nil {
		r.payFailures.Add(1)
		r.noteError(err)
		return
	}
	svc.payer.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		if err != nil {
			r.payFailures.Add(1)
			r.noteError(fmt.Errorf("pay order %s: %w", o.ID, err))
		}
	})
}

// paymentsSettled waits for every payment produced so far to be acknowledged or failed, and
// returns how many failed since before (a payFailures reading).
func (r *runner) paymentsSettled(ctx context.Context, svc *services, before int64) (int, error) {
	// Flush reports only ctx's error; failures arrive through pay's callback, run before
	// Flush returns.
	if err := svc.payer.Flush(ctx); err != nil {
		return 0, fmt.Errorf("pay: %w", err)
	}
	return int(r.payFailures.Load() - before), nil
}

// prepare writes plentiful stock and the orders' customers, and waits until an order
// validates: the inventory service must have read the stock before measured orders arrive, or
// they would fail. It leaves svc ready to pay for orders.
func (r *runner) prepare(ctx context.Context, svc *services) error {
	cl, err := kgo.NewClient(platform.ClientOptions(svc.kafka)...)
	if err != nil {
		return fmt.Errorf("bench: prepare: connect: %w", err)
	}
	codecs, err := platform.CodecsFor(ctx, svc.kafka)
	if err != nil {
		cl.Close()
		return fmt.Errorf("bench: prepare: %w", err)
	}
	svc.payer, svc.codecs = cl, codecs
	svc.payments = svc.kafka.Names().Topic(string(platform.TopicPayments))
	stock := map[domain.Product]int32{}
	for _, p := range domain.Products {
		stock[p] = plentifulStock
	}
	if err := sampledata.SetStock(ctx, cl, svc.kafka.Names(), stock); err != nil {
		return fmt.Errorf("bench: prepare: %w", err)
	}
	if err := sampledata.ProduceCustomersWith(ctx, cl, svc.kafka.Names(), codecs, benchCustomers()); err != nil {
		return fmt.Errorf("bench: prepare: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for k := 0; ; k++ {
		id := fmt.Sprintf("probe-%s-%d", r.runID, k)
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := r.client.post(pctx, svc.url, benchOrder(id, k))
		r.posted++
		var state domain.OrderState
		if err == nil {
			state, err = r.client.awaitDecided(pctx, svc.url, id, 10*time.Second)
		}
		cancel()
		if err == nil && state == domain.OrderValidated {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: prepare: no order validated within a minute (last: state %q, error %v)", state, err)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("bench: prepare: %w", err)
		}
	}
}
