// Package ecotest starts the whole ecosystem inside a test, on a kafkatest namespace: what the
// end-to-end and interoperability suites drive over HTTP.
package ecotest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/ecosystem"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// Running is an ecosystem started by Start.
type Running struct {
	// URL is the Orders REST base URL, http://host:port.
	URL string

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Start runs every service on env's namespace, with state under the test's temporary
// directories and nothing seeded, and returns once Orders is ready. tune, when given, adjusts
// the configuration first. The test's cleanup stops it and fails the test if it ended with an
// error.
func Start(t testing.TB, env *kafkatest.Env, tune ...func(*ecosystem.Config)) *Running {
	t.Helper()
	cfg := ecosystem.DefaultConfig()
	cfg.Kafka = env.Config
	cfg.Kafka.StateDir = t.TempDir()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Seed = false
	for _, f := range tune {
		f(&cfg)
	}
	eco, err := ecosystem.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan ecosystem.Info, 1)
	go func() { r.done <- eco.Run(ctx, func(i ecosystem.Info) { ready <- i }) }()
	t.Cleanup(func() {
		r.Shutdown()
		if err := r.Wait(); err != nil {
			t.Errorf("ecosystem: %v", err)
		}
	})
	select {
	case i := <-ready:
		r.URL = "http://" + i.HTTPAddr
		return r
	case err := <-r.done:
		t.Fatalf("ecosystem stopped before it was ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("ecosystem not ready after 2 min: %v", eco.OrdersHealth().Ready())
	}
	return nil
}

// Shutdown begins the ecosystem's shutdown (as SIGTERM does) without waiting for it.
func (r *Running) Shutdown() { r.cancel() }

// Wait waits until the ecosystem has stopped and returns what its Run returned.
func (r *Running) Wait() error {
	r.once.Do(func() { r.err = <-r.done })
	return r.err
}
