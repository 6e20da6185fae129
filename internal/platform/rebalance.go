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

// minSessionGap spaces sessions that end at once, so a group that cannot hold a session (every
// join answered and the session ended straight away) does not spin.
const minSessionGap = 100 * time.Millisecond

func (g *continuousGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	for {
		started := time.Now()
		if err := g.ConsumerGroup.Consume(ctx, topics, handler); err != nil {
			return err
		}
		if wait := minSessionGap - time.Since(started); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
