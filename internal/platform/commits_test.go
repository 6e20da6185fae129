package platform

import "testing"

func TestInFlightCommitsOnlyTheFinishedPrefix(t *testing.T) {
	type step struct {
		finish   int64
		next     int64
		advanced bool
	}
	cases := []struct {
		name       string
		dispatched []int64
		steps      []step
	}{
		{"in order", []int64{10, 11, 12}, []step{{10, 11, true}, {11, 12, true}, {12, 13, true}}},
		{"a later message finishes first: held back", []int64{10, 11, 12}, []step{{11, 0, false}, {12, 0, false}, {10, 13, true}}},
		{"a failed message never finishes: nothing past it is committed", []int64{10, 11, 12}, []step{{10, 11, true}, {12, 0, false}, {12, 0, false}}},
		{"gaps in offsets (compaction) do not block", []int64{10, 15, 40}, []step{{15, 0, false}, {10, 16, true}, {40, 41, true}}},
		{"an offset never handed out passes through", []int64{10}, []step{{5, 6, true}, {10, 11, true}, {20, 21, true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &inFlight{finished: map[int64]bool{}}
			for _, o := range c.dispatched {
				f.dispatched(o)
			}
			for i, s := range c.steps {
				next, advanced := f.finish(s.finish)
				if advanced != s.advanced || (advanced && next != s.next) {
					t.Fatalf("step %d finish(%d) = %d %v, want %d %v", i, s.finish, next, advanced, s.next, s.advanced)
				}
			}
		})
	}
}
