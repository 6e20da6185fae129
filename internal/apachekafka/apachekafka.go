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
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
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
