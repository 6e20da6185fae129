package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
)

// The runner's bookkeeping: the keys the read tests use, the errors it logs, the resource
// monitor and the check that the services still run.

func (r *runner) addReadKey(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.readKeys) < r.cfg.ReadKeys {
		r.readKeys = append(r.readKeys, id)
	}
}

func (r *runner) snapshotKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.readKeys)
}

// noteError logs the first request errors of a run; later ones are only counted.
func (r *runner) noteError(err error) {
	r.mu.Lock()
	n := r.errLogged
	r.errLogged++
	r.mu.Unlock()
	if n < maxLoggedErrors {
		logf(r.cfg.Logs, "request failed: %v", err)
	} else if n == maxLoggedErrors {
		logf(r.cfg.Logs, "more requests failed; counting them without logging")
	}
}

func (r *runner) startMonitor() (*resourceMonitor, error) {
	broker := 0
	if r.broker != nil {
		broker = r.broker.pid
	}
	return startMonitor(r.pids, broker)
}

// finishMonitor returns the window's resources, or nil (logged) when they could not be read:
// a missing /proc should not void the latency figures.
func (r *runner) finishMonitor(m *resourceMonitor, startErr error) *Resources {
	if startErr != nil {
		logf(r.cfg.Logs, "resources not measured: %v", startErr)
		return nil
	}
	res, err := m.finish()
	if err != nil {
		logf(r.cfg.Logs, "resources not measured: %v", err)
		return nil
	}
	return &res
}

// servicesAlive fails when a services process ended during a measurement.
func (r *runner) servicesAlive() error {
	for _, pid := range r.pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("services process %d is gone", pid)
		}
	}
	return nil
}

// targets compares the run with the project's speed goals.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
