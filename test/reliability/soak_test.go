package reliability

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// soakDurationEnv overrides the soak's length (a Go duration), for trying the test out.
const soakDurationEnv = "ORDERSYS_SOAK_DURATION"

// soakSample is one scrape of one service's process metrics.
type soakSample struct {
	at         time.Duration // since the load started
	goroutines float64
	rssBytes   float64
	heapBytes  float64
}

// Scenario 6: a soak at a moderate rate with every order read back, then the promises of the
// crash scenarios, and memory and goroutines flat at the end: each service's goroutine count
// and resident memory at the end are compared with their level once warmed up (the median of
// the samples in the second fifth of the run), so that caches filling up at start do not
// count as growth, and growth that continues to the end does.
func TestSoak(t *testing.T) {
	suiteMode(t, modeSoak)
	duration := 10 * time.Minute
	if v := os.Getenv(soakDurationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", soakDurationEnv, v, err)
		}
		duration = d
	}
	const rate = 20
	c := newCluster(t, 4)
	expected := int32(rate * duration.Seconds() * 2 / 3) // units per product at 2 per order
	stock := sampleStock(expected*3/4, expected/3)
	known := c.seed(stock)
	svcs := c.startEcosystem()

	samples := map[string][]soakSample{}
	scrape := func(at time.Duration) {
		for _, kind := range serviceKinds {
			m, err := scrapeMetrics(svcs[kind])
			if err != nil {
				t.Errorf("scrape %s at %v: %v", kind, at, err)
				continue
			}
			samples[kind] = append(samples[kind], soakSample{at: at, goroutines: m["go_goroutines"],
				rssBytes: m["process_resident_memory_bytes"], heapBytes: m["go_memstats_heap_inuse_bytes"]})
		}
	}
	start := time.Now()
	load := c.startLoadReading([]string{svcs[kindOrders].url()}, rate, "soak", newOrderMix(t, known), true)
	scrape(0)
	interval := duration / 20
	for time.Since(start) < duration {
		time.Sleep(interval)
		scrape(time.Since(start))
		attempted, accepted := load.progress()
		t.Logf("soak %v: %d orders, %d accepted", time.Since(start).Round(time.Second), attempted, accepted)
	}
	placements := load.stop()
	// The last sample: the load has stopped and every in-flight request has finished.
	time.Sleep(5 * time.Second)
	scrape(time.Since(start))

	readBack := map[int]int{}
	for _, p := range placements {
		if p.accepted() {
			readBack[p.readStatus]++
			if p.readStatus != http.StatusOK {
				t.Errorf("order %s accepted but read back with %d: %s", p.order.ID, p.readStatus, p.err)
			}
		}
	}
	t.Logf("read-back statuses of accepted orders: %v", readBack)
	latencies := latencyByFifth(placements, start, duration)
	for _, l := range latencies {
		t.Logf("orders started in %s: POST p50 %v p99 %v; decided (POST to VALIDATED/FAILED read back) p50 %v p99 %v",
			l.Window, l.PostP50, l.PostP99, l.DecidedP50, l.DecidedP99)
	}
	c.settle("soak", placements, stock, known, 2*time.Minute, svcs[kindEmail])
	c.checkAlive()
	tables := c.tableSizes()

	type growth struct {
		Service        string `json:"service"`
		GoroutinesWarm int    `json:"goroutinesWarm"`
		GoroutinesEnd  int    `json:"goroutinesEnd"`
		GoroutinesMax  int    `json:"goroutinesMax"`
		RSSWarmMiB     int    `json:"rssWarmMiB"`
		RSSEndMiB      int    `json:"rssEndMiB"`
		RSSMaxMiB      int    `json:"rssMaxMiB"`
		HeapWarmMiB    int    `json:"heapWarmMiB"`
		HeapEndMiB     int    `json:"heapEndMiB"`
	}
	report := struct {
		Scenario  string         `json:"scenario"`
		Duration  string         `json:"duration"`
		Rate      int            `json:"ratePerSecond"`
		Services  []growth       `json:"services"`
		Latencies []fifthLatency `json:"latencies"`
		Tables    []tableSize    `json:"tables"`
	}{Scenario: "soak", Duration: duration.String(), Rate: rate, Latencies: latencies, Tables: tables}
	const mib = 1 << 20
	for _, kind := range serviceKinds {
		ss := samples[kind]
		if len(ss) < 5 {
			t.Errorf("%s: only %d samples", kind, len(ss))
			continue
		}
		warm := warmLevel(ss, duration)
		end := ss[len(ss)-1]
		g := growth{Service: kind,
			GoroutinesWarm: int(warm.goroutines), GoroutinesEnd: int(end.goroutines),
			RSSWarmMiB: int(warm.rssBytes / mib), RSSEndMiB: int(end.rssBytes / mib),
			HeapWarmMiB: int(warm.heapBytes / mib), HeapEndMiB: int(end.heapBytes / mib)}
		for _, s := range ss {
			g.GoroutinesMax = max(g.GoroutinesMax, int(s.goroutines))
			g.RSSMaxMiB = max(g.RSSMaxMiB, int(s.rssBytes/mib))
		}
		report.Services = append(report.Services, g)
		// Goroutines: a handful more at the end would be a leak of one per something rare;
		// a leak per request or per order shows up as hundreds.
		if end.goroutines > warm.goroutines*1.2+10 {
			t.Errorf("%s: %v goroutines at the end, %v once warm: goroutines grow", kind, end.goroutines, warm.goroutines)
		}
		// Memory: the Go heap may vary with GC timing and LevelDB's buffers; resident memory
		// growing by half again after warm-up is growth, not noise.
		if end.rssBytes > warm.rssBytes*1.5+16*mib {
			t.Errorf("%s: %.0f MiB resident at the end, %.0f MiB once warm: memory grows", kind, end.rssBytes/mib, warm.rssBytes/mib)
		}
	}
	logReport(t, report)
	for _, kind := range serviceKinds {
		var line string
		for _, s := range samples[kind] {
			line += fmt.Sprintf(" %v:%dg/%.0fMiB", s.at.Round(time.Second), int(s.goroutines), s.rssBytes/mib)
		}
		t.Logf("%s samples:%s", kind, line)
	}
}

// tableSize is how much a group table topic holds: its records, their bytes, and the
// largest value, which must stay below the broker's message size limit (1 MiB by default in
// Kafka) for the service to be able to write it.
type tableSize struct {
	Topic      string `json:"topic"`
	Records    int    `json:"records"`
	TotalMiB   int    `json:"totalMiB"`
	LargestKiB int    `json:"largestValueKiB"`
	LargestKey string `json:"largestValueKey"`
}

// tableSizes measures every group table topic.
func (c *cluster) tableSizes() []tableSize {
	var out []tableSize
	for _, g := range []goka.Group{platform.GroupOrders, platform.GroupValidation, platform.GroupFraud, platform.GroupInventory, platform.GroupEmail} {
		ts := tableSize{Topic: string(goka.GroupTable(c.names.Group(g)))}
		var total, largest int
		c.scanTopic(ts.Topic, func(r *kgo.Record) {
			ts.Records++
			total += len(r.Value)
			if len(r.Value) > largest {
				largest, ts.LargestKey = len(r.Value), fmt.Sprintf("%q", r.Key)
			}
		})
		ts.TotalMiB, ts.LargestKiB = total>>20, largest>>10
		out = append(out, ts)
	}
	return out
}

// fifthLatency is the latency of the orders started in one fifth of the soak.
type fifthLatency struct {
	Window     string `json:"window"`
	PostP50    string `json:"postP50"`
	PostP99    string `json:"postP99"`
	DecidedP50 string `json:"decidedP50"`
	DecidedP99 string `json:"decidedP99"`
}

// latencyByFifth shows whether the ecosystem slows down as its state grows.
func latencyByFifth(placements []*placement, start time.Time, duration time.Duration) []fifthLatency {
	var out []fifthLatency
	for i := 0; i < 5; i++ {
		from, to := start.Add(duration*time.Duration(i)/5), start.Add(duration*time.Duration(i+1)/5)
		var post, decided []time.Duration
		for _, p := range placements {
			if p.accepted() && !p.at.Before(from) && p.at.Before(to) {
				post = append(post, p.took)
				if p.readStatus == http.StatusOK {
					decided = append(decided, p.readTook)
				}
			}
		}
		out = append(out, fifthLatency{
			Window:  fmt.Sprintf("%v-%v", (duration * time.Duration(i) / 5).Round(time.Second), (duration * time.Duration(i+1) / 5).Round(time.Second)),
			PostP50: percentile(post, 50), PostP99: percentile(post, 99),
			DecidedP50: percentile(decided, 50), DecidedP99: percentile(decided, 99),
		})
	}
	return out
}

func percentile(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	sorted := append([]time.Duration(nil), ds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[(len(sorted)-1)*p/100].Round(100 * time.Microsecond).String()
}

// warmLevel is the median of the samples taken in the second fifth of the run.
func warmLevel(ss []soakSample, duration time.Duration) soakSample {
	var window []soakSample
	for _, s := range ss {
		if s.at >= duration/5 && s.at <= 2*duration/5 {
			window = append(window, s)
		}
	}
	if len(window) == 0 {
		window = ss[:1]
	}
	median := func(get func(soakSample) float64) float64 {
		vs := make([]float64, len(window))
		for i, s := range window {
			vs[i] = get(s)
		}
		sort.Float64s(vs)
		if len(vs)%2 == 1 {
			return vs[len(vs)/2]
		}
		return math.Round((vs[len(vs)/2-1] + vs[len(vs)/2]) / 2)
	}
	return soakSample{
		goroutines: median(func(s soakSample) float64 { return s.goroutines }),
		rssBytes:   median(func(s soakSample) float64 { return s.rssBytes }),
		heapBytes:  median(func(s soakSample) float64 { return s.heapBytes }),
	}
}
