package orders

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/metrics"
)

// create writes a new order, once, and answers nil only when the order is the id's first
// record on `orders`. POSTs of one id are serialised: the same order again is accepted without
// a second record (a safe client retry); another order under the same id is a conflict. The
// id's lock is held only to decide and to register the write, never while the broker is waited
// for: during a leader election that can take the whole deadline, and the lock stripes are
// shared with other ids. A write the broker has not answered stays registered, and the next
// POST of the id waits for that answer before deciding.
//
// An acknowledged write proves only that the record is on `orders`, not that it came first:
// another producer may have written the id just before, or this instance's view may not have
// read the previous owner's writes yet, or this instance may have lost the partition while
// paused. So every 201 waits until the view holds the id (confirm); the view keeps an id's
// first record, whichever instance wrote it.
func (s *Service) create(ctx context.Context, o domain.Order, p int32) error {
	for {
		unlock := s.locks.lock(o.ID)
		w, ok := s.pending.get(o.ID)
		if ok && !w.answered() {
			unlock()
			select {
			case <-w.done:
				continue // decide again with the answer
			case <-ctx.Done():
				if err := requestErr(ctx); errors.Is(err, ErrShuttingDown) {
					return err
				}
				return fmt.Errorf("%w: order %s: an earlier write of this id is still unacknowledged", ErrNotWritten, o.ID)
			}
		}
		if ok && w.err == nil {
			// Acknowledged, not yet in the view. Even of other content it does not prove a
			// conflict: another record of the id may precede it (written by the partition's
			// previous owner, say), and this POST may be that record's retry. The view says.
			unlock()
			return s.confirm(ctx, o, p)
		}
		stored, err := s.lookup(o.ID, p)
		if err != nil {
			unlock()
			return err
		}
		if stored != nil {
			unlock()
			if domain.SameContent(*stored, o) {
				return nil
			}
			return ErrConflict
		}
		if ctx.Err() != nil {
			unlock()
			return requestErr(ctx)
		}
		w = s.pending.begin(o)
		unlock()
		if err := s.write(ctx, w); err != nil {
			return err
		}
		return s.confirm(ctx, o, p)
	}
}

// confirm waits until the view holds id o.ID and reports whether its order, the id's first
// record, is o. When the partition moves away meanwhile it answers ErrNotOwner, and routing
// sends the POST to the new owner, whose view answers the same question.
func (s *Service) confirm(ctx context.Context, o domain.Order, p int32) error {
	first, err := s.waitLocal(ctx, o.ID, p, func(domain.Order) bool { return true })
	switch {
	case err == nil && domain.SameContent(first, o):
		return nil
	case err == nil:
		metrics.ConflictingOrders.WithLabelValues("orders-post").Inc()
		return ErrConflict
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w (order %s)", ErrUnconfirmed, o.ID)
	default:
		return err
	}
}

// write sends w's order and waits for the broker's answer until ctx ends. The answer comes
// once the write is acknowledged with acks=all, or the producer gave up; its retries outlast a
// leader election (platform.SaramaConfig), which may take longer than the request's deadline.
func (s *Service) write(ctx context.Context, w *pendingWrite) error {
	promise, err := s.writer.Emit(w.order.ID, w.order)
	if err != nil {
		s.pending.finish(w, err)
		return fmt.Errorf("%w: write order %s: %v", ErrNotWritten, w.order.ID, err)
	}
	promise.Then(func(err error) { s.pending.finish(w, err) })
	select {
	case <-w.done:
		if w.err != nil {
			return fmt.Errorf("%w: write order %s: %v", ErrNotWritten, w.order.ID, w.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: write order %s: not acknowledged within the request's deadline: %v", ErrNotWritten, w.order.ID, ctx.Err())
	}
}

// pendingWrites remembers orders written by POST until the view has stored them, so that a
// second POST in between sees the first (idempotency does not depend on view latency), and
// writes the broker has not answered yet, so that a second POST of the id waits for the
// answer instead of guessing.
type pendingWrites struct {
	mu        sync.Mutex
	byID      map[string]*pendingWrite
	lastSweep time.Time
}

// pendingWrite is one POST's write of an order.
type pendingWrite struct {
	order domain.Order
	done  chan struct{} // closed once the broker acknowledged the write or the producer gave up
	err   error         // why it was not written; set before done is closed
	at    time.Time     // when it was acknowledged
}

// pendingTTL bounds how long an acknowledged write is remembered if the view never reports
// it (e.g. the partition moved away meanwhile).
const pendingTTL = time.Minute

// begin registers a write of o about to be sent.
func (pw *pendingWrites) begin(o domain.Order) *pendingWrite {
	w := &pendingWrite{order: o, done: make(chan struct{})}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.byID[o.ID] = w
	// Acknowledged writes the view never reported are swept, at most once a second: with
	// many writes unanswered (a leader election under load) a sweep on every write would
	// scan them all each time.
	if len(pw.byID) > 1024 && time.Since(pw.lastSweep) > time.Second {
		pw.lastSweep = time.Now()
		for id, old := range pw.byID {
			if old.expired() {
				delete(pw.byID, id)
			}
		}
	}
	return w
}

// answered reports whether the broker has answered w.
func (w *pendingWrite) answered() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// finish records the broker's answer to w: acknowledged (err nil), or not written, in which
// case the id is forgotten.
func (pw *pendingWrites) finish(w *pendingWrite, err error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	w.err, w.at = err, time.Now()
	close(w.done)
	if err != nil && pw.byID[w.order.ID] == w {
		delete(pw.byID, w.order.ID)
	}
}

// expired reports whether an acknowledged write is past pendingTTL; one still unanswered
// never is. The caller holds the lock.
func (w *pendingWrite) expired() bool {
	select {
	case <-w.done:
		return time.Since(w.at) > pendingTTL
	default:
		return false
	}
}

// get returns the write of id that is unanswered or acknowledged, if any.
func (pw *pendingWrites) get(id string) (*pendingWrite, bool) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	w, ok := pw.byID[id]
	if !ok || w.expired() {
		return nil, false
	}
	return w, true
}

func (pw *pendingWrites) remove(id string) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	delete(pw.byID, id)
}

// keyLocks serialises POSTs of one order id without one lock per id.
type keyLocks struct {
	seed    maphash.Seed
	once    sync.Once
	stripes [256]sync.Mutex
}

func (kl *keyLocks) lock(id string) func() {
	kl.once.Do(func() { kl.seed = maphash.MakeSeed() })
	m := &kl.stripes[maphash.String(kl.seed, id)%uint64(len(kl.stripes))]
	m.Lock()
	return m.Unlock
}
