package fraud_test

import (
	"testing"
	"time"

	"github.com/lovoo/goka/tester"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/fraud"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Found by review: event time is bounded by the processing clock, so for a record stamped
// ahead of it the time depended on when the record was processed. A FAIL is not remembered,
// so a redelivery two hours later (after a crash and downtime) opened a new session, PASSed,
// and counted the order a second time. The first processing's event time is now kept with the
// id's first content and used again.
func TestRedeliveryOfAFutureStampedOrderIsJudgedAtItsFirstTime(t *testing.T) {
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tt := kafkatest.StartTester(t, fraud.GraphWithClock(platform.Names{}, codecs, func() time.Time { return clock }))
	verdicts := tt.NewQueueTracker(string(platform.TopicOrderValidations))
	stamp := clock.Add(24 * time.Hour) // the producer's clock is a day ahead
	judge := func(o domain.Order) domain.ValidationResult {
		t.Helper()
		tt.Consume(string(platform.TopicOrders), o.ID, encode(t, o), tester.WithTime(stamp))
		_, v, ok := verdicts.Next()
		if !ok {
			t.Fatalf("no verdict for %s", o.ID)
		}
		return v.(domain.OrderValidation).ValidationResult
	}
	if got := judge(order("o1", 8, 1, 1500)); got != domain.Pass {
		t.Fatalf("o1: %s", got)
	}
	if got := judge(order("o2", 8, 1, 1000)); got != domain.Fail {
		t.Fatalf("o2: %s", got)
	}
	clock = clock.Add(2 * time.Hour)
	if got := judge(order("o2", 8, 1, 1000)); got != domain.Fail {
		t.Fatalf("o2 redelivered two hours later: %s, want FAIL as the first time", got)
	}
}
