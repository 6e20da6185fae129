// Package apachekafka runs Apache Kafka itself — the broker published on Maven Central as
// org.apache.kafka:kafka_2.13 — as JVM processes on loopback, for the real-Kafka test suite,
// the benchmark and `make kafka`. It resolves the broker's classpath with Maven from the
// project's test/kafka/pom.xml (Maven's local repository makes every later run offline),
// formats KRaft storage, writes server.properties on free loopback ports, starts `kafka.Kafka`,
// waits until the broker answers a metadata request, and stops it with SIGTERM, then SIGKILL
// after a bound. A node keeps its ports and log directory across restarts, so a test can
// SIGKILL a broker and bring it back as an operator would.
//
// What belongs here: starting, stopping and inspecting Kafka processes. Topic layout and
// client settings belong to internal/platform; test namespaces to internal/platform/kafkatest.
package apachekafka

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultVersion is the Kafka release the project tests against: the newest 4.x that resolved
// from Maven Central and passed the suite with sarama 1.46 and goka 1.1.16 (docs/kafka.md
// records the versions tried). KAFKA_VERSION overrides it.
const DefaultVersion = "4.4.0"

// VersionEnv names the environment variable that overrides DefaultVersion.
const VersionEnv = "KAFKA_VERSION"

// Options describes a cluster to start.
type Options struct {
	// Version of org.apache.kafka:kafka_2.13; empty means KAFKA_VERSION, else DefaultVersion.
	Version string
	// Nodes is the number of combined broker+controller nodes: 1 (default) or 3. With 3 the
	// controller quorum has three voters, the internal topics replication 3, and the
	// transaction and share-group state topics min.insync.replicas 2. Topic-level settings are the provisioner's (platform.Provision):
	// the broker keeps Kafka's defaults, as a cluster the services meet would.
	Nodes int
	// Dir holds each node's config, log directory and logs; empty makes a temporary directory
	// that Stop removes.
	Dir string
	// HeapMB is each node's maximum heap; default 512 for one node, 384 for each of three.
	HeapMB int
	// Properties are added to (or replace) every node's server.properties.
	Properties map[string]string
	// Ports fixes the client listener ports of the nodes (one per node); empty picks free ones.
	Ports []int
	// ControllerPorts fixes the controller listener ports likewise.
	ControllerPorts []int
	// POM is the Maven project that resolves the classpath; empty finds test/kafka/pom.xml
	// above the working directory.
	POM string
	// ReadyTimeout bounds the wait for a started node; default 90 s.
	ReadyTimeout time.Duration
	// StopTimeout bounds the wait after SIGTERM before SIGKILL; default 30 s.
	StopTimeout time.Duration
	// Optimized runs the JVMs as a production broker would (G1 and the optimising JIT
	// compiler), for the benchmark. Without it they start light (serial GC, the quick JIT
	// only): three brokers warming up with the full JIT took most of this project's two cores
	// for their first minute, stalling the services under test.
	Optimized bool
	// Secure, when set, adds SASL_SSL and mutual-TLS listeners (see Secure).
	Secure *Secure
}

// Cluster is a set of running (or stopped) Kafka nodes sharing one cluster id.
type Cluster struct {
	opts      Options
	version   string
	classpath string
	clusterID string
	dir       string
	ownsDir   bool
	nodes     []*Node
	certs     Certificates // with Options.Secure
}

// Node is one Kafka process: a broker and a controller in one JVM.
type Node struct {
	ID             int
	Port           int // client (PLAINTEXT) listener
	ControllerPort int
	SASLSSLPort    int    // with Options.Secure
	MTLSPort       int    // with Options.Secure
	Dir            string // config.properties, data/ and logs/ live here

	cluster *Cluster
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	starts  int
}

// Start resolves the classpath, formats storage for every node and starts them all, returning
// once each answers metadata requests. On error every started node is stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := New(ctx, opts)
		if err != nil {
			return nil, err
		}
		err = c.StartAll(ctx)
		if err == nil {
			return c, nil
		}
		// Free ports are picked before the JVMs bind them, seconds later: another process may
		// take one meanwhile. Fresh ports once more, unless the caller fixed them.
		retry := attempt == 1 && len(opts.Ports) == 0 && len(opts.ControllerPorts) == 0 && c.portTaken()
		c.Stop()
		if !retry {
			return nil, err
		}
	}
}

// portTaken reports whether a node failed to start because its port was in use.
func (c *Cluster) portTaken() bool {
	for _, n := range c.nodes {
		if out := n.stdoutTail(200) + n.LogTail(200); strings.Contains(out, "BindException") || strings.Contains(out, "Address already in use") {
			return true
		}
	}
	return false
}

// New prepares a cluster — classpath, ports, configuration, formatted storage — without
// starting it.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.Nodes != 1 && opts.Nodes != 3 {
		return nil, fmt.Errorf("apachekafka: %d nodes: want 1 or 3", opts.Nodes)
	}
	if len(opts.Ports) != 0 && len(opts.Ports) != opts.Nodes {
		return nil, fmt.Errorf("apachekafka: %d ports for %d nodes", len(opts.Ports), opts.Nodes)
	}
	if len(opts.ControllerPorts) != 0 && len(opts.ControllerPorts) != opts.Nodes {
		return nil, fmt.Errorf("apachekafka: %d controller ports for %d nodes", len(opts.ControllerPorts), opts.Nodes)
	}
	if opts.HeapMB == 0 {
		opts.HeapMB = 512
		if opts.Nodes > 1 {
			opts.HeapMB = 384
		}
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 90 * time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 30 * time.Second
	}
	version := opts.Version
	if version == "" {
		version = os.Getenv(VersionEnv)
	}
	if version == "" {
		version = DefaultVersion
	}
	c := &Cluster{opts: opts, version: version, dir: opts.Dir}
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "ordersys-kafka-")
		if err != nil {
			return nil, fmt.Errorf("apachekafka: make work directory: %w", err)
		}
		c.dir, c.ownsDir = dir, true
	}
	cp, err := Classpath(ctx, opts.POM, version)
	if err != nil {
		return nil, err
	}
	c.classpath = cp
	if c.clusterID, err = newClusterID(); err != nil {
		return nil, err
	}
	for i := 0; i < opts.Nodes; i++ {
		n := &Node{ID: i + 1, Dir: filepath.Join(c.dir, fmt.Sprintf("node-%d", i+1)), cluster: c}
		if len(opts.Ports) > 0 {
			n.Port = opts.Ports[i]
		} else if n.Port, err = freePort(); err != nil {
			return nil, err
		}
		if len(opts.ControllerPorts) > 0 {
			n.ControllerPort = opts.ControllerPorts[i]
		} else if n.ControllerPort, err = freePort(); err != nil {
			return nil, err
		}
		if opts.Secure != nil {
			if n.SASLSSLPort, err = freePort(); err != nil {
				return nil, err
			}
			if n.MTLSPort, err = freePort(); err != nil {
				return nil, err
			}
		}
		c.nodes = append(c.nodes, n)
	}
	if opts.Secure != nil {
		if c.certs, err = makeCertificates(filepath.Join(c.dir, "certs")); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := n.writeConfig(); err != nil {
			return nil, err
		}
		if err := n.format(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Version is the Kafka release the cluster runs.
func (c *Cluster) Version() string { return c.version }

// Nodes returns the cluster's nodes, by id.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node with id (1-based), nil if there is none.
func (c *Cluster) Node(id int) *Node {
	if id < 1 || id > len(c.nodes) {
		return nil
	}
	return c.nodes[id-1]
}

// Bootstrap returns every node's client address.
func (c *Cluster) Bootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// StartAll starts every node that is not running and waits until all are ready.
func (c *Cluster) StartAll(ctx context.Context) error {
	for _, n := range c.nodes {
		if !n.Running() {
			if err := n.launch(); err != nil {
				return err
			}
		}
	}
	for _, n := range c.nodes {
		if err := n.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every node (SIGTERM, then SIGKILL after the bound) and removes the work
// directory if Start made it.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
	if c.ownsDir {
		_ = os.RemoveAll(c.dir)
	}
}

// LogTail returns the last lines of every node's server log, for a failure report.
func (c *Cluster) LogTail(lines int) string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- kafka node %d (%s) ---\n%s\n", n.ID, n.LogPath(), n.LogTail(lines))
	}
	return b.String()
}

// Addr is the node's client address.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

// LogPath is the node's log4j server log; the JVM's own output goes to logs/stdout.log.
func (n *Node) LogPath() string { return filepath.Join(n.Dir, "logs", "server.log") }

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// PID is the process id of the node's current JVM, 0 when none was started.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Start starts a stopped node on its ports and log directory and waits until it is ready.
func (n *Node) Start(ctx context.Context) error {
	if err := n.launch(); err != nil {
		return err
	}
	return n.WaitReady(ctx)
}

// Kill SIGKILLs the node and waits until the process is gone: a crash, not a shutdown.
func (n *Node) Kill() {
	n.signalAndWait(syscall.SIGKILL, 30*time.Second)
}

// Stop asks the node to shut down (SIGTERM) and SIGKILLs it if it has not exited within the
// cluster's stop timeout; it reports whether the shutdown was graceful.
func (n *Node) Stop() bool {
	if !n.signalAndWait(syscall.SIGTERM, n.cluster.opts.StopTimeout) {
		n.Kill()
		return false
	}
	return true
}

// signalAndWait reports whether the process is gone within wait (true when none runs).
func (n *Node) signalAndWait(sig syscall.Signal, wait time.Duration) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil || done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// WaitReady waits until the node answers a metadata request that lists itself (a node is
// listed once it has registered with the controller and is unfenced), failing early if the
// process exits.
func (n *Node) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cluster.opts.ReadyTimeout)
	defer cancel()
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	for {
		if err := n.probe(ctx); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("apachekafka: node %d at %s not ready: %w (last error: %v)\n%s", n.ID, n.Addr(), ctx.Err(), err, n.LogTail(40))
		}
		select {
		case <-done:
			return fmt.Errorf("apachekafka: node %d exited while starting:\n%s\n%s", n.ID, n.stdoutTail(20), n.LogTail(40))
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n *Node) probe(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RetryTimeout(time.Second),
		kgo.DialTimeout(time.Second), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	brokers, err := kadm.NewClient(cl).BrokerMetadata(pctx)
	if err != nil {
		return err
	}
	for _, b := range brokers.Brokers {
		if int(b.NodeID) == n.ID {
			return nil
		}
	}
	return errors.New("node not yet in its own metadata")
}

// LogTail returns the last lines of the node's server log.
func (n *Node) LogTail(lines int) string { return tailFile(n.LogPath(), lines) }

func (n *Node) stdoutTail(lines int) string {
	return tailFile(filepath.Join(n.Dir, "logs", "stdout.log"), lines)
}

// RunningVersion reads the version the node's process reported at start ("Kafka version: X"
// in its log), which proves what actually ran rather than what was asked for.
func (n *Node) RunningVersion() string {
	f, err := os.Open(n.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	re := regexp.MustCompile(`Kafka version: (\S+)`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	version := ""
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			version = m[1]
		}
	}
	return version
}

func (n *Node) launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil {
		select {
		case <-n.done:
		default:
			return fmt.Errorf("apachekafka: node %d is already running", n.ID)
		}
	}
	logDir := filepath.Join(n.Dir, "logs")
	out, err := os.OpenFile(filepath.Join(logDir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("apachekafka: open node %d output: %w", n.ID, err)
	}
	n.starts++
	fmt.Fprintf(out, "=== start %d at %s\n", n.starts, time.Now().Format(time.RFC3339Nano))
	args := append(n.cluster.jvmArgs(n.cluster.opts.HeapMB, n.cluster.opts.Optimized),
		"-Dlog4j2.configurationFile="+filepath.Join(n.Dir, "log4j2.properties"),
		"-Dkafka.logs.dir="+logDir,
		"kafka.Kafka", filepath.Join(n.Dir, "server.properties"))
	cmd := exec.Command(javaBinary(), args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = n.Dir
	// The broker dies with the process that started it: a test binary killed by its timeout
	// must not leave JVMs holding ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("apachekafka: start node %d: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}

// Properties returns the node's server.properties as written.
func (n *Node) Properties() map[string]string {
	c := n.cluster
	listeners := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.Port, n.ControllerPort)
	var voters []string
	for _, peer := range c.nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", peer.ID, peer.ControllerPort))
	}
	replication := strconv.Itoa(len(c.nodes))
	minISR := "1"
	if len(c.nodes) >= 3 {
		minISR = "2"
	}
	p := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          strconv.Itoa(n.ID),
		"controller.quorum.voters":                         strings.Join(voters, ","),
		"listeners":                                        listeners,
		"advertised.listeners":                             fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.Port),
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                                         filepath.Join(n.Dir, "data"),
		"auto.create.topics.enable":                        "false",
		"offsets.topic.replication.factor":                 replication,
		"transaction.state.log.replication.factor":         replication,
		"transaction.state.log.min.isr":                    minISR,
		"share.coordinator.state.topic.replication.factor": replication,
		"share.coordinator.state.topic.min.isr":            minISR,
		// Tests and local runs start groups at once; production keeps the 3 s default.
		"group.initial.rebalance.delay.ms": "0",
		// A local broker on a laptop: modest threads, and a cleaner that looks every 5 s
		// (segments roll at 16 MiB; the active one is never compacted).
		"num.network.threads":             "2",
		"num.io.threads":                  "4",
		"log.cleaner.threads":             "1",
		"log.cleaner.backoff.ms":          "5000",
		"log.segment.bytes":               strconv.Itoa(16 << 20),
		"log.retention.check.interval.ms": "60000",
	}
	if c.opts.Secure != nil {
		for k, v := range n.secureProperties() {
			p[k] = v
		}
	}
	for k, v := range c.opts.Properties {
		p[k] = v
	}
	return p
}

func (n *Node) writeConfig() error {
	for _, d := range []string{"data", "logs"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return fmt.Errorf("apachekafka: make node %d directories: %w", n.ID, err)
		}
	}
	props := n.Properties()
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "server.properties"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("apachekafka: write node %d properties: %w", n.ID, err)
	}
	log4j := fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.statechange.name = state.change.logger
logger.statechange.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
`, n.LogPath())
	if err := os.WriteFile(filepath.Join(n.Dir, "log4j2.properties"), []byte(log4j), 0o644); err != nil {
		return fmt.Errorf("apachekafka: write node %d log config: %w", n.ID, err)
	}
	return nil
}

func (n *Node) format(ctx context.Context) error {
	args := append([]string{"format", "-t", n.cluster.clusterID,
		"-c", filepath.Join(n.Dir, "server.properties"), "--ignore-formatted"}, n.cluster.scramFormatArgs()...)
	_, err := n.cluster.runTool(ctx, args...)
	if err != nil {
		return fmt.Errorf("apachekafka: format node %d storage: %w", n.ID, err)
	}
	return nil
}

// runTool runs Kafka's StorageTool with args and returns its trimmed output.
func (c *Cluster) runTool(ctx context.Context, args ...string) (string, error) {
	jvm := append(c.jvmArgs(256, false), "kafka.tools.StorageTool")
	cmd := exec.CommandContext(ctx, javaBinary(), append(jvm, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		// --add-scram carries passwords; the error names the command without them.
		shown := slices.Clone(args)
		for i := range shown {
			if i > 0 && shown[i-1] == "--add-scram" {
				shown[i] = "<credentials>"
			}
		}
		return "", fmt.Errorf("%s: %w\n%s", strings.Join(shown, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

func (c *Cluster) jvmArgs(heapMB int, optimized bool) []string {
	args := []string{
		fmt.Sprintf("-Xmx%dm", heapMB), fmt.Sprintf("-Xms%dm", min(heapMB, 256)),
		"-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
	}
	if optimized {
		args = append(args, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")
	} else {
		args = append(args, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
	}
	return append(args, "-cp", c.classpath)
}

// javaBinary is $JAVA_HOME/bin/java when JAVA_HOME is set, else java on the PATH.
func javaBinary() string {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		return filepath.Join(home, "bin", "java")
	}
	return "java"
}

// newClusterID is what `kafka-storage random-uuid` prints: 16 random bytes, base64url without
// padding (made here rather than by starting one more JVM).
// newClusterID is a random id as Kafka's own Uuid makes them: 16 bytes in URL-safe base64,
// never starting with '-', which StorageTool would take for an option (one id in 64 did, and
// its format failed with "argument --cluster-id/-t: expected one argument").
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("apachekafka: make a cluster id: %w", err)
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); !strings.HasPrefix(id, "-") {
			return id, nil
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("apachekafka: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
