// Package interop checks the ecosystem against clients and tools nobody here wrote: Apache
// Kafka's Java client and Apache Avro (java/), Confluent's Python client and its schema-registry
// serializers (python/, against franz-go's srfake registry: docs/interop.md says why not a
// production one), schemathesis against the live REST API, and kcat. `make test-interop`
// installs the peers (Maven for Java, a virtual environment pinned by requirements.txt for
// Python, kcat from Debian) and runs this package on Apache Kafka; without ORDERSYS_INTEROP set
// (a plain `go test ./...`) it skips. docs/interop.md has the figures.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ecosystem"
	"github.com/ordersys/ecosystem/internal/ecosystem/ecotest"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

// EnvInterop turns the suite on; EnvVenv names the virtual environment with the Python peers
// (default test/interop/.venv).
const (
	EnvInterop = "ORDERSYS_INTEROP"
	EnvVenv    = "ORDERSYS_INTEROP_VENV"
)

func needPeers(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvInterop) == "" {
		t.Skipf("the interoperability suite runs with make test-interop (%s=1)", EnvInterop)
	}
}

// here is this package's directory.
func here(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Dir(file)
}

var (
	classpathOnce sync.Once
	classpath     string
	classpathErr  error
)

// javaPeer runs Interop.java with Kafka's client and Avro on the classpath Maven resolves.
func javaPeer(t *testing.T, args ...string) []string {
	t.Helper()
	dir := filepath.Join(here(t), "java")
	classpathOnce.Do(func() {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("ordersys-interop-cp-%d.txt", os.Getpid()))
		defer os.Remove(out)
		cmd := exec.Command("mvn", "-q", "-f", filepath.Join(dir, "pom.xml"), "dependency:build-classpath", "-Dmdep.outputFile="+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			classpathErr = fmt.Errorf("mvn dependency:build-classpath: %v\n%s", err, b)
			return
		}
		b, err := os.ReadFile(out)
		classpath, classpathErr = strings.TrimSpace(string(b)), err
	})
	if classpathErr != nil {
		t.Fatal(classpathErr)
	}
	cmd := exec.Command("java", append([]string{"-cp", classpath, filepath.Join(dir, "Interop.java")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java Interop %s: %v\n%s", args[0], err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// startEcosystem runs every service on env's namespace and returns the REST base URL; tune, when
// given, adjusts the configuration first.
func startEcosystem(t *testing.T, env *kafkatest.Env, tune ...func(*ecosystem.Config)) string {
	t.Helper()
	return ecotest.Start(t, env, tune...).URL
}

// stockedEnv is a provisioned 6-partition namespace with units of every product in stock.
func stockedEnv(t *testing.T, units int32) *kafkatest.Env {
	t.Helper()
	env := kafkatest.New(t, kafkatest.Options{Partitions: 6})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stock := map[domain.Product]int32{}
	for _, p := range domain.Products {
		stock[p] = units
	}
	if err := sampledata.SetStock(ctx, env.Client, env.Names, stock); err != nil {
		t.Fatal(err)
	}
	return env
}

// interopKeys are 10,000 keys of the kinds clients send: reference-style numeric ids, UUID-like
// ids, unicode, and 200-character ids.
func interopKeys() []string {
	keys := make([]string, 0, 10000)
	for i := range 10000 {
		switch i % 4 {
		case 0:
			keys = append(keys, fmt.Sprint(i))
		case 1:
			keys = append(keys, fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", i*2654435761, i%65536, i%4096, (i*7)%4096, i*40503))
		case 2:
			keys = append(keys, fmt.Sprintf("Bestellung-ü-ключ-订单-🧦-%d", i))
		default:
			keys = append(keys, fmt.Sprintf("%d-%s", i, strings.Repeat("x", 200))[:200])
		}
	}
	return keys
}

// keysTopic creates a 6-partition topic for placing keys and writes interopKeys to a file, one
// per line in hex, as the peers read them.
func keysTopic(t *testing.T) (env *kafkatest.Env, topic, path string, keys []string) {
	t.Helper()
	env = kafkatest.New(t, kafkatest.Options{Partitions: 6, NoProvision: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic = env.Names.Topic("interop-keys")
	if _, err := env.Admin.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	keys = interopKeys()
	var file bytes.Buffer
	for _, k := range keys {
		file.WriteString(hex.EncodeToString([]byte(k)) + "\n")
	}
	path = filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return env, topic, path, keys
}

// Kafka's Java producer, default partitioner, puts every key on the partition
// platform.PartitionFor names, so Go and Java services agree on where an id lives.
func TestJavaDefaultPartitionerAgreesWithPartitionFor(t *testing.T) {
	needPeers(t)
	env, topic, path, keys := keysTopic(t)
	lines := javaPeer(t, "place", strings.Join(env.Brokers, ","), topic, path)
	t.Logf("RESULT java default partitioner: %d keys, %d on the partition PartitionFor names", len(keys), len(keys)-misplaced(t, "java", lines, keys))
}

// librdkafka (confluent-kafka for Python) with partitioner murmur2_random places keys where
// PartitionFor does; its default, consistent_random, does not, which the test measures too.
func TestPythonMurmur2PartitionerAgreesWithPartitionFor(t *testing.T) {
	needPeers(t)
	env, topic, path, keys := keysTopic(t)
	python := filepath.Join(venv(t), "bin", "python")
	script := filepath.Join(here(t), "python", "place.py")
	run := func(partitioner string) []string {
		cmd := exec.Command(python, script, strings.Join(env.Brokers, ","), topic, path, partitioner)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("python place.py %s: %v\n%s", partitioner, err, stderr.String())
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	bad := misplaced(t, "python murmur2_random", run("murmur2_random"), keys)
	defaultBad := countMisplaced(t, run("consistent_random"), keys)
	t.Logf("RESULT python confluent-kafka: murmur2_random put %d of %d keys where PartitionFor does; librdkafka's default consistent_random %d",
		len(keys)-bad, len(keys), len(keys)-defaultBad)
}

// misplaced reports the keys a peer put elsewhere than PartitionFor (as test errors) and counts them.
func misplaced(t *testing.T, peer string, lines []string, keys []string) int {
	t.Helper()
	return placements(t, peer, lines, keys, true)
}

// countMisplaced counts them without failing: for a partitioner expected to differ.
func countMisplaced(t *testing.T, lines []string, keys []string) int {
	t.Helper()
	return placements(t, "", lines, keys, false)
}

func placements(t *testing.T, peer string, lines []string, keys []string, strict bool) int {
	t.Helper()
	if len(lines) != len(keys) {
		t.Fatalf("%s placed %d keys, want %d", peer, len(lines), len(keys))
	}
	mismatched := 0
	for i, line := range lines {
		var got struct {
			Key       string `json:"key"`
			Partition int32  `json:"partition"`
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("%s output %q: %v", peer, line, err)
		}
		raw, _ := hex.DecodeString(got.Key)
		if string(raw) != keys[i] {
			t.Fatalf("line %d is for key %q, want %q", i, raw, keys[i])
		}
		if want := platform.PartitionFor(keys[i], 6); got.Partition != want {
			mismatched++
			if strict && mismatched <= 5 {
				t.Errorf("key %q: %s put it on partition %d, PartitionFor says %d", keys[i], peer, got.Partition, want)
			}
		}
	}
	return mismatched
}

// postOrders posts orders through the REST API, waits for each one's final state and returns
// what GET …/validated answered, by id.
func postOrders(t *testing.T, base string, orders []domain.Order) map[string]domain.Order {
	t.Helper()
	out := map[string]domain.Order{}
	for _, o := range orders {
		out[o.ID] = ecotest.PostAndAwait(t, base, o)
	}
	return out
}

// interopOrders are orders of every product, both outcomes and ids a Java service could send.
func interopOrders(prefix string) []domain.Order {
	ids := []string{"1", "ord-7f3c9a10-2b4d-4e8f-9a1b-3c5d7e9f1a2b", "Bestellung-ü-ключ-订单-🧦", strings.Repeat("y", 200)}
	var orders []domain.Order
	for i, p := range domain.Products {
		for j, id := range ids {
			orders = append(orders, domain.Order{
				ID: fmt.Sprintf("%s-%d-%s", prefix, i, id), CustomerID: int64(100 + j), State: domain.OrderCreated,
				Product: p, Quantity: int32(1 + j), Price: 9.99 * float64(j+1),
			})
		}
	}
	// One that fails its details check, one that fails for stock.
	orders = append(orders,
		domain.Order{ID: prefix + "-negative", CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: -1, Price: 5},
		domain.Order{ID: prefix + "-too-many", CustomerID: 1, State: domain.OrderCreated, Product: domain.Stockings, Quantity: 1000, Price: 1})
	return orders
}

// avroOrder is the Avro JSON encoding of an Order, as Avro's JsonEncoder writes it.
type avroOrder struct {
	ID         string  `json:"id"`
	CustomerID int64   `json:"customerId"`
	State      string  `json:"state"`
	Product    string  `json:"product"`
	Quantity   int32   `json:"quantity"`
	Price      float64 `json:"price"`
}

func (a avroOrder) order() domain.Order {
	return domain.Order{ID: a.ID, CustomerID: a.CustomerID, State: domain.OrderState(a.State),
		Product: domain.Product(a.Product), Quantity: a.Quantity, Price: a.Price}
}

// A Java consumer reads `orders` and decodes every value with Apache Avro and the project's
// schemas/order.avsc after the Confluent header: each order's CREATED record is what was
// POSTed and its last record what the REST API answered.
func TestJavaAvroConsumerReadsWhatTheAPIAnswered(t *testing.T) {
	needPeers(t)
	env := stockedEnv(t, 100)
	base := startEcosystem(t, env)
	orders := interopOrders("java")
	answered := postOrders(t, base, orders)

	schema := filepath.Join(here(t), "..", "..", "schemas", "order.avsc")
	lines := javaPeer(t, "read", strings.Join(env.Brokers, ","), env.Names.Topic(string(platform.TopicOrders)), schema)
	created, last := map[string]domain.Order{}, map[string]domain.Order{}
	for _, line := range lines {
		var rec struct {
			Partition int32     `json:"partition"`
			Key       string    `json:"key"`
			SchemaID  int       `json:"schemaId"`
			Value     avroOrder `json:"value"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("java output %q: %v", line, err)
		}
		o := rec.Value.order()
		key, _ := hex.DecodeString(rec.Key)
		switch {
		case string(key) != o.ID:
			t.Errorf("record of order %q has key %q", o.ID, key)
		case rec.Partition != platform.PartitionFor(o.ID, 6):
			t.Errorf("order %q on partition %d, PartitionFor says %d", o.ID, rec.Partition, platform.PartitionFor(o.ID, 6))
		case rec.SchemaID != platform.StaticSchemaIDs["Order"]:
			t.Errorf("order %q written with schema id %d, want %d", o.ID, rec.SchemaID, platform.StaticSchemaIDs["Order"])
		}
		if o.State == domain.OrderCreated {
			if _, seen := created[o.ID]; !seen {
				created[o.ID] = o
			}
		}
		last[o.ID] = o
	}
	for _, o := range orders {
		if created[o.ID] != o {
			t.Errorf("order %q: Java decoded CREATED %+v, POSTed %+v", o.ID, created[o.ID], o)
		}
		if last[o.ID] != answered[o.ID] {
			t.Errorf("order %q: Java decoded last record %+v, the API answered %+v", o.ID, last[o.ID], answered[o.ID])
		}
	}
	t.Logf("RESULT java avro consumer: %d records of %d orders decoded; %d CREATED and %d final states equal the API's",
		len(lines), len(orders), len(created), len(last))
}

// venv is the virtual environment with the Python peers.
func venv(t *testing.T) string {
	if v := os.Getenv(EnvVenv); v != "" {
		return v
	}
	return filepath.Join(here(t), ".venv")
}

// schemathesis, against a live Orders service's /openapi.json, finds no server error and no
// response outside the documented schemas, status codes, content types or headers, in every
// operation.
func TestSchemathesisFindsNothingOutsideTheContract(t *testing.T) {
	needPeers(t)
	env := stockedEnv(t, 1000)
	// Long-polls for ids schemathesis makes up end in a second (504, the documented timeout),
	// not in the default 10 s.
	base := startEcosystem(t, env, func(c *ecosystem.Config) { c.DefaultTimeout, c.MaxTimeout = 500*time.Millisecond, time.Second })
	report := t.TempDir()
	cmd := exec.Command(filepath.Join(venv(t), "bin", "schemathesis"),
		"--config-file", filepath.Join(here(t), "schemathesis.toml"), "run", base+"/openapi.json",
		"--checks", "all",
		// The API has no authentication and no ownership of resources to check.
		"--exclude-checks", "ignored_auth,object_level_authorization",
		"--max-examples", "100", "--seed", "1", "--workers", "2",
		"--request-timeout", "15", "--no-color", "--generation-database", "none",
		"--report", "junit", "--report-dir", report)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	summary := lastLines(out.String(), 40)
	if err != nil {
		t.Fatalf("schemathesis: %v\n%s", err, out.String())
	}
	t.Logf("RESULT schemathesis:\n%s", summary)
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kcat, Debian's build of librdkafka's command-line client, lists every topic of the ecosystem
// with its partitions and reads `orders`: each order's records on the partition PartitionFor
// names, keyed by the id, each value a Confluent-framed Avro record (header plus body).
func TestKcatListsTopicsAndReadsOrders(t *testing.T) {
	needPeers(t)
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not installed (make test-interop installs it): %v", err)
	}
	env := stockedEnv(t, 100)
	base := startEcosystem(t, env)
	orders := interopOrders("kcat")
	postOrders(t, base, orders)
	bootstrap := strings.Join(env.Brokers, ",")

	out, err := exec.Command(kcat, "-b", bootstrap, "-L", "-J").Output()
	if err != nil {
		t.Fatalf("kcat -L: %v", err)
	}
	var meta struct {
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &meta); err != nil {
		t.Fatalf("kcat -L -J output: %v\n%s", err, out)
	}
	listed := map[string]int{}
	for _, tp := range meta.Topics {
		listed[tp.Topic] = len(tp.Partitions)
	}
	specs := env.Names.AllTopics()
	for _, s := range specs {
		if listed[s.Name] != 6 {
			t.Errorf("kcat lists %s with %d partitions, want 6", s.Name, listed[s.Name])
		}
	}

	topic := env.Names.Topic(string(platform.TopicOrders))
	out, err = exec.Command(kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", `%p\t%o\t%S\t%k\n`).Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	perID := map[string]int{}
	for _, line := range lines {
		var partition int32
		var offset, size int64
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			t.Fatalf("kcat line %q", line)
		}
		if _, err := fmt.Sscan(f[0]+" "+f[1]+" "+f[2], &partition, &offset, &size); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		id := f[3]
		perID[id]++
		if want := platform.PartitionFor(id, 6); partition != want {
			t.Errorf("kcat read order %q on partition %d, PartitionFor says %d", id, partition, want)
		}
		if size <= 5 {
			t.Errorf("order %q at %d/%d: a %d-byte value cannot be a framed Avro record", id, partition, offset, size)
		}
	}
	for _, o := range orders {
		if perID[o.ID] < 2 {
			t.Errorf("kcat read %d records of order %q, want its CREATED and its decision", perID[o.ID], o.ID)
		}
	}
	t.Logf("RESULT kcat: %d topics listed with 6 partitions each; %d records of %d orders read from %s",
		len(specs), len(lines), len(orders), topic)
}
