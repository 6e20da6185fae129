package platform

import (
	"context"
	"time"

	"github.com/IBM/sarama"
)

// continuousGroup wraps a processor's consumer group so that a rebalance costs only the
// rebalance. goka's rebalance loop sleeps 5 s whenever Consume returns without an error, which
// is what sarama does at the end of every session: each rebalance stopped every partition of
// the processor for 5 s more than the group protocol needed (a second Orders instance joining
// stalled reads through the first for 5.1 s; 0.3 s without the sleep, docs/benchmarks.md).
// Consume therefore starts the next session itself and returns only with an error, or once ctx
// has ended, which goka's loop handles as before: an error stops the processor, an ended ctx
// stops it cleanly.
type continuousGroup struct {
	sarama.ConsumerGroup
}

// Session pacing. A session that lasted at least quickSession was an ordinary one, ended by a
// rebalance: the next starts at once. One that ended sooner was cut short (sarama ends a
// session right after Setup when one of its claims cannot start, e.g. while a crashed leader is
// not fenced yet), and rejoining at once would rebalance the whole group about ten times a
// second (review: 39 generations in 4 s with one partition's ListOffsets failing; goka's pause
// gave one). The pause after a cut-short session doubles from minSessionGap to maxSessionGap,
// goka's own pause, and an ordinary session resets it.
const (
	quickSession  = 2 * time.Second
	minSessionGap = 500 * time.Millisecond
	maxSessionGap = 5 * time.Second
)

func (g *continuousGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	var gap time.Duration
	for {
		started := time.Now()
		if err := g.ConsumerGroup.Consume(ctx, topics, handler); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) >= quickSession {
			gap = 0
			continue
		}
		gap = min(max(2*gap, minSessionGap), maxSessionGap)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(gap):
		}
	}
}
