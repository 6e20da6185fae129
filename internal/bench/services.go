package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/ordersys/ecosystem/internal/ecosystem"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/service"
)

// RoleEnv names the environment variable that turns the benchmark's executable into one of
// its service processes. The benchmark starts itself again with it set, so the services run
// in a process of their own: their CPU and memory can be read from /proc apart from the load
// generator's, and the two do not share a heap, a garbage collector or a scheduler.
const RoleEnv = "ORDERSYS_BENCH_ROLE"

// The service process roles.
const (
	// roleEcosystem runs the embedded broker and the whole ecosystem (internal/ecosystem).
	roleEcosystem = "ecosystem"
	// roleOrders runs extra Orders instances against an existing broker, for the read test.
	roleOrders = "orders"
	// roleBroker runs the embedded broker alone (BrokerProcess).
	roleBroker = "broker"
)

// readyLine is the one JSON line a service process prints on stdout once it is ready.
type readyLine struct {
	URLs    []string `json:"urls"`    // Orders REST base URLs
	Brokers []string `json:"brokers"` // bootstrap addresses
	Pprof   string   `json:"pprof"`   // host:port of net/http/pprof
	PID     int      `json:"pid"`
	// Requests is the broker role's URL of its request counts (JSON, by API name).
	Requests string `json:"requests,omitempty"`
}

// ServeRole runs the service process role (the value of RoleEnv) until ctx ends or stdin is
// closed: the parent closes stdin to stop it, and a parent that dies closes it too, so a
// service process never outlives its benchmark.
func ServeRole(ctx context.Context, role string, args []string, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	switch role {
	case roleEcosystem:
		return serveEcosystem(ctx, args, stdout)
	case roleOrders:
		return serveOrders(ctx, args, stdout)
	case roleBroker:
		return serveBroker(ctx, args, stdout)
	default:
		return fmt.Errorf("serve role: unknown role %q in %s", role, RoleEnv)
	}
}

// serveEcosystem runs internal/ecosystem on a fresh embedded broker in a data directory.
func serveEcosystem(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(roleEcosystem, flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "directory for the broker's data and the services' state")
	partitions := fs.Int("partitions", platform.DefaultConfig().Partitions, "partitions of every topic")
	gokaFlush := fs.Bool("goka-flush-defaults", false, "run with goka's default producer flush (100 ms / 64 KiB)")
	logLevel := fs.String("log-level", "warn", "log level of the services")
	brokers := fs.String("brokers", "", "run on this Kafka instead of an embedded broker")
	prefix := fs.String("topic-prefix", "", "topic and group prefix on --brokers")
	producer := fs.String("producer", platform.ProducerFranz, "client the stream processors write with: franz-go or sarama")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("serve ecosystem: %w", err)
	}
	if _, err := platform.NewLogger(os.Stderr, "text", *logLevel); err != nil {
		return fmt.Errorf("serve ecosystem: %w", err)
	}
	cfg := ecosystem.DefaultConfig()
	cfg.DataDir = *dataDir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.BrokerAddr = "127.0.0.1:0"
	cfg.Seed = false // the benchmark writes its own, plentiful stock
	cfg.Kafka.Partitions = *partitions
	cfg.Kafka.LogLevel = *logLevel
	cfg.Kafka.Brokers = platform.SplitList(*brokers)
	cfg.Kafka.TopicPrefix = *prefix
	cfg.Kafka.Producer = *producer
	if *gokaFlush {
		cfg.Kafka.Sarama = gokaFlushConfig(cfg.Kafka.ClientID)
		cfg.Kafka.Producer = platform.ProducerSarama // the flush defaults are sarama's
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("serve ecosystem: %w", err)
	}
	eco, err := ecosystem.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("serve ecosystem: %w", err)
	}
	pprofAddr, stopPprof, err := servePprof()
	if err != nil {
		return fmt.Errorf("serve ecosystem: %w", err)
	}
	defer stopPprof()
	err = eco.Run(ctx, func(i ecosystem.Info) {
		writeReady(stdout, readyLine{URLs: []string{"http://" + i.HTTPAddr}, Brokers: i.Brokers, Pprof: pprofAddr, PID: os.Getpid()})
	})
	if err != nil {
		return fmt.Errorf("serve ecosystem: %w", err)
	}
	return nil
}

// gokaFlushConfig is the project's sarama configuration with the producer flush settings of
// goka.DefaultConfig put back (flush every 100 ms or 64 KiB): the naive baseline.
func gokaFlushConfig(clientID string) *sarama.Config {
	cfg := platform.SaramaConfig(clientID)
	cfg.Producer.Flush = goka.DefaultConfig().Producer.Flush
	return cfg
}

// serveOrders runs extra Orders instances (view only: the ecosystem's instance keeps the
// validations aggregator) on an existing broker and namespace.
func serveOrders(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(roleOrders, flag.ContinueOnError)
	kcfg := platform.DefaultConfig()
	kcfg.RegisterFlags(fs)
	instances := fs.Int("instances", 2, "Orders instances to run")
	if err := platform.Parse(fs, args); err != nil {
		return fmt.Errorf("serve orders: %w", err)
	}
	if err := kcfg.Validate(); err != nil {
		return fmt.Errorf("serve orders: %w", err)
	}
	if err := platform.CheckCluster(ctx, kcfg); err != nil {
		return fmt.Errorf("serve orders: %w", err)
	}
	if _, err := platform.NewLogger(os.Stderr, "text", kcfg.LogLevel); err != nil {
		return fmt.Errorf("serve orders: %w", err)
	}
	var svcs []*orders.Service
	for i := range *instances {
		cfg := orders.DefaultConfig()
		cfg.Kafka = kcfg
		cfg.Kafka.StateDir = filepath.Join(kcfg.StateDir, fmt.Sprintf("orders-%d", i))
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.Aggregator = false
		cfg.Instance = fmt.Sprintf("bench-extra-%d", i)
		svc, err := orders.New(ctx, cfg)
		if err != nil {
			return fmt.Errorf("serve orders: instance %d: %w", i, err)
		}
		svcs = append(svcs, svc)
	}
	pprofAddr, stopPprof, err := servePprof()
	if err != nil {
		return fmt.Errorf("serve orders: %w", err)
	}
	defer stopPprof()

	g, gctx := service.NewGroup(ctx)
	ready := readyLine{Brokers: kcfg.Brokers, Pprof: pprofAddr, PID: os.Getpid()}
	for i, svc := range svcs {
		g.Go(fmt.Sprintf("orders instance %d", i), svc.Run)
		ready.URLs = append(ready.URLs, "http://"+svc.Addr())
	}
	g.Go("readiness", func(ctx context.Context) error {
		var checks []func() error
		for _, svc := range svcs {
			checks = append(checks, svc.Health.Ready)
		}
		if service.WaitReady(ctx, checks...) == nil {
			writeReady(stdout, ready)
		}
		return nil
	})
	<-gctx.Done()
	if err := g.Wait(); err != nil {
		return fmt.Errorf("serve orders: %w", err)
	}
	return nil
}

// servePprof serves net/http/pprof on a loopback port of its own, apart from the REST API, so
// the benchmark (or someone watching a long run) can take CPU profiles, heap profiles and
// execution traces of the services or the broker while it loads them.
func servePprof() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func writeReady(w io.Writer, r readyLine) {
	b, _ := json.Marshal(r)
	_, _ = fmt.Fprintf(w, "%s\n", b)
}

// servicesProcess is a running service process, seen from the benchmark.
type servicesProcess struct {
	role  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready readyLine
	done  chan struct{}
	err   error // of cmd.Wait, set before done closes

	stopOnce sync.Once
	stopErr  error
}

// startServices starts self in role with args and waits until it reports ready. Its stderr
// (the services' logs) goes to logs.
func startServices(ctx context.Context, self, role string, args []string, logs io.Writer, timeout time.Duration) (*servicesProcess, error) {
	p := &servicesProcess{role: role, done: make(chan struct{})}
	readyc := make(chan readyLine, 1)
	p.cmd = exec.Command(self, args...)
	p.cmd.Env = append(os.Environ(), RoleEnv+"="+role)
	p.cmd.Stdout = &readyWriter{ready: readyc, rest: logs}
	p.cmd.Stderr = logs
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s process: %w", role, err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s process: %w", role, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case p.ready = <-readyc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("start %s process: exited before it was ready: %v", role, p.err)
	case <-timer.C:
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("start %s process: not ready after %v", role, timeout)
	case <-ctx.Done():
		_ = p.stop(10 * time.Second)
		return nil, fmt.Errorf("start %s process: %w", role, ctx.Err())
	}
}

// stop closes the process's stdin, which makes it shut down cleanly, and kills it if it has
// not exited within grace. Later calls return the first call's result.
func (p *servicesProcess) stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.terminate(grace) })
	return p.stopErr
}

func (p *servicesProcess) terminate(grace time.Duration) error {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("stop %s process: killed after %v", p.role, grace)
	}
	if p.err != nil {
		return fmt.Errorf("stop %s process: %w", p.role, p.err)
	}
	return nil
}

// exited reports whether the process has ended (it must not during a measurement).
func (p *servicesProcess) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s process exited: %v", p.role, p.err)
	default:
		return nil
	}
}

// readyWriter takes the first line of a service process's stdout as its ready line and passes
// everything after it on.
type readyWriter struct {
	ready chan<- readyLine
	rest  io.Writer

	mu   sync.Mutex
	buf  []byte
	done bool
}

func (w *readyWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return w.rest.Write(b)
	}
	w.buf = append(w.buf, b...)
	line, rest, found := bytes.Cut(w.buf, []byte("\n"))
	if !found {
		return len(b), nil
	}
	w.done = true
	var r readyLine
	if err := json.Unmarshal(line, &r); err != nil {
		// Not a ready line: show it, and let the start-up time out with the logs visible.
		_, _ = fmt.Fprintf(w.rest, "unexpected service output: %s\n", line)
	} else {
		w.ready <- r
	}
	if len(rest) > 0 {
		_, _ = w.rest.Write(rest)
	}
	return len(b), nil
}

// ecosystemArgs are the arguments of an ecosystem process.
func ecosystemArgs(dataDir string, partitions int, gokaFlush bool, producer string) []string {
	args := []string{
		"--data-dir", dataDir,
		"--partitions", strconv.Itoa(partitions),
		"--goka-flush-defaults=" + strconv.FormatBool(gokaFlush),
	}
	if producer != "" {
		args = append(args, "--producer", producer)
	}
	return args
}

// ordersArgs are the arguments of an extra-Orders process on cfg's broker and namespace.
func ordersArgs(cfg platform.Config, stateDir string, instances int) []string {
	args := []string{
		"--brokers", strings.Join(cfg.Brokers, ","),
		"--state-dir", stateDir,
		"--instances", strconv.Itoa(instances),
		"--log-format", "text",
		"--log-level", "warn",
		"--client-id", cfg.ClientID + "-bench-extra",
	}
	if cfg.TopicPrefix != "" {
		args = append(args, "--topic-prefix", cfg.TopicPrefix)
	}
	if cfg.SchemaRegistryURL != "" {
		args = append(args, "--schema-registry", cfg.SchemaRegistryURL)
	}
	return append(args, cfg.Security.Args()...)
}

// logf writes one progress line.
func logf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, "bench: "+format+"\n", args...)
}
