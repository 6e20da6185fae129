package service_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/details"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/service"
)

// A processor service on the test broker with an extra admin route, a sweeper and a part of
// its own: the route is served beside /readyz, the sweeper visits the recovered processor, the
// part runs until the service stops, and Run returns nil once its context ends.
func TestProcessorServiceWithRouteSweepsAndPart(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	addr := kafkatest.FreeAddr(t)
	var sweeps, partRan, partStopped atomic.Int32
	svc, err := service.NewProcessorService(context.Background(), "details",
		service.ProcessorConfig{Kafka: env.Config, AdminAddr: addr}, details.Graph,
		service.WithRoute("/extra", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "extra") })),
		service.WithSweeps("test", 20*time.Millisecond, func(_ context.Context, p *goka.Processor, _ time.Time) (int64, error) {
			if !p.Recovered() {
				t.Error("swept a processor that had not recovered")
			}
			sweeps.Add(1)
			return 0, nil
		}),
		service.WithPart("part", func(ctx context.Context) error {
			partRan.Add(1)
			<-ctx.Done()
			partStopped.Add(1)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	waitCtx, waitCancel := context.WithTimeout(ctx, time.Minute)
	defer waitCancel()
	if err := service.WaitReady(waitCtx, svc.Health.Ready); err != nil {
		t.Fatalf("not ready: %v", svc.Health.Ready())
	}
	resp, err := http.Get("http://" + addr + "/extra")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "extra" {
		t.Fatalf("/extra: %d %q", resp.StatusCode, body)
	}
	kafkatest.Eventually(t, 10*time.Second, "a sweep", func() bool { return sweeps.Load() > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if partRan.Load() != 1 || partStopped.Load() != 1 {
		t.Fatalf("part ran %d times, stopped %d", partRan.Load(), partStopped.Load())
	}
}

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
