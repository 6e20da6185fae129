package fraud_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/fraud"
)

// step applies one order at a time offset and states what must come out.
type step struct {
	id       string
	at       time.Duration
	value    float64
	want     domain.ValidationResult
	total    float64 // checked unless late
	replayed bool
	late     bool
}

func TestApply(t *testing.T) {
	cases := []struct {
		name     string
		steps    []step
		sessions int // sessions left afterwards
	}{
		{"spec customer 2: exactly the limit fails", []step{
			{id: "a", value: 1000, want: domain.Pass, total: 1000},
			{id: "b", at: time.Minute, value: 1000, want: domain.Fail, total: 2000},
			{id: "c", at: 2 * time.Minute, value: 5, want: domain.Fail, total: 2005},
		}, 1},
		{"just under the limit passes", []step{
			{id: "a", value: 1999.99, want: domain.Pass, total: 1999.99},
		}, 1},
		{"gap just under an hour joins the session", []step{
			{id: "a", value: 1500, want: domain.Pass, total: 1500},
			{id: "b", at: time.Hour - time.Millisecond, value: 1500, want: domain.Fail, total: 3000},
		}, 1},
		{"gap of exactly an hour joins the session", []step{
			{id: "a", value: 1500, want: domain.Pass, total: 1500},
			{id: "b", at: time.Hour, value: 1500, want: domain.Fail, total: 3000},
		}, 1},
		{"gap just over an hour starts a new session", []step{
			{id: "a", value: 1500, want: domain.Pass, total: 1500},
			{id: "b", at: time.Hour + time.Millisecond, value: 1500, want: domain.Pass, total: 1500},
		}, 2},
		{"out-of-order order inside a session", []step{
			{id: "a", at: 30 * time.Minute, value: 1500, want: domain.Pass, total: 1500},
			{id: "b", value: 600, want: domain.Fail, total: 2100},
		}, 1},
		{"out-of-order order bridging two sessions merges them", []step{
			{id: "a", value: 1500, want: domain.Pass, total: 1500},
			{id: "b", at: 2 * time.Hour, value: 400, want: domain.Pass, total: 400},
			{id: "c", at: time.Hour, value: 200, want: domain.Fail, total: 2100},
			{id: "d", at: 2*time.Hour + time.Minute, value: 1, want: domain.Fail, total: 2101},
		}, 1},
		{"quantity zero is judged on the session total", []step{
			{id: "a", value: 0, want: domain.Pass, total: 0},
			{id: "b", at: time.Minute, value: 2000, want: domain.Fail, total: 2000},
			{id: "c", at: 2 * time.Minute, value: 0, want: domain.Fail, total: 2000},
		}, 1},
		{"negative value does not lower the total", []step{
			{id: "a", value: 1999, want: domain.Pass, total: 1999},
			{id: "b", at: time.Minute, value: -500, want: domain.Pass, total: 1999},
			{id: "c", at: 2 * time.Minute, value: 1, want: domain.Fail, total: 2000},
		}, 1},
		{"a replayed PASS gets its verdict and counts once; a replayed FAIL is judged FAIL again", []step{
			{id: "a", value: 1500, want: domain.Pass, total: 1500},
			{id: "b", at: time.Minute, value: 600, want: domain.Fail, total: 2100},
			{id: "a", value: 1500, want: domain.Pass, total: 2100, replayed: true},
			{id: "b", at: time.Minute, value: 600, want: domain.Fail, total: 2700},
			{id: "c", at: 2 * time.Minute, value: 1, want: domain.Fail, total: 2701},
		}, 1},
		{"a replay is recognised in a merged session", []step{
			{id: "a", value: 100, want: domain.Pass, total: 100},
			{id: "b", at: 2 * time.Hour, value: 100, want: domain.Pass, total: 100},
			{id: "c", at: time.Hour, value: 100, want: domain.Pass, total: 300},
			{id: "b", at: 2 * time.Hour, value: 100, want: domain.Pass, total: 300, replayed: true},
		}, 1},
		{"sessions expire a day after their end; older orders are late", []step{
			{id: "a", value: 1900, want: domain.Pass, total: 1900},
			{id: "b", at: 25 * time.Hour, value: 100, want: domain.Pass, total: 100},
			{id: "c", at: 30 * time.Minute, value: 1900, want: domain.Fail, late: true},
			{id: "a", value: 1900, want: domain.Fail, late: true},
		}, 1},
		{"a session ending exactly at the horizon is kept", []step{
			{id: "a", value: 1900, want: domain.Pass, total: 1900},
			{id: "b", at: 24 * time.Hour, value: 100, want: domain.Pass, total: 100},
			{id: "a", value: 1900, want: domain.Pass, total: 1900, replayed: true},
		}, 2},
		{"totals are capped below infinity", []step{
			{id: "a", value: math.MaxFloat64, want: domain.Fail, total: math.MaxFloat64},
			{id: "b", at: time.Minute, value: math.MaxFloat64, want: domain.Fail, total: math.MaxFloat64},
		}, 1},
	}
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s fraud.CustomerSessions
			for i, st := range c.steps {
				v := s.Apply(st.id, base+st.at.Milliseconds(), st.value)
				if v.Result != st.want || v.Replayed != st.replayed || v.Late != st.late {
					t.Fatalf("step %d (%s): %+v, want %s replayed=%v late=%v", i, st.id, v, st.want, st.replayed, st.late)
				}
				if !st.late && v.Total != st.total {
					t.Fatalf("step %d (%s): total %v, want %v", i, st.id, v.Total, st.total)
				}
			}
			if len(s.Sessions) != c.sessions {
				t.Fatalf("%d sessions left, want %d: %+v", len(s.Sessions), c.sessions, s.Sessions)
			}
		})
	}
}

// Event times before 1970 (records without a timestamp read as the zero time) still form
// sessions: a fresh state must not take its zero LatestEventMs for stream time.
func TestApplyZeroTime(t *testing.T) {
	var s fraud.CustomerSessions
	zero := time.Time{}.UnixMilli()
	if v := s.Apply("a", zero, 1500); v.Result != domain.Pass || v.Late {
		t.Fatalf("first order at the zero time: %+v", v)
	}
	if v := s.Apply("b", zero, 600); v.Result != domain.Fail || v.Total != 2100 {
		t.Fatalf("second order at the zero time: %+v", v)
	}
}

// A customer ordering every two hours for days keeps only the sessions of the last day.
func TestApplyStateStaysBounded(t *testing.T) {
	var s fraud.CustomerSessions
	for i := 0; i < 24*7; i++ {
		s.Apply(strconv.Itoa(i), int64(i)*(2*time.Hour).Milliseconds(), 10)
	}
	if max := int(fraud.SessionRetention/(2*time.Hour)) + 1; len(s.Sessions) > max {
		t.Fatalf("%d sessions kept, want at most %d", len(s.Sessions), max)
	}
}
