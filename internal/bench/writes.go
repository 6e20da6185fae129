package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// PerOrder is what one validated order of a throughput step cost: the services' CPU (without
// the broker's when the broker runs apart), the broker's, and what reached Kafka, by topic.
type PerOrder struct {
	ServicesCPUMs float64  `json:"servicesCpuMs"`
	BrokerCPUMs   *float64 `json:"brokerCpuMs,omitempty"`
	// Records and Bytes are written to Kafka per validated order over every topic. Bytes are
	// the record batches as produced when the broker counts them (its own process), else the
	// keys, values and headers of the records still readable (compaction may have removed
	// some of a table topic's, which the offsets still count as records).
	Records float64       `json:"records"`
	Bytes   float64       `json:"bytes"`
	Topics  []TopicWrites `json:"topics,omitempty"`
	// BrokerRequests is what the broker was sent per validated order (every client of the
	// services and of the load generator's own Kafka client), by API and in all; only when the
	// broker counts them (the embedded broker in its own process).
	BrokerRequests      float64            `json:"brokerRequests,omitempty"`
	BrokerRequestsByAPI map[string]float64 `json:"brokerRequestsByApi,omitempty"`
}

// addRequests divides the requests counted between before and after by validated.
func (p *PerOrder) addRequests(before, after map[string]int64, validated int) {
	if before == nil || after == nil || validated == 0 {
		return
	}
	p.BrokerRequestsByAPI = map[string]float64{}
	var total int64
	for api, n := range after {
		if d := n - before[api]; d > 0 {
			p.BrokerRequestsByAPI[api] = round2(float64(d) / float64(validated))
			total += d
		}
	}
	p.BrokerRequests = round2(float64(total) / float64(validated))
}

// TopicWrites is what one topic received during a step.
type TopicWrites struct {
	Topic           string  `json:"topic"`
	Records         int64   `json:"records"`
	Bytes           int64   `json:"bytes"`
	RecordsPerOrder float64 `json:"recordsPerOrder"`
	BytesPerOrder   float64 `json:"bytesPerOrder"`
}

// writeCounter counts what the services' topics received between start and count.
type writeCounter struct {
	kafka  platform.Config
	client *kgo.Client
	before map[string]map[int32]int64 // topic → partition → end offset at the start
}

// startWriteCounter notes the end offsets of every topic of the services' namespace.
func startWriteCounter(ctx context.Context, kafka platform.Config) (*writeCounter, error) {
	cl, err := kgo.NewClient(platform.ClientOptions(kafka)...)
	if err != nil {
		return nil, fmt.Errorf("count writes: connect: %w", err)
	}
	w := &writeCounter{kafka: kafka, client: cl}
	if w.before, err = w.endOffsets(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return w, nil
}

func (w *writeCounter) endOffsets(ctx context.Context) (map[string]map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(w.client).ListEndOffsets(ctx)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("count writes: end offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if !strings.HasPrefix(o.Topic, w.kafka.TopicPrefix) || strings.HasPrefix(o.Topic, "__") {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}

// producedSince is the bytes produced to each topic between two broker counts, by topic name
// (counts keyed by topic id are resolved through the metadata); nil when it cannot tell.
func (w *writeCounter) producedSince(ctx context.Context, before, after map[string]int64) map[string]int64 {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(w.client).ListTopics(ctx)
	if err != nil {
		return nil
	}
	names := map[string]string{}
	for _, td := range topics {
		names["id:"+td.ID.String()] = td.Topic
	}
	out := map[string]int64{}
	for key, n := range after {
		name := key
		if strings.HasPrefix(key, "id:") {
			if name = names[key]; name == "" {
				continue // a topic deleted since
			}
		}
		out[name] += n - before[key]
	}
	return out
}

// count divides what every topic received since the start by the validated orders: records
// from the end offsets; bytes from produced (by topic, as the broker counted them) or, when
// nil, by reading the records back and sizing them, after the measured window.
func (w *writeCounter) count(ctx context.Context, validated int, produced map[string]int64) (*PerOrder, error) {
	defer w.client.Close()
	after, err := w.endOffsets(ctx)
	if err != nil {
		return nil, err
	}
	ranges := map[string]map[int32]kgo.Offset{}
	want := map[string]map[int32]int64{}
	per := &PerOrder{}
	byTopic := map[string]*TopicWrites{}
	for topic, parts := range after {
		for p, end := range parts {
			start := w.before[topic][p]
			if end <= start {
				continue
			}
			if ranges[topic] == nil {
				ranges[topic], want[topic] = map[int32]kgo.Offset{}, map[int32]int64{}
				byTopic[topic] = &TopicWrites{Topic: strings.TrimPrefix(topic, w.kafka.TopicPrefix)}
			}
			ranges[topic][p] = kgo.NewOffset().At(start)
			want[topic][p] = end
			byTopic[topic].Records += end - start
		}
	}
	switch {
	case produced != nil:
		for topic, t := range byTopic {
			t.Bytes = produced[topic]
		}
	case len(ranges) > 0:
		if err := w.sizeRecords(ctx, ranges, want, byTopic); err != nil {
			return nil, err
		}
	}
	for _, t := range byTopic {
		if validated > 0 {
			t.RecordsPerOrder = round2(float64(t.Records) / float64(validated))
			t.BytesPerOrder = round2(float64(t.Bytes) / float64(validated))
		}
		per.Records += t.RecordsPerOrder
		per.Bytes += t.BytesPerOrder
		per.Topics = append(per.Topics, *t)
	}
	per.Records, per.Bytes = round2(per.Records), round2(per.Bytes)
	slices.SortFunc(per.Topics, func(a, b TopicWrites) int { return cmp.Compare(b.Bytes, a.Bytes) })
	return per, nil
}

// sizeRecords reads each partition's range and adds up its records' sizes.
func (w *writeCounter) sizeRecords(ctx context.Context, ranges map[string]map[int32]kgo.Offset, want map[string]map[int32]int64, byTopic map[string]*TopicWrites) error {
	cl, err := kgo.NewClient(platform.ClientOptions(w.kafka, kgo.ConsumePartitions(ranges), kgo.FetchMaxBytes(64<<20))...)
	if err != nil {
		return fmt.Errorf("count writes: consumer: %w", err)
	}
	defer cl.Close()
	left := 0
	for _, parts := range want {
		left += len(parts)
	}
	// A range ends at the record before its end offset. Compaction may have removed a table
	// topic's last records of the range, and nothing may follow them yet: a quiet read of a few
	// seconds then ends the count with what was read.
	for left > 0 {
		pollCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fetches := cl.PollFetches(pollCtx)
		quiet := pollCtx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("count writes: read: %w", ctx.Err())
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("count writes: read %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		if quiet && fetches.NumRecords() == 0 {
			return nil
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			end, ok := want[fp.Topic][fp.Partition]
			if !ok || len(fp.Records) == 0 {
				return
			}
			for _, rec := range fp.Records {
				if rec.Offset >= end {
					break
				}
				size := len(rec.Key) + len(rec.Value)
				for _, h := range rec.Headers {
					size += len(h.Key) + len(h.Value)
				}
				byTopic[fp.Topic].Bytes += int64(size)
			}
			if fp.Records[len(fp.Records)-1].Offset >= end-1 {
				delete(want[fp.Topic], fp.Partition)
				left--
				cl.PauseFetchPartitions(map[string][]int32{fp.Topic: {fp.Partition}})
			}
		})
	}
	return nil
}
