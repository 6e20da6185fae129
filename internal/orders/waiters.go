package orders

import (
	"context"
	"errors"
	"sync"

	"github.com/ordersys/ecosystem/internal/domain"
)

// ErrTooManyWaiters is returned when the long-poll capacity is exhausted; HTTP maps it to 503.
var ErrTooManyWaiters = errors.New("too many pending long-poll requests")

// Waiters is the registry of pending long-poll GETs, keyed by order id. Any number of waiters
// may wait on one id, each with its own predicate; an update releases every waiter whose
// predicate it satisfies. A waiter is removed when answered, when it times out and when its
// client goes away, so no entry or goroutine outlives its request.
type Waiters struct {
	mu    sync.Mutex
	byID  map[string]map[*waiter]struct{}
	count int
	limit int
}

type waiter struct {
	accept func(domain.Order) bool
	ch     chan domain.Order // buffered 1: Notify never blocks
}

// NewWaiters returns a registry that holds at most limit waiters at once.
func NewWaiters(limit int) *Waiters {
	return &Waiters{byID: map[string]map[*waiter]struct{}{}, limit: limit}
}

// Len is the number of pending waiters.
func (ws *Waiters) Len() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.count
}

// Register adds a waiter for id. The caller must call the returned cancel when done.
func (ws *Waiters) Register(id string, accept func(domain.Order) bool) (<-chan domain.Order, func(), error) {
	w := &waiter{accept: accept, ch: make(chan domain.Order, 1)}
	ws.mu.Lock()
	if ws.count >= ws.limit {
		ws.mu.Unlock()
		return nil, nil, ErrTooManyWaiters
	}
	set := ws.byID[id]
	if set == nil {
		set = map[*waiter]struct{}{}
		ws.byID[id] = set
	}
	set[w] = struct{}{}
	ws.count++
	ws.mu.Unlock()
	return w.ch, func() { ws.remove(id, w) }, nil
}

func (ws *Waiters) remove(id string, w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	set := ws.byID[id]
	if _, ok := set[w]; !ok {
		return
	}
	delete(set, w)
	if len(set) == 0 {
		delete(ws.byID, id)
	}
	ws.count--
}

// Notify hands o to every waiter of its id whose predicate accepts it, and removes them.
func (ws *Waiters) Notify(o domain.Order) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	set := ws.byID[o.ID]
	for w := range set {
		if w.accept(o) {
			w.ch <- o
			delete(set, w)
			ws.count--
		}
	}
	if len(set) == 0 {
		delete(ws.byID, o.ID)
	}
}

// Wait registers a waiter, asks lookup for the current value (so an update between the two is
// never missed), and waits until an accepted value exists or ctx ends.
func (ws *Waiters) Wait(ctx context.Context, id string, accept func(domain.Order) bool, lookup func() (*domain.Order, error)) (domain.Order, error) {
	ch, cancel, err := ws.Register(id, accept)
	if err != nil {
		return domain.Order{}, err
	}
	defer cancel()
	current, err := lookup()
	if err != nil {
		return domain.Order{}, err
	}
	if current != nil && accept(*current) {
		return *current, nil
	}
	select {
	case o := <-ch:
		return o, nil
	case <-ctx.Done():
		return domain.Order{}, ctx.Err()
	}
}
