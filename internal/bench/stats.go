package bench

import (
	"math"
	"slices"
	"time"
)

// Latency summarises a set of measured durations, in milliseconds so the JSON reads without
// unit conversions.
type Latency struct {
	Count  int     `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
}

// summarize sorts ds in place and returns its nearest-rank percentiles. Every sample is kept
// and sorted rather than bucketed: the runs are at most a few hundred thousand samples, and
// exact tails are what a latency benchmark is for.
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Latency{
		Count:  len(ds),
		MeanMs: ms(sum / time.Duration(len(ds))),
		P50Ms:  ms(percentile(ds, 0.50)),
		P90Ms:  ms(percentile(ds, 0.90)),
		P99Ms:  ms(percentile(ds, 0.99)),
		P999Ms: ms(percentile(ds, 0.999)),
		MaxMs:  ms(ds[len(ds)-1]),
	}
}

// percentile is the nearest-rank percentile q of sorted: the smallest sample with at least
// q of all samples at or below it.
func percentile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// ms converts to milliseconds with microsecond resolution.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// ratio is a/b rounded to two decimals, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*100) / 100
}
