package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/ordersys/ecosystem/internal/metrics"
)

// Owner is one record of the membership table: which instance serves a partition of the
// orders view, and at which group generation it took it over.
type Owner struct {
	Partition  int32  `json:"partition"`
	Addr       string `json:"addr"` // host:port of the owner's REST API
	Generation int32  `json:"generation"`
	MemberID   string `json:"memberId"`
	Instance   string `json:"instance"`
	// UpdatedAt is when the entry was written, for people reading the topic; routing never
	// compares it, since instances' clocks may disagree.
	UpdatedAt time.Time `json:"updatedAt"`
}

// membershipKey is the table key of a partition.
func membershipKey(p int32) string { return strconv.Itoa(int(p)) }

// maxOwnerCandidates is how many announcements of one partition, from distinct members, the
// membership view keeps. Keeping several instead of "the newest" is what stops one forged
// entry from pinning routing: a forged generation beyond the group's is kept but never routed
// to, and does not push the real owner's entry out unless the writer floods. A forged entry of
// the current generation does win at once, as the latest of that generation, until the real
// owner's periodic re-announcement comes after it.
const maxOwnerCandidates = 4

// ownerCandidates is what the membership view stores per partition: the latest announcement
// of each of the last few members, oldest first. The topic holds Owner records; only this
// instance's local copy has this shape.
type ownerCandidates struct {
	Entries []Owner `json:"entries"`
}

// candidatesCodec decodes the view's stored values. A value stored by a version that kept
// one Owner per key reads as a single candidate.
type candidatesCodec struct{}

func (candidatesCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (candidatesCodec) Decode(b []byte) (any, error) {
	var c ownerCandidates
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode membership candidates: %w", err)
	}
	if len(c.Entries) == 0 {
		var single Owner
		if json.Unmarshal(b, &single) == nil && single.Addr != "" {
			c.Entries = []Owner{single}
		}
	}
	return &c, nil
}

// validate refuses an announcement that cannot be a real owner's: a key that is not its
// partition, a partition out of range, an address that is not host:port with a usable port, or
// an IP no other instance could reach (unspecified, link-local — which would also let a forged
// entry aim forwarded requests at a cloud metadata endpoint — or multicast).
func (o Owner) validate(key string, partitions int32) error {
	if key != membershipKey(o.Partition) {
		return fmt.Errorf("key %q does not name partition %d", key, o.Partition)
	}
	if o.Partition < 0 || o.Partition >= partitions {
		return fmt.Errorf("partition %d out of range [0, %d)", o.Partition, partitions)
	}
	if o.Generation <= 0 {
		return fmt.Errorf("generation %d is not a group generation", o.Generation)
	}
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", o.Addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: port out of range", o.Addr)
	}
	if host == "" {
		return fmt.Errorf("address %q has no host", o.Addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap() // ::ffff:0.0.0.0 is 0.0.0.0
		if ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() {
			return fmt.Errorf("address %q is not reachable by other instances", o.Addr)
		}
	} else if strings.ContainsAny(host, "/@?#%[] ") {
		return fmt.Errorf("address %q: not a host name", o.Addr)
	}
	return nil
}

// add records an announcement: it replaces the same member's earlier one and goes last; the
// oldest candidates beyond maxOwnerCandidates are dropped.
func (c *ownerCandidates) add(o Owner) {
	c.Entries = slices.DeleteFunc(c.Entries, func(e Owner) bool { return e.MemberID == o.MemberID })
	c.Entries = append(c.Entries, o)
	if len(c.Entries) > maxOwnerCandidates {
		c.Entries = c.Entries[len(c.Entries)-maxOwnerCandidates:]
	}
}

// best is the owner to route to: the candidate of the highest generation that is not beyond
// current, the newest generation this instance has seen its group reach; of one generation,
// the latest announced (only one member owns a partition in a generation, so another
// entry of it is stale or forged, and the owner's re-announcement comes after it). No wall
// clock is consulted: instances' clocks may disagree. An entry beyond current is either from
// a rebalance this instance has yet to join, or forged; it is not routed to either way.
func (c *ownerCandidates) best(current int32) (Owner, bool) {
	var chosen Owner
	found := false
	for _, e := range c.Entries {
		if e.Generation <= current && (!found || e.Generation >= chosen.Generation) {
			chosen, found = e, true
		}
	}
	return chosen, found
}

// membershipCallback is the membership view's update callback: it keeps the valid
// announcements of each partition as candidates and ignores the rest.
func membershipCallback(partitions int32) func(goka.UpdateContext, storage.Storage, string, []byte) error {
	return func(_ goka.UpdateContext, s storage.Storage, key string, value []byte) error {
		if value == nil {
			return s.Delete(key)
		}
		var incoming Owner
		err := json.Unmarshal(value, &incoming)
		if err == nil {
			err = incoming.validate(key, partitions)
		}
		if err != nil {
			metrics.MembershipRejected.Inc()
			slog.Warn("membership: ignoring invalid entry", slog.String("key", key), slog.Any("error", err))
			return nil
		}
		var c ownerCandidates
		if old, err := s.Get(key); err == nil && old != nil {
			if v, err := (candidatesCodec{}).Decode(old); err == nil {
				c = *v.(*ownerCandidates)
			}
		}
		c.add(incoming)
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode membership candidates of partition %s: %w", key, err)
		}
		return s.Set(key, b)
	}
}

// Ownership tracks which partitions this instance owns and has recovered, by wrapping the
// processor's consumer group: goka's Setup returns only after the claimed partitions are
// recovered, so when it returns the instance can serve them, and the session carries the
// generation to announce. Cleanup (a rebalance or shutdown) clears the set at once.
type Ownership struct {
	mu         sync.RWMutex
	owned      map[int32]bool
	generation int32  // of the session whose partitions are owned
	memberID   string // this instance's member id in that session
	newest     int32  // the newest generation any session of this instance has started
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

// Newest is the newest generation this instance's group has reached as far as it knows: a
// session's generation is known as soon as it starts, before its partitions are recovered.
func (o *Ownership) Newest() int32 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.newest
}

// session returns what is needed to announce the current session again: its generation and
// member id and the partitions owned, none when no session is live.
func (o *Ownership) session() (generation int32, memberID string, owned []int32) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	for p := range o.owned {
		owned = append(owned, p)
	}
	slices.Sort(owned)
	return o.generation, o.memberID, owned
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
	h.ownership.mu.Lock()
	h.ownership.newest = max(h.ownership.newest, session.GenerationID())
	h.ownership.mu.Unlock()
	if err := h.ConsumerGroupHandler.Setup(session); err != nil {
		return err
	}
	if err := session.Context().Err(); err != nil {
		// goka's Setup also returns nil when the session ended during recovery (a rebalance or
		// shutdown): the partitions may be half recovered and are no longer ours anyway.
		slog.Info("orders view session ended during recovery; claiming nothing",
			slog.Int("generation", int(session.GenerationID())))
		return nil
	}
	o := h.ownership
	claimed := session.Claims()[o.topic]
	o.mu.Lock()
	o.owned = map[int32]bool{}
	for _, p := range claimed {
		o.owned[p] = true
	}
	o.generation = session.GenerationID()
	o.memberID = session.MemberID()
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

// announce publishes this instance as the owner of partitions at generation.
func (s *Service) announce(_ context.Context, generation int32, memberID string, partitions []int32) error {
	now := time.Now().UTC()
	for _, p := range partitions {
		owner := Owner{Partition: p, Addr: s.self, Generation: generation, MemberID: memberID, Instance: s.cfg.Instance, UpdatedAt: now}
		if err := s.announcer.EmitSync(membershipKey(p), owner); err != nil {
			return fmt.Errorf("announce partition %d: %w", p, err)
		}
	}
	slog.Debug("announced ownership", slog.Any("partitions", partitions), slog.Int("generation", int(generation)), slog.String("addr", s.self))
	return nil
}

// reannounce publishes the live session's ownership again every interval, so that an entry
// that is stale, lost or forged is corrected without waiting for a rebalance.
func (s *Service) reannounce(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		generation, memberID, owned := s.ownership.session()
		if len(owned) == 0 {
			continue
		}
		if err := s.announce(ctx, generation, memberID, owned); err != nil {
			// The next tick tries again; the entries already there still route.
			slog.Warn("re-announcing ownership failed", slog.Any("error", err))
		}
	}
}
