package platform

import (
	"context"
	"sync"

	"github.com/IBM/sarama"
)

// inOrderGroup wraps a processor's consumer group so that a partition's offset is committed
// only up to the first message that has not finished. goka marks each message's offset when
// that message's emits are acknowledged, in whatever order that happens; a later message's
// mark would commit past an earlier one whose emit failed, and after the restart that earlier
// message would never be processed again (a lost verdict or decision: measured once in seven
// broker crashes by the reliability suite). Held back this way, a failed message is
// redelivered, as at-least-once promises.
type inOrderGroup struct {
	sarama.ConsumerGroup
}

func (g *inOrderGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	return g.ConsumerGroup.Consume(ctx, topics, &inOrderHandler{inner: handler})
}

// inOrderHandler lives for one session: sarama calls Setup once per Consume.
type inOrderHandler struct {
	inner   sarama.ConsumerGroupHandler
	mu      sync.Mutex
	session *inOrderSession
}

func (h *inOrderHandler) current(s sarama.ConsumerGroupSession) *inOrderSession {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.session == nil || h.session.ConsumerGroupSession != s {
		h.session = &inOrderSession{ConsumerGroupSession: s, partitions: map[topicPartition]*inFlight{}}
	}
	return h.session
}

func (h *inOrderHandler) Setup(s sarama.ConsumerGroupSession) error {
	return h.inner.Setup(h.current(s))
}

func (h *inOrderHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	return h.inner.Cleanup(h.current(s))
}

func (h *inOrderHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	session := h.current(s)
	return h.inner.ConsumeClaim(session, &inOrderClaim{ConsumerGroupClaim: claim, messages: session.track(claim)})
}

type topicPartition struct {
	topic     string
	partition int32
}

// inOrderSession commits, per partition, only the offsets below the first unfinished message.
type inOrderSession struct {
	sarama.ConsumerGroupSession
	mu         sync.Mutex
	partitions map[topicPartition]*inFlight
}

func (s *inOrderSession) inFlight(topic string, partition int32, create bool) *inFlight {
	s.mu.Lock()
	defer s.mu.Unlock()
	tp := topicPartition{topic, partition}
	f := s.partitions[tp]
	if f == nil && create {
		f = &inFlight{finished: map[int64]bool{}}
		s.partitions[tp] = f
	}
	return f
}

// track forwards a claim's messages, noting each offset before the handler can see it.
func (s *inOrderSession) track(claim sarama.ConsumerGroupClaim) <-chan *sarama.ConsumerMessage {
	f := s.inFlight(claim.Topic(), claim.Partition(), true)
	out := make(chan *sarama.ConsumerMessage, cap(claim.Messages()))
	go func() {
		defer close(out)
		for m := range claim.Messages() {
			f.dispatched(m.Offset)
			select {
			case out <- m:
			case <-s.Context().Done():
				return
			}
		}
	}()
	return out
}

// MarkOffset receives goka's "next offset to read" for a finished message.
func (s *inOrderSession) MarkOffset(topic string, partition int32, offset int64, metadata string) {
	f := s.inFlight(topic, partition, false)
	if f == nil {
		s.ConsumerGroupSession.MarkOffset(topic, partition, offset, metadata)
		return
	}
	if next, ok := f.finish(offset - 1); ok {
		s.ConsumerGroupSession.MarkOffset(topic, partition, next, metadata)
	}
}

// MarkMessage is MarkOffset of the message's next offset.
func (s *inOrderSession) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	s.MarkOffset(msg.Topic, msg.Partition, msg.Offset+1, metadata)
}

type inOrderClaim struct {
	sarama.ConsumerGroupClaim
	messages <-chan *sarama.ConsumerMessage
}

func (c *inOrderClaim) Messages() <-chan *sarama.ConsumerMessage { return c.messages }

// inFlight is one partition's messages handed out and not yet committed, in offset order.
type inFlight struct {
	mu       sync.Mutex
	queue    []int64
	finished map[int64]bool
}

func (f *inFlight) dispatched(offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, offset)
}

// finish records that the message at offset finished and returns the offset to commit (the
// next one to read) when the finished prefix of the queue grew.
func (f *inFlight) finish(offset int64) (next int64, advanced bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) == 0 || offset < f.queue[0] {
		// Not a message we handed out (or already committed): commit as asked.
		return offset + 1, true
	}
	f.finished[offset] = true
	for len(f.queue) > 0 && f.finished[f.queue[0]] {
		delete(f.finished, f.queue[0])
		next, advanced = f.queue[0]+1, true
		f.queue = f.queue[1:]
	}
	if len(f.queue) == 0 {
		f.queue = nil // let the backing array go
	}
	return next, advanced
}
