package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Results is everything one run measured; it is what the JSON file holds.
type Results struct {
	StartedAt time.Time `json:"startedAt"`
	DurationS float64   `json:"durationS"`
	Machine   Machine   `json:"machine"`
	// Services says what was measured and where it ran; Broker which broker it ran on.
	Services   string `json:"services"`
	Broker     string `json:"broker"`
	Partitions int    `json:"partitions"`

	Latency *OneInFlight `json:"latency,omitempty"`
	Floor   *Floor       `json:"floor,omitempty"`
	// RatioToFloor is the one-in-flight latency over the floor's round trip, per percentile.
	RatioToFloor *FloorRatio `json:"ratioToFloor,omitempty"`
	// Naive is Latency with goka's default producer flush; NaiveSkipped says why it is absent.
	Naive        *OneInFlight `json:"naive,omitempty"`
	NaiveSkipped string       `json:"naiveSkipped,omitempty"`
	Throughput   *Throughput  `json:"throughput,omitempty"`
	// AfterSweep is one order in flight and the floor measured again once the sweep is over,
	// on the state it left behind: a latency that grew with the orders taken shows here apart
	// from the load, and the floor says whether the broker or the services grew slower.
	AfterSweep *AfterSweep `json:"afterSweep,omitempty"`
	Reads      []Reads     `json:"reads,omitempty"`
	Targets    []Target    `json:"targets,omitempty"`
}

// AfterSweep is Latency and Floor again after the throughput sweep.
type AfterSweep struct {
	OrdersBefore int `json:"ordersBefore"` // orders posted to the ecosystem before it
	// SettleS is how long the services took to read everything written before it began.
	SettleS float64     `json:"settleS"`
	Latency OneInFlight `json:"latency"`
	Floor   Floor       `json:"floor"`
	// Error says why it is incomplete; empty when it is not.
	Error string `json:"error,omitempty"`
}

// FloorRatio compares the pipeline with the broker alone.
type FloorRatio struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUModel     string  `json:"cpuModel"`
	CPUs         int     `json:"cpus"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	MemTotalGiB  float64 `json:"memTotalGiB"`
	Kernel       string  `json:"kernel"`
	GoVersion    string  `json:"goVersion"`
	LoadAvgStart string  `json:"loadAvgStart"` // /proc/loadavg 1, 5, 15 minutes
	LoadAvgEnd   string  `json:"loadAvgEnd"`
}

// Target is one of the project's speed goals and whether the run met it.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// runner is one run's shared state.

func targets(res *Results) []Target {
	var ts []Target
	if l := res.Latency; l != nil {
		ts = append(ts,
			Target{Name: "one in flight, p50", Goal: "≤ 2 ms", Measured: fmt.Sprintf("%.2f ms", l.EndToEnd.P50Ms), Met: l.EndToEnd.P50Ms <= 2},
			Target{Name: "one in flight, p99", Goal: "≤ 5 ms", Measured: fmt.Sprintf("%.2f ms", l.EndToEnd.P99Ms), Met: l.EndToEnd.P99Ms <= 5})
	}
	if tp := res.Throughput; tp != nil {
		ts = append(ts, Target{Name: "validated orders/s with p99 ≤ 100 ms", Goal: "≥ 5000/s",
			Measured: fmt.Sprintf("%.0f/s", tp.MaxPassingRate), Met: tp.MaxPassingRate >= 5000})
	}
	if len(res.Reads) > 0 {
		ts = append(ts, Target{Name: "local GETs/s, one instance", Goal: "≥ 20000/s",
			Measured: fmt.Sprintf("%.0f/s", res.Reads[0].RatePerS), Met: res.Reads[0].RatePerS >= 20000})
	}
	return ts
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				m.MemTotalGiB = round2(kb / (1 << 20))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load averages, or "" where /proc has none.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// lockedWriter serialises writes to w.
