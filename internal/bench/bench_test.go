package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/bench"
	"github.com/ordersys/ecosystem/internal/platform"
)

// TestMain lets the test binary serve the benchmark's service processes: the benchmark starts
// its own executable with bench.RoleEnv set, and under `go test` that executable is this one.
func TestMain(m *testing.M) {
	if role := os.Getenv(bench.RoleEnv); role != "" {
		if err := bench.ServeRole(context.Background(), role, os.Args[1:], os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmallRunEndToEnd runs every phase with tiny counts: the ecosystem in a child process,
// one-in-flight latency, the floor, a one-step sweep with profiles, reads on one and three
// instances and the goka-defaults baseline, then the table and the JSON file. It checks that
// each phase measured what it was asked to, never how fast. With -short it leaves out the two
// phases that cost seconds: the three-instance reads (two more instances join the group) and
// the baseline (a second ecosystem, 400 ms per order). The broker runs in a process of its
// own, the default.
func TestSmallRunEndToEnd(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Warmup = 2
	cfg.LatencyOrders = 5
	cfg.FloorRecords = 10
	cfg.NaiveOrders = 2
	cfg.Rates = []float64{40}
	cfg.StepDuration = 500 * time.Millisecond
	cfg.ReadDuration = 300 * time.Millisecond
	cfg.ReadClients = 2
	cfg.ProfileDir = t.TempDir()
	wantReads := []int{1, 3}
	if testing.Short() {
		cfg.ExtraInstances, cfg.NaiveOrders = 0, 0
		wantReads = wantReads[:1]
	}
	var logs bytes.Buffer
	cfg.Logs = &logs
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	res, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
	}

	if l := res.Latency; l == nil || l.EndToEnd.Count != 5 || l.Post.Count != 5 || l.Failed+l.Errors != 0 {
		t.Errorf("latency %+v: want 5 validated orders", l)
	}
	if f := res.Floor; f == nil || f.RoundTrip.Count != 10 {
		t.Errorf("floor %+v: want 10 records", f)
	}
	if res.RatioToFloor == nil {
		t.Error("no ratio to the floor")
	}
	if a := res.AfterSweep; a == nil || a.Latency.EndToEnd.Count != 5 || a.Latency.Failed+a.Latency.Errors != 0 || a.Floor.RoundTrip.Count != 10 || a.OrdersBefore < 25 {
		t.Errorf("after the sweep %+v: want 5 validated orders and 10 floor records after the sweep's 20", a)
	}
	if n := res.Naive; cfg.NaiveOrders > 0 && (n == nil || n.EndToEnd.Count != 2 || n.Failed+n.Errors != 0) {
		t.Errorf("naive baseline %+v (skipped: %q): want 2 validated orders", n, res.NaiveSkipped)
	}
	tp := res.Throughput
	if tp == nil || len(tp.Steps) != 1 || tp.ProfiledStep == nil {
		t.Fatalf("throughput %+v: want one step and a profiled one", tp)
	}
	for _, s := range []bench.Step{tp.Steps[0], *tp.ProfiledStep} {
		if s.Orders != 20 || s.Validated != 20 || s.Resources == nil {
			t.Errorf("step %+v: want 20 validated orders with resources measured", s)
		}
		checkPerOrder(t, s, true)
	}
	if len(res.Reads) != len(wantReads) {
		t.Fatalf("reads %+v: want them on %v instances", res.Reads, wantReads)
	}
	for i, want := range wantReads {
		rd := res.Reads[i]
		if rd.Instances != want || rd.Requests == 0 || rd.Errors != 0 || rd.ForwardedFraction == nil || rd.Resources == nil {
			t.Errorf("reads on %d instances: %+v", want, rd)
		}
	}
	if f := *res.Reads[0].ForwardedFraction; f != 0 {
		t.Errorf("one instance forwarded %v of its reads, want none", f)
	}
	for _, name := range []string{"throughput-services.pprof", "throughput-loadgen.pprof", "reads-services.pprof", "reads-loadgen.pprof"} {
		if st, err := os.Stat(filepath.Join(cfg.ProfileDir, name)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
	if len(res.Targets) != 4 {
		t.Errorf("targets %+v: want four", res.Targets)
	}

	var table bytes.Buffer
	if err := bench.WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Latency, one order in flight", "floor", "after the sweep", "goka defaults", "Throughput", "Cost per validated order", "Writes by topic", "Reads", "Targets"} {
		// Skipped, the baseline still has its row, saying why.
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	path := filepath.Join(t.TempDir(), "results.json")
	if err := bench.WriteJSON(path, res); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results JSON does not read back: %v", err)
	}
	if back.Latency == nil || back.Latency.EndToEnd != res.Latency.EndToEnd {
		t.Errorf("results JSON lost the latency: %+v", back.Latency)
	}
}

// checkPerOrder checks that a step's cost per order was measured: the services' CPU, the
// broker's when it runs apart, and the writes by topic, with at least the CREATED and the
// decision on `orders` and the three verdicts on `order-validations` per order.
func checkPerOrder(t *testing.T, s bench.Step, brokerApart bool) {
	t.Helper()
	c := s.PerOrder
	if c == nil {
		t.Fatalf("step %.0f/s: no cost per order", s.TargetRate)
	}
	if c.ServicesCPUMs <= 0 || (c.BrokerCPUMs != nil) != brokerApart {
		t.Errorf("step %.0f/s: CPU per order %+v (broker apart: %v)", s.TargetRate, c, brokerApart)
	}
	per := map[string]float64{}
	for _, tw := range c.Topics {
		per[tw.Topic] = tw.RecordsPerOrder
		if tw.Records > 0 && tw.Bytes == 0 && tw.Topic == "orders" {
			t.Errorf("topic %s: %d records of no bytes", tw.Topic, tw.Records)
		}
	}
	if per["orders"] < 2 || per["order-validations"] < 3 || c.Bytes <= 0 {
		t.Errorf("step %.0f/s: writes per order %+v: want ≥ 2 on orders, ≥ 3 on order-validations", s.TargetRate, c.Topics)
	}
	// Every order is paid for and its customer exists, so the Email service joins and enriches
	// (the last orders' enrichment may land after the step's count).
	enriched := 0.0
	for _, topic := range platform.LevelTopics {
		enriched += per[string(topic)]
	}
	if per["payments"] < 1 || enriched == 0 {
		t.Errorf("step %.0f/s: writes per order %+v: want ≥ 1 on payments and enriched orders on the level topics", s.TargetRate, c.Topics)
	}
	// The broker in its own process counts requests: every order is produced at least twice
	// (CREATED, the decision) and read by several groups.
	if brokerApart && (c.BrokerRequestsByAPI["Produce"] < 2 || c.BrokerRequestsByAPI["Fetch"] < 1) {
		t.Errorf("step %.0f/s: broker requests per order %v", s.TargetRate, c.BrokerRequestsByAPI)
	}
}

// TestBrokerInsideTheServicesProcess is the all-in-one figure: the embedded broker inside the
// services process, its CPU part of the services'.
func TestBrokerInsideTheServicesProcess(t *testing.T) {
	cfg := bench.DefaultConfig()
	cfg.Broker = bench.BrokerInside
	cfg.Warmup, cfg.LatencyOrders, cfg.FloorRecords, cfg.NaiveOrders = 1, 2, 2, 0
	cfg.Rates, cfg.StepDuration = []float64{40}, 500*time.Millisecond
	cfg.ReadDuration = 0
	var logs bytes.Buffer
	cfg.Logs = &logs
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
	}
	if !strings.Contains(res.Broker, "inside the services process") {
		t.Errorf("broker %q", res.Broker)
	}
	if tp := res.Throughput; tp == nil || len(tp.Steps) != 1 {
		t.Fatalf("throughput %+v: want one step", tp)
	}
	checkPerOrder(t, res.Throughput.Steps[0], false)
}

// TestFlagsRejectHalfAnExternalTarget checks that --url and --brokers come together, and that
// TLS and SASL settings come with them (the broker the benchmark starts is plaintext).
func TestFlagsRejectHalfAnExternalTarget(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{{"--url", "http://127.0.0.1:1"}, {"--brokers", "127.0.0.1:1"}, {"--rates", "200,100"}, {"--broker", "elsewhere"},
		{"--tls"}, {"--sasl-mechanism", "PLAIN", "--sasl-username", "a"}} {
		stderr.Reset()
		if code := bench.Main(context.Background(), args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage error); stderr: %s", args, code, stderr.String())
		}
	}
}
