package platform_test

import (
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/platform"
)

func TestBoundEventTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		ts   time.Time
		want time.Time
	}{
		{"on time", now, now},
		{"a backlog keeps its time", now.Add(-72 * time.Hour), now.Add(-72 * time.Hour)},
		{"within the tolerance", now.Add(platform.MaxClockSkew), now.Add(platform.MaxClockSkew)},
		{"48 h ahead is taken as the tolerance ahead", now.Add(48 * time.Hour), now.Add(platform.MaxClockSkew)},
		{"the zero time (no timestamp)", time.Time{}, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := platform.BoundEventTime(c.ts, now); !got.Equal(c.want) {
				t.Fatalf("BoundEventTime(%v) = %v, want %v", c.ts, got, c.want)
			}
		})
	}
}
