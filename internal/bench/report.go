package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes res, indented, to path.
func WriteJSON(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// WriteTable prints res as the tables of docs/benchmarks.md (Markdown, readable as text).
func WriteTable(w io.Writer, res *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(tw, format+"\n", args...) }
	m := res.Machine
	_, _ = fmt.Fprintf(w, "Machine: %s, %d CPUs (GOMAXPROCS %d), %.1f GiB, Linux %s, %s; load average at start %s, at end %s\n",
		m.CPUModel, m.CPUs, m.GOMAXPROCS, m.MemTotalGiB, m.Kernel, m.GoVersion, m.LoadAvgStart, m.LoadAvgEnd)
	_, _ = fmt.Fprintf(w, "Services: %s; %d partitions per topic. Run took %.0f s.\n", res.Services, res.Partitions, res.DurationS)
	_, _ = fmt.Fprintf(w, "Broker: %s.\n\n", res.Broker)

	_, _ = fmt.Fprintln(w, "Latency, one order in flight: POST /v1/orders, then GET /v1/orders/{id}/validated (ms)")
	p("| case\t n\t p50\t p90\t p99\t p99.9\t max\t failed/errors\t services CPU\t load gen CPU\t other CPU\t")
	p("|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	latRow := func(name string, l Latency, bad string, r *Resources) {
		cpu, lg, other := resourceCells(r)
		p("| %s\t %d\t %.2f\t %.2f\t %.2f\t %.2f\t %.2f\t %s\t %s\t %s\t %s\t", name, l.Count, l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs, bad, cpu, lg, other)
	}
	if l := res.Latency; l != nil {
		latRow("tuned (flush 0): POST + GET validated", l.EndToEnd, fmt.Sprintf("%d/%d", l.Failed, l.Errors), l.Resources)
		latRow("tuned: POST alone (acks=all)", l.Post, "", nil)
	}
	if f := res.Floor; f != nil {
		latRow("floor: franz-go produce → consume", f.RoundTrip, "", f.Resources)
	}
	if q := res.RatioToFloor; q != nil {
		p("| ratio tuned / floor\t \t ×%.1f\t \t ×%.1f\t \t \t \t \t \t \t", q.P50, q.P99)
	}
	if a := res.AfterSweep; a != nil && a.Error == "" {
		l := a.Latency
		latRow(fmt.Sprintf("after the sweep (%d orders taken, settled in %.1f s): POST + GET validated", a.OrdersBefore, a.SettleS), l.EndToEnd, fmt.Sprintf("%d/%d", l.Failed, l.Errors), l.Resources)
		latRow("after the sweep: floor", a.Floor.RoundTrip, "", a.Floor.Resources)
	} else if a != nil {
		p("| after the sweep: not measured (%s)\t \t \t \t \t \t \t \t \t \t \t", a.Error)
	}
	if l := res.Naive; l != nil {
		latRow("goka defaults (flush 100 ms): POST + GET validated", l.EndToEnd, fmt.Sprintf("%d/%d", l.Failed, l.Errors), l.Resources)
		latRow("goka defaults: POST alone", l.Post, "", nil)
	} else if res.NaiveSkipped != "" {
		p("| goka defaults: skipped (%s)\t \t \t \t \t \t \t \t \t \t \t", res.NaiveSkipped)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}

	if tp := res.Throughput; tp != nil {
		_, _ = fmt.Fprintf(w, "\nThroughput, open loop (latency from each order's scheduled start to its verdict, ms; CPU in cores, RSS in MiB)\n")
		p("| target/s\t orders before\t achieved/s\t orders\t failed/errors\t p50\t p90\t p99\t p99.9\t max\t services CPU\t services RSS peak\t load gen CPU\t other CPU\t p99 ≤ %.0f ms\t", tp.P99LimitMs)
		p("|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
		row := func(s Step, note string) {
			cpu, lg, other := resourceCells(s.Resources)
			rss := "-"
			if r := s.Resources; r != nil {
				rss = fmt.Sprintf("%.0f", r.ServicesRSSPeakMiB)
				if r.BrokerRSSPeakMiB != nil {
					rss += fmt.Sprintf(" (broker %.0f)", *r.BrokerRSSPeakMiB)
				}
			}
			l := s.Latency
			p("| %.0f%s\t %d\t %.0f\t %d\t %d/%d\t %.2f\t %.2f\t %.2f\t %.2f\t %.2f\t %s\t %s\t %s\t %s\t %s\t",
				s.TargetRate, note, s.OrdersBefore, s.AchievedRate, s.Orders, s.Failed, s.Errors, l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs,
				cpu, rss, lg, other, yesNo(s.Pass))
		}
		for _, s := range tp.Steps {
			row(s, "")
		}
		if s := tp.ProfiledStep; s != nil {
			row(*s, " (profiled)")
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
		_, _ = fmt.Fprintf(w, "Highest rate with p99 ≤ %.0f ms: %.0f orders/s\n", tp.P99LimitMs, tp.MaxPassingRate)
		if err := writeCosts(w, tw, tp); err != nil {
			return err
		}
	}

	if len(res.Reads) > 0 {
		_, _ = fmt.Fprintf(w, "\nReads: GET /v1/orders/{id}, closed loop (ms; CPU in cores)\n")
		p("| instances\t clients\t requests/s\t errors\t p50\t p90\t p99\t p99.9\t max\t forwarded\t services CPU\t load gen CPU\t other CPU\t")
		p("|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
		for _, rd := range res.Reads {
			fwd := "-"
			if rd.ForwardedFraction != nil {
				fwd = fmt.Sprintf("%.0f%%", *rd.ForwardedFraction*100)
			}
			cpu, lg, other := resourceCells(rd.Resources)
			l := rd.Latency
			p("| %d\t %d\t %.0f\t %d\t %.3f\t %.3f\t %.3f\t %.3f\t %.3f\t %s\t %s\t %s\t %s\t",
				rd.Instances, rd.Clients, rd.RatePerS, rd.Errors, l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs, fwd, cpu, lg, other)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}

	if len(res.Targets) > 0 {
		_, _ = fmt.Fprintf(w, "\nTargets\n")
		p("| target\t goal\t measured\t met\t")
		p("|---\t---\t---\t---\t")
		for _, t := range res.Targets {
			p("| %s\t %s\t %s\t %s\t", t.Name, t.Goal, t.Measured, yesNo(t.Met))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	return nil
}

// writeCosts prints each step's cost per validated order, and the writes by topic of the
// highest passing step (the first step when none passed).
func writeCosts(w io.Writer, tw *tabwriter.Writer, tp *Throughput) error {
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(tw, format+"\n", args...) }
	var shown *Step
	for i := range tp.Steps {
		if s := &tp.Steps[i]; s.PerOrder != nil && (shown == nil || s.Pass) {
			shown = s
		}
	}
	if shown == nil {
		return nil
	}
	_, _ = fmt.Fprintf(w, "\nCost per validated order (CPU ms; records and bytes written to Kafka, all topics)\n")
	p("| target/s\t services CPU\t broker CPU\t broker requests\t records\t bytes\t")
	p("|---\t---\t---\t---\t---\t---\t")
	for _, s := range tp.Steps {
		if c := s.PerOrder; c != nil {
			broker, requests := "inside services", "-"
			if c.BrokerCPUMs != nil {
				broker = fmt.Sprintf("%.2f", *c.BrokerCPUMs)
			}
			if c.BrokerRequestsByAPI != nil {
				requests = fmt.Sprintf("%.1f (%s)", c.BrokerRequests, topAPIs(c.BrokerRequestsByAPI, 3))
			}
			p("| %.0f\t %.2f\t %s\t %s\t %.1f\t %.0f\t", s.TargetRate, c.ServicesCPUMs, broker, requests, c.Records, c.Bytes)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	_, _ = fmt.Fprintf(w, "\nWrites by topic per validated order, step %.0f/s\n", shown.TargetRate)
	p("| topic\t records\t bytes\t records/order\t bytes/order\t")
	p("|---\t---\t---\t---\t---\t")
	for _, t := range shown.PerOrder.Topics {
		p("| %s\t %d\t %d\t %.2f\t %.0f\t", t.Topic, t.Records, t.Bytes, t.RecordsPerOrder, t.BytesPerOrder)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// topAPIs names the n APIs with the most requests per order, with their counts.
func topAPIs(byAPI map[string]float64, n int) string {
	apis := make([]string, 0, len(byAPI))
	for api := range byAPI {
		apis = append(apis, api)
	}
	sort.Slice(apis, func(i, j int) bool {
		if byAPI[apis[i]] != byAPI[apis[j]] {
			return byAPI[apis[i]] > byAPI[apis[j]]
		}
		return apis[i] < apis[j]
	})
	parts := make([]string, 0, n)
	for _, api := range apis[:min(n, len(apis))] {
		parts = append(parts, fmt.Sprintf("%s %.1f", api, byAPI[api]))
	}
	return strings.Join(parts, ", ")
}

// resourceCells formats the CPU figures of a window, "-" when not measured.
func resourceCells(r *Resources) (services, loadgen, other string) {
	if r == nil {
		return "-", "-", "-"
	}
	other = fmt.Sprintf("%.2f", r.OtherCPUCores)
	if r.BrokerCPUCores != nil {
		other = fmt.Sprintf("broker %.2f + %.2f", *r.BrokerCPUCores, r.OtherCPUCores)
	}
	return fmt.Sprintf("%.2f", r.ServicesCPUCores), fmt.Sprintf("%.2f", r.LoadgenCPUCores), other
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
