package reliability

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/apachekafka"
	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

// modeEnv selects what the suite runs; see the package documentation.
const modeEnv = "ORDERSYS_RELIABILITY"

// mode is a value of modeEnv.
type mode string

const (
	modeShort mode = "short"
	modeFull  mode = "full"
	modeSoak  mode = "soak"
)

// suiteMode returns the configured mode, and skips t unless it is one of runsIn.
func suiteMode(t *testing.T, runsIn ...mode) mode {
	t.Helper()
	m := mode(os.Getenv(modeEnv))
	switch m {
	case "":
		t.Skipf("fault-injection suite: set %s=short, full or soak to run it", modeEnv)
	case modeShort, modeFull, modeSoak:
	default:
		t.Fatalf("%s=%q: want short, full or soak", modeEnv, m)
	}
	if testing.Short() {
		t.Skip("fault-injection suite: not with -short")
	}
	if !slices.Contains(runsIn, m) {
		t.Skipf("not part of %s=%s", modeEnv, m)
	}
	return m
}

// Service kinds, named like their binaries under cmd/.
const (
	kindOrders    = "orders"
	kindDetails   = "details"
	kindFraud     = "fraud"
	kindInventory = "inventory"
	kindEmail     = "email"
)

// serviceKinds lists the services of a full ecosystem, in the order scenario 1 kills them.
var serviceKinds = []string{kindOrders, kindDetails, kindFraud, kindInventory, kindEmail}

// binaryPaths builds every binary the suite runs (once per test process) and returns them by
// name: the service kinds and "ecosystem", which runs the broker.
func binaryPaths(t *testing.T) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, name := range append([]string{"ecosystem"}, serviceKinds...) {
		paths[name] = kafkatest.BuildBinary(t, "./cmd/"+name)
	}
	return paths
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testBroker is the broker a scenario can crash: the embedded broker as a process of its own,
// or Apache Kafka (KAFKA_BACKEND=apache). Either keeps its port and data across a restart.
type testBroker interface {
	bootstrap() string
	// kill SIGKILLs the broker (every node of a cluster) and waits until it is gone.
	kill()
	// restart starts it again on the same ports and data and waits until it answers
	// metadata requests (the embedded broker also until it has provisioned, idempotently).
	restart()
}

// startTestBroker starts the broker of a scenario, with every topic provisioned.
func startTestBroker(t *testing.T, bins map[string]string, partitions int) testBroker {
	t.Helper()
	if kafkatest.WantsApache() {
		return startApacheBroker(t, 1, partitions)
	}
	return startBrokerProcess(t, bins["ecosystem"], partitions)
}

// brokerProcess is the embedded broker as a process of its own: `ecosystem --broker-only`
// over a data directory, so that it can be SIGKILLed and started again on the same port and
// data.
type brokerProcess struct {
	t          *testing.T
	bin        string
	addr       string
	dataDir    string
	partitions int
	runs       []*kafkatest.Process
}

// readyBanner is what the ecosystem binary prints once the broker is up and provisioned.
const readyBanner = "The order-management ecosystem is ready."

func startBrokerProcess(t *testing.T, bin string, partitions int) *brokerProcess {
	t.Helper()
	b := &brokerProcess{t: t, bin: bin, addr: freeAddr(t), dataDir: t.TempDir(), partitions: partitions}
	b.restart()
	return b
}

func (b *brokerProcess) bootstrap() string { return b.addr }

// restart runs the broker and waits until it has provisioned the topics (idempotent on
// restart).
func (b *brokerProcess) restart() {
	b.t.Helper()
	p := kafkatest.StartBinary(b.t, b.bin, nil,
		"--broker-only", "--seed=false",
		"--data-dir", b.dataDir,
		"--broker-addr", b.addr,
		"--partitions", strconv.Itoa(b.partitions))
	b.runs = append(b.runs, p)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.Output(), readyBanner) {
		if exited(p, 50*time.Millisecond) {
			b.t.Fatalf("broker ended (%s) before it was ready:\n%s", p.ExitState(), p.Output())
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker not ready after 60 s:\n%s", p.Output())
		}
	}
}

func (b *brokerProcess) kill() {
	b.t.Helper()
	killProcess(b.t, "broker", b.runs[len(b.runs)-1])
}

// apacheBroker is Apache Kafka started from Maven (internal/apachekafka): one node, or three
// for the cluster scenario, with the ecosystem's topics replicated to every node.
type apacheBroker struct {
	t       *testing.T
	cluster *apachekafka.Cluster
}

func startApacheBroker(t *testing.T, nodes, partitions int) *apacheBroker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := apachekafka.Start(ctx, apachekafka.Options{Nodes: nodes, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start Apache Kafka: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Apache Kafka's logs end:\n%s", cl.LogTail(80))
		}
		cl.Stop()
	})
	t.Logf("Apache Kafka %s, %d node(s) at %s", cl.Node(1).RunningVersion(), nodes, strings.Join(cl.Bootstrap(), ","))
	cfg := platform.DefaultConfig()
	cfg.Brokers = cl.Bootstrap()
	cfg.Partitions = partitions
	cfg.Replication = nodes
	cfg.ClientID = "reliability-provision"
	if _, err := platform.ProvisionCluster(ctx, cfg); err != nil {
		t.Fatalf("provision Apache Kafka: %v", err)
	}
	return &apacheBroker{t: t, cluster: cl}
}

func (b *apacheBroker) bootstrap() string { return strings.Join(b.cluster.Bootstrap(), ",") }

func (b *apacheBroker) kill() {
	for _, n := range b.cluster.Nodes() {
		n.Kill()
	}
}

func (b *apacheBroker) restart() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := b.cluster.StartAll(ctx); err != nil {
		b.t.Fatalf("restart Apache Kafka: %v", err)
	}
}

// restartNode starts one stopped node again and waits until it serves metadata.
func (b *apacheBroker) restartNode(n *apachekafka.Node) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		b.t.Fatalf("restart Kafka node %d: %v", n.ID, err)
	}
}

func killProcess(t *testing.T, name string, p *kafkatest.Process) {
	t.Helper()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s: %v", name, err)
	}
	if !exited(p, 10*time.Second) {
		t.Fatalf("%s still running 10 s after SIGKILL", name)
	}
}

// exited reports whether p ends within wait.
func exited(p *kafkatest.Process, wait time.Duration) bool {
	select {
	case <-p.Done():
		return true
	default:
	}
	if wait <= 0 {
		return false
	}
	select {
	case <-p.Done():
		return true
	case <-time.After(wait):
		return false
	}
}

// service is one service instance: its binary, its configuration (environment variables) and
// every run of it, so that output from runs that were killed stays available.
type service struct {
	name string // unique within a cluster, e.g. "orders-2"
	kind string
	bin  string
	env  []string
	// addr serves /readyz and /metrics: the REST address of Orders, the admin address of the
	// others.
	addr string
	runs []*kafkatest.Process
}

func (s *service) url() string                 { return "http://" + s.addr }
func (s *service) current() *kafkatest.Process { return s.runs[len(s.runs)-1] }

// output is everything every run of the service printed.
func (s *service) output() string {
	var b strings.Builder
	for _, p := range s.runs {
		b.WriteString(p.Output())
	}
	return b.String()
}

// cluster is a broker process, the services started on it and a client for the test's own
// reads and writes. Topic names carry no prefix: the broker is the test's own.
type cluster struct {
	t          *testing.T
	bins       map[string]string
	broker     testBroker
	partitions int
	// replication of the topics, passed to the services (REPLICATION).
	replication int
	names       platform.Names
	codecs      *platform.Codecs
	client      *kgo.Client
	admin       *kadm.Client
	services    []*service
}

func newCluster(t *testing.T, partitions int) *cluster {
	t.Helper()
	bins := binaryPaths(t)
	return newClusterOn(t, bins, startTestBroker(t, bins, partitions), partitions, 1)
}

// newClusterOn is newCluster on a broker the caller started, whose topics have replication.
func newClusterOn(t *testing.T, bins map[string]string, broker testBroker, partitions, replication int) *cluster {
	t.Helper()
	c := &cluster{t: t, bins: bins, partitions: partitions, replication: replication, codecs: platform.StaticCodecs()}
	c.broker = broker
	cfg := platform.DefaultConfig()
	cfg.Brokers = platform.SplitList(c.broker.bootstrap())
	cfg.ClientID = "reliability-test"
	cl, err := kgo.NewClient(platform.ClientOptions(cfg)...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	c.client, c.admin = cl, kadm.NewClient(cl)
	return c
}

// startService starts a service of kind with its own state directory and listen address;
// extraEnv adds or overrides configuration.
func (c *cluster) startService(kind, name string, extraEnv ...string) *service {
	c.t.Helper()
	s := &service{name: name, kind: kind, bin: c.bins[kind], addr: freeAddr(c.t)}
	s.env = []string{
		"KAFKA_BROKERS=" + c.broker.bootstrap(),
		"STATE_DIR=" + filepath.Join(c.t.TempDir(), name),
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
		"KAFKA_CLIENT_ID=" + name,
		"REPLICATION=" + strconv.Itoa(c.replication),
	}
	if kind == kindOrders {
		s.env = append(s.env, "HTTP_ADDR="+s.addr, "INSTANCE="+name)
	} else {
		s.env = append(s.env, "ADMIN_ADDR="+s.addr)
	}
	s.env = append(s.env, extraEnv...)
	c.services = append(c.services, s)
	c.run(s)
	return s
}

// startEcosystem starts one instance of every service.
func (c *cluster) startEcosystem() map[string]*service {
	c.t.Helper()
	byKind := map[string]*service{}
	for _, kind := range serviceKinds {
		byKind[kind] = c.startService(kind, kind)
	}
	for _, s := range byKind {
		c.waitReady(s, 90*time.Second)
	}
	return byKind
}

func (c *cluster) run(s *service) {
	s.runs = append(s.runs, kafkatest.StartBinary(c.t, s.bin, s.env))
}

// kill SIGKILLs the service's current run.
func (c *cluster) kill(s *service) {
	c.t.Helper()
	killProcess(c.t, s.name, s.current())
}

// restart starts the service again with the same configuration and state directory.
func (c *cluster) restart(s *service) {
	c.t.Helper()
	c.run(s)
}

// ready reports whether the service answers /readyz with 200.
func ready(s *service) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(s.url() + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady waits until the service is ready, failing early if its process exits.
func (c *cluster) waitReady(s *service, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for !ready(s) {
		if exited(s.current(), 100*time.Millisecond) {
			c.t.Fatalf("%s ended (%s) while starting:\n%s", s.name, s.current().ExitState(), tail(s.current().Output(), 60))
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("%s not ready after %v:\n%s", s.name, timeout, tail(s.current().Output(), 40))
		}
	}
	return time.Since(start)
}

// awaitReadyOrExit waits until the service is ready and reports true, or reports false as
// soon as its process has ended. A service still neither after timeout fails the test.
func (c *cluster) awaitReadyOrExit(s *service, timeout time.Duration) bool {
	c.t.Helper()
	start := time.Now()
	for !ready(s) {
		if exited(s.current(), 100*time.Millisecond) {
			return false
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("%s neither ready nor ended after %v:\n%s", s.name, timeout, tail(s.current().Output(), 40))
		}
	}
	return true
}

// exitReason is the error a binary logged when it gave up (service.Exit prints "error: ...").
func exitReason(output string) string {
	lines := strings.Split(output, "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "error: ") {
			return strings.Join(lines[i:], " ")
		}
	}
	return tail(output, 5)
}

// checkAlive fails the test for every service whose current run has exited: nothing the
// scenarios inject, except the SIGKILLs they send themselves, may stop a service.
func (c *cluster) checkAlive() {
	c.t.Helper()
	for _, s := range c.services {
		if exited(s.current(), 0) {
			c.t.Errorf("%s ended by itself (%s):\n%s", s.name, s.current().ExitState(), tail(s.current().Output(), 60))
		}
	}
	for _, s := range c.services {
		for i, p := range s.runs {
			if out := p.Output(); strings.Contains(out, "panic:") || strings.Contains(out, "fatal error:") {
				c.t.Errorf("%s run %d panicked:\n%s", s.name, i+1, tail(out, 60))
			}
		}
	}
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sampleStock is the warehouse stock of the load scenarios: plenty of underpants, and few
// enough jumpers and stockings that they run out mid-run, so orders both pass and fail the
// inventory check and reservations of FAILED orders are released.
func sampleStock(jumpers, stockings int32) map[domain.Product]int32 {
	return map[domain.Product]int32{domain.Underpants: 1_000_000, domain.Jumpers: jumpers, domain.Stockings: stockings}
}

// extraCustomers are customers beyond the sample ones, so that the fraud limit is reached by
// some customers and not by all. Their levels cycle through the four level topics.
func extraCustomers(n int) []domain.Customer {
	levels := []string{"platinum", "gold", "silver", "bronze"}
	out := make([]domain.Customer, n)
	for i := range out {
		id := int64(100 + i)
		out[i] = domain.Customer{ID: id, FirstName: "Test", LastName: fmt.Sprintf("Customer %d", id),
			Email: fmt.Sprintf("customer-%d@example.test", id), Address: "1 test street", Level: levels[i%len(levels)]}
	}
	return out
}

// seed writes stock and customers and returns the ids of the customers that exist.
func (c *cluster) seed(stock map[domain.Product]int32) []int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sampledata.SetStock(ctx, c.client, c.names, stock); err != nil {
		c.t.Fatal(err)
	}
	customers := append(sampledata.SampleCustomers(), extraCustomers(200)...)
	if err := sampledata.ProduceCustomers(ctx, c.client, c.names, customers); err != nil {
		c.t.Fatal(err)
	}
	ids := make([]int64, len(customers))
	for i, cu := range customers {
		ids[i] = cu.ID
	}
	return ids
}

// readTopic returns every record topic holds now, in partition and offset order.
func (c *cluster) readTopic(topic string) []*kgo.Record {
	c.t.Helper()
	byPartition := map[int32][]*kgo.Record{}
	c.scanTopic(topic, func(r *kgo.Record) { byPartition[r.Partition] = append(byPartition[r.Partition], r) })
	var out []*kgo.Record
	for _, p := range slices.Sorted(maps.Keys(byPartition)) {
		out = append(out, byPartition[p]...)
	}
	return out
}

// scanTopic calls fn for every record topic holds now: each partition from its start up to
// the end offset listed when scanTopic is called, in offset order within a partition.
func (c *cluster) scanTopic(topic string, fn func(*kgo.Record)) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ends, err := c.admin.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		c.t.Fatalf("read %s: end offsets: %v", topic, err)
	}
	want := map[int32]int64{} // partition → end offset still to reach
	partitions := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			partitions[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return
	}
	opts := append(c.client.Opts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: partitions}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.t.Fatalf("read %s: client: %v", topic, err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("read %s: timed out with partitions %v unread", topic, want)
		}
		fetches.EachError(func(_ string, p int32, err error) { c.t.Fatalf("read %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			fn(r)
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
}

// readLatest returns the last record of each key in a keyed topic (a table), reading each
// key's partition backwards from its end in growing windows. Tables whose values are large
// (the inventory service's, see docs/reliability.md) would take minutes to read whole.
func (c *cluster) readLatest(topic string, keys []string) map[string]*kgo.Record {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := c.admin.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		c.t.Fatalf("read latest of %s: end offsets: %v %v", topic, err, ends.Error())
	}
	byPartition := map[int32][]string{}
	for _, k := range keys {
		p := platform.PartitionFor(k, int32(c.partitions))
		byPartition[p] = append(byPartition[p], k)
	}
	latest := map[string]*kgo.Record{}
	for p, wanted := range byPartition {
		end, ok := ends.Lookup(topic, p)
		if !ok || end.Offset == 0 {
			continue
		}
		for window := int64(16); ; window *= 4 {
			from := max(end.Offset-window, 0)
			found := c.readRange(ctx, topic, p, from, end.Offset)
			missing := 0
			for _, k := range wanted {
				if r, ok := found[k]; ok {
					latest[k] = r
				} else {
					missing++
				}
			}
			if missing == 0 || from == 0 {
				break
			}
		}
	}
	return latest
}

// readRange reads partition p of topic from offset from up to end and returns the last
// record of each key.
func (c *cluster) readRange(ctx context.Context, topic string, p int32, from, end int64) map[string]*kgo.Record {
	c.t.Helper()
	opts := append(c.client.Opts(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.t.Fatalf("read %s/%d: %v", topic, p, err)
	}
	defer cl.Close()
	last := map[string]*kgo.Record{}
	for next := from; next < end; {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("read %s/%d: timed out at offset %d of %d", topic, p, next, end)
		}
		fetches.EachError(func(_ string, _ int32, err error) { c.t.Fatalf("read %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset < end {
				last[string(r.Key)] = r
			}
			next = r.Offset + 1
		})
	}
	return last
}

// scrapeMetrics reads a service's /metrics into "name{labels}" → value.
func scrapeMetrics(s *service) (map[string]float64, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(s.url() + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", s.name, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", s.name, err)
	}
	return out, nil
}
