package orders

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
)

func none() (*domain.Order, error) { return nil, nil }

func TestThousandWaitersOnOneIDAllReleasedByOneUpdate(t *testing.T) {
	ws := NewWaiters(100000)
	const n = 1000
	var wg sync.WaitGroup
	results := make(chan domain.Order, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := ws.Wait(context.Background(), "42", anyVersion, none)
			if err != nil {
				t.Error(err)
				return
			}
			results <- o
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for ws.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d waiters registered", ws.Len(), n)
		}
		time.Sleep(time.Millisecond)
	}
	ws.Notify(domain.Order{ID: "42", State: domain.OrderCreated})
	wg.Wait()
	close(results)
	got := 0
	for o := range results {
		if o.ID != "42" {
			t.Fatalf("released with %+v", o)
		}
		got++
	}
	if got != n || ws.Len() != 0 {
		t.Fatalf("released %d of %d, %d left registered", got, n, ws.Len())
	}
}

func TestWaitersReleaseOnlyAcceptedVersions(t *testing.T) {
	ws := NewWaiters(10)
	created := make(chan domain.Order, 1)
	final := make(chan domain.Order, 1)
	go func() { o, _ := ws.Wait(context.Background(), "1", anyVersion, none); created <- o }()
	go func() { o, _ := ws.Wait(context.Background(), "1", decided, none); final <- o }()
	for ws.Len() < 2 {
		time.Sleep(time.Millisecond)
	}
	ws.Notify(domain.Order{ID: "1", State: domain.OrderCreated})
	if o := <-created; o.State != domain.OrderCreated {
		t.Fatalf("any-version waiter got %+v", o)
	}
	select {
	case o := <-final:
		t.Fatalf("decided waiter released by %s", o.State)
	case <-time.After(50 * time.Millisecond):
	}
	ws.Notify(domain.Order{ID: "1", State: domain.OrderFailed})
	if o := <-final; o.State != domain.OrderFailed {
		t.Fatalf("decided waiter got %+v", o)
	}
	if ws.Len() != 0 {
		t.Fatalf("%d waiters left", ws.Len())
	}
}

func TestTimedOutWaitersLeaveNothingBehind(t *testing.T) {
	before := runtime.NumGoroutine()
	ws := NewWaiters(100000)
	const n = 10000
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, err := ws.Wait(ctx, "never", anyVersion, none); !errors.Is(err, context.DeadlineExceeded) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ws.Len() != 0 || len(ws.byID) != 0 {
		t.Fatalf("%d waiters and %d ids left after timeouts", ws.Len(), len(ws.byID))
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d, baseline %d", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWaitersCapAnswersTooMany(t *testing.T) {
	ws := NewWaiters(1)
	_, cancel, err := ws.Register("a", anyVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Register("b", anyVersion); !errors.Is(err, ErrTooManyWaiters) {
		t.Fatalf("second waiter: %v", err)
	}
	cancel()
	cancel() // idempotent
	if _, cancel2, err := ws.Register("b", anyVersion); err != nil {
		t.Fatal(err)
	} else {
		cancel2()
	}
}

func TestWaitSeesValueStoredBeforeItWaited(t *testing.T) {
	ws := NewWaiters(10)
	stored := &domain.Order{ID: "1", State: domain.OrderValidated}
	o, err := ws.Wait(context.Background(), "1", decided, func() (*domain.Order, error) { return stored, nil })
	if err != nil || o.State != domain.OrderValidated {
		t.Fatalf("%+v %v", o, err)
	}
}
