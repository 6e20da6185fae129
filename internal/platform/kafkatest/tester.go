package kafkatest

import (
	"context"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
)

// StartTester runs a processor of graph on goka's in-memory tester until the test ends and
// returns the tester to feed and inspect it. A processor error fails the test.
func StartTester(t testing.TB, graph *goka.GroupGraph) *tester.Tester {
	t.Helper()
	tt, _ := StartTesterProcessor(t, graph)
	return tt
}

// StartTesterProcessor is StartTester that also returns the processor, for visitors (sweeps).
func StartTesterProcessor(t testing.TB, graph *goka.GroupGraph) (*tester.Tester, *goka.Processor) {
	t.Helper()
	tt := tester.New(t)
	proc, err := goka.NewProcessor(nil, graph, goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor %s: %v", graph.Group(), err)
		}
	})
	return tt, proc
}
