package interop

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ecosystem"
	"github.com/ordersys/ecosystem/internal/ecosystem/ecotest"
	"github.com/ordersys/ecosystem/internal/platform"
)

// registryOrder is an order as the Python peer writes and reads it: the project's Order fields,
// and Channel, the field the newer schema adds (absent from records of the first one).
type registryOrder struct {
	avroOrder
	Channel *string `json:"channel,omitempty"`
}

// registryPlan is what python/registry.py produce writes (see its doc).
type registryPlan struct {
	Prefix    string            `json:"prefix"`
	Topics    map[string]string `json:"topics"`
	Schemas   map[string]string `json:"schemas"`
	Customers []map[string]any  `json:"customers"`
	Orders    []registryBatch   `json:"orders"`
	Payments  []map[string]any  `json:"payments"`
}

type registryBatch struct {
	Schema  string          `json:"schema"`
	Records []registryOrder `json:"records"`
}

// newerOrderSchema writes the project's Order schema with one field added, with a default: a
// change the Confluent registry's default BACKWARD compatibility accepts.
func newerOrderSchema(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(here(t), "..", "..", "schemas", "order.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	schema["fields"] = append(schema["fields"].([]any), map[string]any{"name": "channel", "type": "string", "default": "web"})
	out, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "order_v2.avsc")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pythonRegistryPeer runs python/registry.py with args and returns its output lines.
func pythonRegistryPeer(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command(filepath.Join(venv(t), "bin", "python"), append([]string{filepath.Join(here(t), "python", "registry.py")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python registry.py %s: %v\n%s", args[0], err, stderr.String())
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}

// Confluent's Python client, its schema-registry client and AvroSerializer, produce customers,
// orders (some with a newer Order schema the serializer registers as a second version of
// orders-value) and payments; the ecosystem, pointed at the same registry, validates and
// enriches every one; Confluent's AvroDeserializer reads the outcome back from `orders` and
// the level topics.
func TestPythonAvroSerializerThroughTheRegistry(t *testing.T) {
	needPeers(t)
	reg := srfake.New()
	defer reg.Close()
	env := stockedEnv(t, 100)
	base := startEcosystem(t, env, func(c *ecosystem.Config) { c.Kafka.SchemaRegistryURL = reg.URL() })
	schemas := filepath.Join(here(t), "..", "..", "schemas")

	levels := []string{"platinum", "gold", "silver", "bronze"}
	var customers []map[string]any
	for i, level := range levels {
		customers = append(customers, map[string]any{"id": 500 + i, "firstName": "Ада", "lastName": fmt.Sprint("Py", i),
			"email": fmt.Sprintf("py%d@example.com", i), "address": "1 Python Way", "level": level})
	}
	channel := func(s string) *string { return &s }
	order := func(id string, customer int, p domain.Product, qty int32, ch *string) registryOrder {
		return registryOrder{avroOrder{ID: "py-" + id, CustomerID: int64(500 + customer), State: string(domain.OrderCreated),
			Product: string(p), Quantity: qty, Price: 4.5}, ch}
	}
	// More than in stock, at a price that keeps the customer's total under the fraud limit.
	tooMany := order("too-many", 3, domain.Stockings, 1000, nil)
	tooMany.Price = 0.5
	first := []registryOrder{
		order("1", 0, domain.Jumpers, 1, nil), order("ключ-🧦", 1, domain.Underpants, 2, nil),
		order(strings.Repeat("p", 190), 2, domain.Stockings, 3, nil), tooMany,
	}
	newer := []registryOrder{
		order("v2-1", 0, domain.Underpants, 1, channel("mobile")), order("v2-2", 1, domain.Jumpers, 2, channel("")),
		order("v2-negative", 2, domain.Jumpers, -1, channel("web")), order("v2-3", 3, domain.Stockings, 1, channel("phone")),
	}
	failing := map[string]bool{"py-too-many": true, "py-v2-negative": true}
	var all []registryOrder
	var payments []map[string]any
	for _, o := range append(append([]registryOrder{}, first...), newer...) {
		all = append(all, o)
		payments = append(payments, map[string]any{"id": "Payment:" + o.ID, "orderId": o.ID, "ccy": "CZK", "amount": float64(o.Quantity) * o.Price})
	}
	plan := registryPlan{
		Prefix: env.Names.Prefix,
		Topics: map[string]string{
			"customers": env.Names.Topic(string(platform.TopicCustomers)),
			"orders":    env.Names.Topic(string(platform.TopicOrders)),
			"payments":  env.Names.Topic(string(platform.TopicPayments)),
		},
		Schemas:   map[string]string{"Customer": filepath.Join(schemas, "customer.avsc"), "Payment": filepath.Join(schemas, "payment.avsc")},
		Customers: customers,
		Orders: []registryBatch{
			{Schema: filepath.Join(schemas, "order.avsc"), Records: first},
			{Schema: newerOrderSchema(t), Records: newer},
		},
		Payments: payments,
	}
	planPath := filepath.Join(t.TempDir(), "plan.json")
	b, _ := json.Marshal(plan)
	if err := os.WriteFile(planPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bootstrap := strings.Join(env.Brokers, ",")

	// What the registry holds once Python registered its schemas beside the services' own.
	versions := map[string][]int{} // subject → schema id per version
	for _, line := range pythonRegistryPeer(t, "produce", bootstrap, reg.URL(), planPath) {
		var r struct {
			Subject string `json:"subject"`
			ID      int    `json:"id"`
			Version int    `json:"version"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("python output %q: %v", line, err)
		}
		versions[r.Subject] = append(versions[r.Subject], r.ID)
	}
	orderIDs := versions["orders-value"]
	if len(orderIDs) != 2 {
		t.Fatalf("orders-value has schema ids %v by version; want the project's Order and Python's newer one", orderIDs)
	}
	firstID, newerID := orderIDs[0], orderIDs[1]

	// The REST API answers every order Python wrote, with its outcome.
	for _, o := range all {
		got := ecotest.Await(t, base, o.ID)
		want := o.order()
		want.State = domain.OrderValidated
		if failing[o.ID] {
			want.State = domain.OrderFailed
		}
		if got != want {
			t.Errorf("GET %q validated: %+v, want %+v", o.ID, got, want)
		}
	}

	ordersTopic := plan.Topics["orders"]
	perLevel := map[string]int{}
	for _, o := range all {
		perLevel[levels[o.CustomerID-500]]++
	}
	wanted := []string{fmt.Sprintf("%s=%d", ordersTopic, 2*len(all))}
	levelOf := map[string]string{} // level topic → level
	for level, n := range perLevel {
		topic, _ := env.Names.LevelTopic(level)
		levelOf[string(topic)] = level
		wanted = append(wanted, fmt.Sprintf("%s=%d", topic, n))
	}
	lines := pythonRegistryPeer(t, append([]string{"read", bootstrap, reg.URL(), env.Names.Prefix, "60"}, wanted...)...)

	created, final := map[string]registryRecord{}, map[string]registryRecord{}
	enriched := map[string][]registryRecord{}
	for _, line := range lines {
		var rec registryRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("python output %q: %v", line, err)
		}
		key, _ := hex.DecodeString(rec.Key)
		if want := platform.PartitionFor(string(key), 6); rec.Partition != want {
			t.Errorf("%s record %q on partition %d, PartitionFor says %d", rec.Topic, key, rec.Partition, want)
		}
		if rec.Topic == ordersTopic {
			var o registryOrder
			if err := json.Unmarshal(rec.Value, &o); err != nil || o.ID != string(key) {
				t.Fatalf("orders record %q: %s (%v)", key, rec.Value, err)
			}
			rec.order = o
			if o.State == string(domain.OrderCreated) {
				created[o.ID] = rec
			} else {
				final[o.ID] = rec
			}
			continue
		}
		var e struct {
			ID            string `json:"id"`
			CustomerID    int64  `json:"customerId"`
			CustomerLevel string `json:"customerLevel"`
		}
		if err := json.Unmarshal(rec.Value, &e); err != nil || e.ID != string(key) {
			t.Fatalf("%s record %q: %s (%v)", rec.Topic, key, rec.Value, err)
		}
		if e.CustomerLevel != levelOf[rec.Topic] {
			t.Errorf("order %q on %s with level %q", e.ID, rec.Topic, e.CustomerLevel)
		}
		enriched[e.ID] = append(enriched[e.ID], rec)
	}

	isNewer := map[string]bool{}
	for _, o := range newer {
		isNewer[o.ID] = true
	}
	for _, o := range all {
		c, f := created[o.ID], final[o.ID]
		wantID := firstID
		if isNewer[o.ID] {
			wantID = newerID
		}
		switch {
		case c.Topic == "":
			t.Errorf("order %q: Python read no CREATED", o.ID)
		case c.SchemaID != wantID || !sameRegistryOrder(c.order, o):
			t.Errorf("order %q: CREATED read back as %+v (schema id %d), Python wrote %+v (schema id %d)", o.ID, c.order, c.SchemaID, o, wantID)
		}
		wantState := domain.OrderValidated
		if failing[o.ID] {
			wantState = domain.OrderFailed
		}
		back := o.avroOrder
		back.State = string(wantState)
		switch {
		case f.Topic == "":
			t.Errorf("order %q: Python read no final state", o.ID)
		case f.SchemaID != firstID || f.order.avroOrder != back || f.order.Channel != nil:
			t.Errorf("order %q: final record %+v (schema id %d), want %+v in the services' schema id %d", o.ID, f.order, f.SchemaID, back, firstID)
		}
		if n := len(enriched[o.ID]); n != 1 {
			t.Errorf("order %q enriched %d times, want once on the %s topic", o.ID, n, levels[o.CustomerID-500])
		}
	}
	// kcat: Debian's build has no Avro support (it says "This build of kcat lacks
	// Avro/Schema-Registry support"), so it reads the Confluent header with its pack-string
	// deserializer: magic byte 0 and a schema id the registry holds under orders-value, the
	// same id Python's deserializer found.
	out, err := exec.Command("kcat", "-b", bootstrap, "-C", "-t", ordersTopic, "-o", "beginning", "-e", "-q",
		"-s", "value=>bI", "-f", `%k\t%s\n`).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	fromKcat, fromPython := map[string]int{}, map[string]int{}
	kcatLines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, line := range kcatLines {
		key, header, _ := strings.Cut(line, "\t")
		// The pack string prints its two values without a separator: "0" then the id.
		id, magicZero := strings.CutPrefix(header, "0")
		if !magicZero || id == "" {
			t.Errorf("kcat read %q: header %q is not magic byte 0 and a schema id", key, header)
		}
		fromKcat[key+" id "+id]++
	}
	for _, r := range append(slices.Collect(maps.Values(created)), slices.Collect(maps.Values(final))...) {
		fromPython[r.order.ID+" id "+fmt.Sprint(r.SchemaID)]++
	}
	if !maps.Equal(fromKcat, fromPython) {
		t.Errorf("kcat read the headers %v, Python's deserializer %v", fromKcat, fromPython)
	}
	t.Logf("RESULT python confluent-kafka AvroSerializer/AvroDeserializer: %d customers, %d orders (%d in a newer Order schema, id %d beside %d), %d payments written; %d records read back from orders and %d from the level topics; subjects %v",
		len(customers), len(all), len(newer), newerID, firstID, len(payments), len(created)+len(final), len(lines)-len(created)-len(final), versions)
	t.Logf("RESULT kcat through the registry: %d orders records, each Confluent header magic 0 and a schema id of orders-value, the ids Python's deserializer used", len(kcatLines))
}

// registryRecord is one record python/registry.py read prints.
type registryRecord struct {
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Key       string          `json:"key"`
	SchemaID  int             `json:"schemaId"`
	Value     json.RawMessage `json:"value"`
	order     registryOrder
}

func sameRegistryOrder(a, b registryOrder) bool {
	if a.avroOrder != b.avroOrder || (a.Channel == nil) != (b.Channel == nil) {
		return false
	}
	return a.Channel == nil || *a.Channel == *b.Channel
}
