package kafkatest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// Service is what StartService runs: any of the ecosystem's services.
type Service interface {
	Run(ctx context.Context) error
}

// StartService runs svc until the returned stop is called or the test ends, after waiting
// until ready reports nil. A Run error fails the test.
func StartService(t testing.TB, svc Service, ready func() error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("service run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	Eventually(t, 60*time.Second, "service ready", func() bool { return ready() == nil })
	return stop
}

// VerdictLog follows order-validations of an Env from the start and checks each verdict on
// the way in: keyed by its order id, on the partition PartitionFor names, of the expected
// check type.
type VerdictLog struct {
	// ByID lists the verdicts of each order id in arrival order.
	ByID map[string][]domain.ValidationResult
	// N counts every verdict read.
	N int

	cl         *kgo.Client
	check      domain.CheckType
	partitions int32
}

// NewVerdictLog starts following env's order-validations for verdicts of check.
func NewVerdictLog(t testing.TB, env *Env, check domain.CheckType) *VerdictLog {
	t.Helper()
	cl, err := kgo.NewClient(platform.ClientOptions(env.Config,
		kgo.ConsumeTopics(env.Names.Topic(string(platform.TopicOrderValidations))),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &VerdictLog{ByID: map[string][]domain.ValidationResult{}, cl: cl, check: check, partitions: int32(env.Config.Partitions)}
}

// Poll reads what arrives within d.
func (l *VerdictLog) Poll(t testing.TB, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	fetches := l.cl.PollFetches(ctx)
	fetches.EachError(func(topic string, p int32, err error) {
		if ctx.Err() == nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
	})
	fetches.EachRecord(func(r *kgo.Record) {
		v, err := platform.StaticCodecs().OrderValidation.Unmarshal(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != v.OrderID || v.CheckType != l.check {
			t.Errorf("verdict %s: %+v, want a %s keyed by its order id", r.Key, v, l.check)
		}
		if want := platform.PartitionFor(string(r.Key), l.partitions); r.Partition != want {
			t.Errorf("verdict %s on partition %d, want %d", r.Key, r.Partition, want)
		}
		l.ByID[v.OrderID] = append(l.ByID[v.OrderID], v.ValidationResult)
		l.N++
	})
}

// Await reads until n verdicts in all have arrived, failing the test when none arrives for
// 30 s (so a long run is judged on progress, not on its total time).
func (l *VerdictLog) Await(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l.N < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d verdicts, none in the last 30s, want %d: %v", l.N, n, summarize(l.ByID))
		}
		before := l.N
		l.Poll(t, time.Second)
		if l.N > before {
			deadline = time.Now().Add(30 * time.Second)
		}
	}
}

// summarize prints a verdict map in full when it is small, else its size.
func summarize(byID map[string][]domain.ValidationResult) string {
	if len(byID) <= 50 {
		return fmt.Sprint(byID)
	}
	return fmt.Sprintf("(%d order ids)", len(byID))
}

// Settle reads for d more and returns the verdict count: a duplicate would show up here.
func (l *VerdictLog) Settle(t testing.TB, d time.Duration) int {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		l.Poll(t, time.Until(end))
	}
	return l.N
}
