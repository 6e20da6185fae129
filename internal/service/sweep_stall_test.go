package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/details"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/service"
)

// Sweeps are spaced by their wall time, which also counts what is not state (in the Email
// service: a slow mail server inside a sweep, visits queued behind a backlog of records). A
// reviewer showed a sweep that visited no key but stalled for 300 ms postponing the next one
// by 19 × 300 ms, without bound; the stretch is now capped at ten intervals, so hold expiry,
// join expiry and hold retries stay within minutes of their time.
func TestStalledSweepPostponesTheNextOnlySoFar(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	const every = 50 * time.Millisecond
	var mu sync.Mutex
	var calls []time.Time
	svc, err := service.NewProcessorService(context.Background(), "details",
		service.ProcessorConfig{Kafka: env.Config}, details.Graph,
		service.WithSweeps("review", every, func(_ context.Context, _ *goka.Processor, now time.Time) (int64, error) {
			mu.Lock()
			calls = append(calls, now)
			first := len(calls) == 1
			mu.Unlock()
			if first {
				time.Sleep(300 * time.Millisecond) // a stall, not state: 0 keys visited
			}
			return 0, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	kafkatest.Eventually(t, 30*time.Second, "a first sweep", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) > 0
	})
	// Generous: 20 intervals after the stall ended.
	deadline := time.Now().Add(300*time.Millisecond + 20*every)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n >= 2 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("a 0-key sweep stalled for 300 ms postponed the next sweep past %v (interval %v)", 300*time.Millisecond+20*every, every)
}
