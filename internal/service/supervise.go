package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/metrics"
)

// Supervised is a goka processor that is rebuilt and run again when it fails, so a service
// outlives a broker restart: goka gives up on some errors after the broker comes back (an
// idempotent producer's in-flight batches, a lookup table that does not reconnect), and
// without this the whole process would exit and wait for an outside restart policy.
type Supervised struct {
	name    string
	build   func() (*goka.Processor, error)
	current atomic.Pointer[goka.Processor]
	// OnFailure, when set, runs as soon as the processor has failed, before it is rebuilt
	// (e.g. to stop serving reads from its state).
	OnFailure func()
}

// NewSupervised builds the first processor at once, so configuration errors surface before Run.
func NewSupervised(name string, build func() (*goka.Processor, error)) (*Supervised, error) {
	p, err := build()
	if err != nil {
		return nil, err
	}
	s := &Supervised{name: name, build: build}
	s.current.Store(p)
	return s, nil
}

// Processor is the processor running now.
func (s *Supervised) Processor() *goka.Processor { return s.current.Load() }

// Name is the supervised processor's name in logs and metrics.
func (s *Supervised) Name() string { return s.name }

// Restart backoff bounds.
const (
	restartBackoffMin = time.Second
	restartBackoffMax = 30 * time.Second
)

// Run runs the processor until ctx ends. When it fails, it is rebuilt and started again after
// a backoff that doubles up to 30 s and resets after a minute of healthy running.
func (s *Supervised) Run(ctx context.Context) error {
	backoff := restartBackoffMin
	for {
		started := time.Now()
		err := RunProcessor(ctx, s.current.Load())
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stopped without being asked to")
		}
		if s.OnFailure != nil {
			s.OnFailure()
		}
		if time.Since(started) > time.Minute {
			backoff = restartBackoffMin
		}
		metrics.ProcessorRestarts.WithLabelValues(s.name).Inc()
		slog.Error("processor failed; restarting it", slog.String("processor", s.name), slog.Any("error", err), slog.Duration("after", backoff))
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, restartBackoffMax)
			p, err := s.build()
			if err == nil {
				s.current.Store(p)
				break
			}
			slog.Error("rebuilding processor failed; trying again", slog.String("processor", s.name), slog.Any("error", err), slog.Duration("after", backoff))
		}
	}
}

// Ready reports whether the current processor has recovered its state and is consuming.
func (s *Supervised) Ready() error {
	if !s.current.Load().Recovered() {
		return fmt.Errorf("recovering")
	}
	return nil
}

// AddSupervised makes readiness follow whichever processor s runs now.
func (h *Health) AddSupervised(s *Supervised) {
	h.Add("processor "+s.name, s.Ready)
}
