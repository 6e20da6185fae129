package service

import (
	"testing"
	"time"
)

// A sweep that takes up to sweepShare of the time keeps the interval; a longer one spaces the
// next so that sweeping stays at sweepShare of the time, up to maxSweepStretch intervals (a
// reviewer showed a stalled sweep of no keys spacing the next one without bound).
func TestNextSweepIn(t *testing.T) {
	for _, c := range []struct {
		every, took, want time.Duration
	}{
		{30 * time.Second, 0, 30 * time.Second},
		{30 * time.Second, 100 * time.Millisecond, 30 * time.Second},
		{30 * time.Second, 1500 * time.Millisecond, 30 * time.Second}, // 1.5 s of 31.5 s: under 5%
		{30 * time.Second, 3 * time.Second, 57 * time.Second},         // 3 s of 60 s
		{30 * time.Second, 10 * time.Second, 190 * time.Second},       // 10 s of 200 s
		{30 * time.Second, time.Minute, 5 * time.Minute},              // capped at 10 intervals
		{30 * time.Second, 2 * time.Hour, 5 * time.Minute},            // a stalled mail server, say
	} {
		got := nextSweepIn(c.every, c.took)
		if got != c.want {
			t.Errorf("nextSweepIn(%v, %v) = %v, want %v", c.every, c.took, got, c.want)
		}
		if c.took > 0 && got > c.every && got < maxSweepStretch*c.every {
			if share := float64(c.took) / float64(c.took+got); share > sweepShare+1e-9 {
				t.Errorf("nextSweepIn(%v, %v): sweeping %.3f of the time", c.every, c.took, share)
			}
		}
	}
}
