package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
)

// Owner is one record of the membership table: which instance serves a partition of the
// orders view, and at which group generation it took it over.
type Owner struct {
	Partition  int32     `json:"partition"`
	Addr       string    `json:"addr"` // host:port of the owner's REST API
	Generation int32     `json:"generation"`
	MemberID   string    `json:"memberId"`
	Instance   string    `json:"instance"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// membershipKey is the table key of a partition.
func membershipKey(p int32) string { return strconv.Itoa(int(p)) }

// staleAfter is how much newer an entry of a lower generation must be to replace a higher one.
// Generations only grow while the group exists; they restart only when the whole group was
// deleted, and then every entry is replaced by fresh ones minutes or more later. A late write
// of an older generation, the case this guards against, is seconds late at most.
const staleAfter = 2 * time.Minute

// keepNewestOwner is the membership view's update callback: an entry replaces the stored one
// only if it is of the same or a newer generation, so a delayed announcement by a former
// owner never wins over the current one.
func keepNewestOwner(_ goka.UpdateContext, s storage.Storage, key string, value []byte) error {
	if value == nil {
		return s.Delete(key)
	}
	var incoming Owner
	if err := json.Unmarshal(value, &incoming); err != nil {
		slog.Warn("membership: ignoring undecodable entry", slog.String("key", key), slog.Any("error", err))
		return nil
	}
	if old, err := s.Get(key); err == nil && old != nil {
		var current Owner
		if json.Unmarshal(old, &current) == nil && incoming.Generation < current.Generation &&
			!incoming.UpdatedAt.After(current.UpdatedAt.Add(staleAfter)) {
			return nil
		}
	}
	return s.Set(key, value)
}

// Ownership tracks which partitions this instance owns and has recovered, by wrapping the
// processor's consumer group: goka's Setup returns only after the claimed partitions are
// recovered, so when it returns the instance can serve them, and the session carries the
// generation to announce. Cleanup (a rebalance or shutdown) clears the set at once.
type Ownership struct {
	mu         sync.RWMutex
	owned      map[int32]bool
	generation int32
	topic      string // the orders topic, whose claims are the view's partitions

	// announce publishes the new ownership; called after Setup, outside the lock.
	announce func(ctx context.Context, generation int32, memberID string, partitions []int32) error
}

// Owns reports whether this instance serves partition p right now.
func (o *Ownership) Owns(p int32) bool {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.owned[p]
}

// Owned lists the partitions served right now, sorted.
func (o *Ownership) Owned() []int32 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var ps []int32
	for p := range o.owned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Generation is the group generation of the current session (0 before the first).
func (o *Ownership) Generation() int32 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.generation
}

// ConsumerGroupBuilder wraps base so that this Ownership sees every session.
func (o *Ownership) ConsumerGroupBuilder(base goka.ConsumerGroupBuilder) goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := base(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		return &trackedGroup{ConsumerGroup: cg, ownership: o}, nil
	}
}

type trackedGroup struct {
	sarama.ConsumerGroup
	ownership *Ownership
}

func (g *trackedGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, &trackedHandler{ConsumerGroupHandler: handler, ownership: g.ownership})
}

type trackedHandler struct {
	sarama.ConsumerGroupHandler
	ownership *Ownership
}

func (h *trackedHandler) Setup(session sarama.ConsumerGroupSession) error {
	if err := h.ConsumerGroupHandler.Setup(session); err != nil {
		return err
	}
	o := h.ownership
	claimed := session.Claims()[o.topic]
	o.mu.Lock()
	o.owned = map[int32]bool{}
	for _, p := range claimed {
		o.owned[p] = true
	}
	o.generation = session.GenerationID()
	o.mu.Unlock()
	slog.Info("orders view partitions recovered", slog.Any("partitions", claimed), slog.Int("generation", int(session.GenerationID())))
	if o.announce != nil {
		if err := o.announce(session.Context(), session.GenerationID(), session.MemberID(), claimed); err != nil {
			// Without the announcement other instances cannot route to us; failing the session
			// makes goka rejoin and try again rather than serve half-visible.
			return fmt.Errorf("announce ownership: %w", err)
		}
	}
	return nil
}

func (h *trackedHandler) Cleanup(session sarama.ConsumerGroupSession) error {
	h.ownership.clear()
	return h.ConsumerGroupHandler.Cleanup(session)
}

// clear forgets every partition at once: the session ended or the processor failed.
func (o *Ownership) clear() {
	o.mu.Lock()
	o.owned = nil
	o.mu.Unlock()
}
