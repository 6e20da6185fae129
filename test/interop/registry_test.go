package interop

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ecosystem"
	"github.com/ordersys/ecosystem/internal/ecosystem/ecotest"
	"github.com/ordersys/ecosystem/internal/email"
	"github.com/ordersys/ecosystem/internal/platform"
)

// registryOrder is an order as the Python peer writes and reads it: the project's Order fields,
// and Channel, the field one newer schema adds (absent from records of the others).
type registryOrder struct {
	avroOrder
	Channel *string `json:"channel,omitempty"`
}

// registryPlan is what python/registry.py produce writes (see its doc).
type registryPlan struct {
	Topics    map[string]string `json:"topics"`
	Schemas   map[string]string `json:"schemas"`
	Customers []map[string]any  `json:"customers"`
	Orders    []registryBatch   `json:"orders"`
	Payments  []map[string]any  `json:"payments"`
}

type registryBatch struct {
	Schema  string          `json:"schema"`
	Records []registryOrder `json:"records"`
	name    string
}

// orderSchemaVariant writes a variant of the project's Order schema: change edits its parsed
// JSON (fields by name); wrap, when true, makes the whole value nullable (["null", Order]).
func orderSchemaVariant(t *testing.T, name string, change func(fields map[string]map[string]any) []any, wrap bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(here(t), "..", "..", "schemas", "order.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	fields := map[string]map[string]any{}
	for _, f := range schema["fields"].([]any) {
		fm := f.(map[string]any)
		fields[fm["name"].(string)] = fm
	}
	if extra := change(fields); extra != nil {
		schema["fields"] = append(schema["fields"].([]any), extra...)
	}
	var out any = schema
	if wrap {
		out = []any{"null", schema}
	}
	text, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".avsc")
	if err := os.WriteFile(path, text, 0o644); err != nil {
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

// recordingEmailer keeps every email the Email service sends.
type recordingEmailer struct {
	mu   sync.Mutex
	sent []email.Email
}

func (r *recordingEmailer) Send(_ context.Context, e email.Email) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, e)
	return nil
}

func (r *recordingEmailer) byOrder() map[string][]email.Email {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]email.Email{}
	for _, e := range r.sent {
		out[e.Order.ID] = append(out[e.Order.ID], e)
	}
	return out
}

// Confluent's Python client, its schema-registry client and AvroSerializer, produce customers,
// orders and payments. The orders come in the project's Order schema and in five newer ones the
// serializer registers as later versions of the same subject: an added defaulted field, int and
// long prices, a nullable price, a nullable value — schemas Java's and Python's resolving
// readers read as the project's. The ecosystem, pointed at the same registry, validates every
// order, enriches it and emails it with its payment; Confluent's AvroDeserializer reads the
// outcome back from `orders`, `order-validations` and the level topics; nothing is
// dead-lettered.
func TestPythonAvroSerializerThroughTheRegistry(t *testing.T) {
	needPeers(t)
	reg := srfake.New()
	defer reg.Close()
	env := stockedEnv(t, 100)
	emails := &recordingEmailer{}
	base := startEcosystem(t, env, func(c *ecosystem.Config) {
		c.Kafka.SchemaRegistryURL = reg.URL()
		c.Emailer = emails
	})
	schemas := filepath.Join(here(t), "..", "..", "schemas")

	levels := []string{"platinum", "gold", "silver", "bronze"}
	var customers []map[string]any
	for i, level := range levels {
		customers = append(customers, map[string]any{"id": 500 + i, "firstName": "Ада", "lastName": fmt.Sprint("Py", i),
			"email": fmt.Sprintf("py%d@example.com", i), "address": "1 Python Way", "level": level})
	}
	channel := func(s string) *string { return &s }
	order := func(id string, customer int, p domain.Product, qty int32, price float64, ch *string) registryOrder {
		return registryOrder{avroOrder{ID: "py-" + id, CustomerID: int64(500 + customer), State: string(domain.OrderCreated),
			Product: string(p), Quantity: qty, Price: price}, ch}
	}
	setType := func(field string, typ any) func(map[string]map[string]any) []any {
		return func(f map[string]map[string]any) []any { f[field]["type"] = typ; return nil }
	}
	batches := []registryBatch{
		{name: "project's", Schema: filepath.Join(schemas, "order.avsc"), Records: []registryOrder{
			order("1", 0, domain.Jumpers, 1, 4.5, nil), order("ключ-🧦", 1, domain.Underpants, 2, 4.5, nil),
			order(strings.Repeat("p", 190), 2, domain.Stockings, 3, 4.5, nil),
			// More than in stock, at a price that keeps the customer's total under the fraud limit.
			order("too-many", 3, domain.Stockings, 1000, 0.5, nil),
		}},
		{name: "added field", Schema: orderSchemaVariant(t, "channel", func(map[string]map[string]any) []any {
			return []any{map[string]any{"name": "channel", "type": "string", "default": "web"}}
		}, false), Records: []registryOrder{
			order("v2-1", 0, domain.Underpants, 1, 4.5, channel("mobile")), order("v2-2", 1, domain.Jumpers, 2, 4.5, channel("")),
			order("v2-negative", 2, domain.Jumpers, -1, 4.5, channel("web")), order("v2-3", 3, domain.Stockings, 1, 4.5, channel("phone")),
		}},
		{name: "int price", Schema: orderSchemaVariant(t, "int-price", setType("price", "int"), false),
			Records: []registryOrder{order("int-price", 0, domain.Jumpers, 1, 4, nil)}},
		{name: "long price", Schema: orderSchemaVariant(t, "long-price", setType("price", "long"), false),
			Records: []registryOrder{order("long-price", 1, domain.Underpants, 1, 4, nil)}},
		{name: "nullable price", Schema: orderSchemaVariant(t, "nullable-price", setType("price", []any{"null", "double"}), false),
			Records: []registryOrder{order("nullable-price", 2, domain.Stockings, 1, 4.5, nil)}},
		{name: "nullable value", Schema: orderSchemaVariant(t, "nullable-value", func(map[string]map[string]any) []any { return nil }, true),
			Records: []registryOrder{order("nullable-value", 3, domain.Jumpers, 1, 4.5, nil)}},
	}
	// The checks each failing order fails (a negative quantity is no reservation either).
	failing := map[string][]domain.CheckType{
		"py-too-many":    {domain.InventoryCheck},
		"py-v2-negative": {domain.OrderDetailsCheck, domain.InventoryCheck},
	}
	var all []registryOrder
	batchOf := map[string]int{}
	var payments []map[string]any
	for i, b := range batches {
		for _, o := range b.Records {
			all = append(all, o)
			batchOf[o.ID] = i
			payments = append(payments, map[string]any{"id": "Payment:" + o.ID, "orderId": o.ID, "ccy": "CZK", "amount": float64(o.Quantity) * o.Price})
		}
	}
	plan := registryPlan{
		Topics: map[string]string{
			"customers": env.Names.Topic(string(platform.TopicCustomers)),
			"orders":    env.Names.Topic(string(platform.TopicOrders)),
			"payments":  env.Names.Topic(string(platform.TopicPayments)),
		},
		Schemas:   map[string]string{"Customer": filepath.Join(schemas, "customer.avsc"), "Payment": filepath.Join(schemas, "payment.avsc")},
		Customers: customers,
		Orders:    batches,
		Payments:  payments,
	}
	planPath := filepath.Join(t.TempDir(), "plan.json")
	b, _ := json.Marshal(plan)
	if err := os.WriteFile(planPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bootstrap := strings.Join(env.Brokers, ",")

	// What the registry holds once Python registered its schemas beside the services' own:
	// the services' and Python's subjects are the same (the topic's, TopicNameStrategy).
	versions := map[string][]int{} // subject → schema id per version, in version order
	for _, line := range pythonRegistryPeer(t, "produce", bootstrap, reg.URL(), planPath) {
		var r struct {
			Subject string `json:"subject"`
			ID      int    `json:"id"`
			Version int    `json:"version"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("python output %q: %v", line, err)
		}
		if r.Version != len(versions[r.Subject])+1 {
			t.Fatalf("registry listed %s version %d after %d versions", r.Subject, r.Version, len(versions[r.Subject]))
		}
		versions[r.Subject] = append(versions[r.Subject], r.ID)
	}
	ordersTopic := plan.Topics["orders"]
	orderIDs := versions[ordersTopic+"-value"]
	if len(orderIDs) != len(batches) || len(slices.Compact(slices.Sorted(slices.Values(orderIDs)))) != len(batches) {
		t.Fatalf("%s-value has schema ids %v by version; want %d distinct: the services' Order, then each of Python's", ordersTopic, orderIDs, len(batches))
	}
	for _, topic := range []string{plan.Topics["customers"], plan.Topics["payments"]} {
		if n := len(versions[topic+"-value"]); n != 1 {
			t.Errorf("%s-value has %d versions; Python wrote the services' own schema, which is one", topic, n)
		}
	}
	servicesOrderID := orderIDs[0]

	// The REST API answers every order Python wrote, with its outcome.
	wantFinal := func(o registryOrder) domain.Order {
		want := o.order()
		want.State = domain.OrderValidated
		if _, fails := failing[o.ID]; fails {
			want.State = domain.OrderFailed
		}
		return want
	}
	for _, o := range all {
		if got := ecotest.Await(t, base, o.ID); got != wantFinal(o) {
			t.Errorf("GET %q validated: %+v, want %+v", o.ID, got, wantFinal(o))
		}
	}

	validationsTopic := env.Names.Topic(string(platform.TopicOrderValidations))
	perLevel := map[string]int{}
	for _, o := range all {
		perLevel[levels[o.CustomerID-500]]++
	}
	wanted := []string{fmt.Sprintf("%s=%d", ordersTopic, 2*len(all)), fmt.Sprintf("%s=%d", validationsTopic, 3*len(all))}
	levelOf := map[string]string{} // level topic → level
	for level, n := range perLevel {
		topic, _ := env.Names.LevelTopic(level)
		levelOf[string(topic)] = level
		wanted = append(wanted, fmt.Sprintf("%s=%d", topic, n))
	}
	lines := pythonRegistryPeer(t, append([]string{"read", bootstrap, reg.URL(), "60"}, wanted...)...)

	created, final := map[string]registryRecord{}, map[string]registryRecord{}
	verdicts := map[string]map[domain.CheckType]string{}
	enriched := map[string]int{}
	perTopic := map[string]int{}
	for _, line := range lines {
		var rec registryRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("python output %q: %v", line, err)
		}
		perTopic[rec.Topic]++
		key, _ := hex.DecodeString(rec.Key)
		if want := platform.PartitionFor(string(key), 6); rec.Partition != want {
			t.Errorf("%s record %q on partition %d, PartitionFor says %d", rec.Topic, key, rec.Partition, want)
		}
		switch rec.Topic {
		case ordersTopic:
			var o registryOrder
			if err := json.Unmarshal(rec.Value, &o); err != nil || o.ID != string(key) {
				t.Fatalf("orders record %q: %s (%v)", key, rec.Value, err)
			}
			rec.order = o
			into := final
			if o.State == string(domain.OrderCreated) {
				into = created
			}
			if _, dup := into[o.ID]; dup {
				t.Errorf("order %q: a second %s record", o.ID, o.State)
			}
			into[o.ID] = rec
		case validationsTopic:
			var v struct {
				OrderID          string `json:"orderId"`
				CheckType        string `json:"checkType"`
				ValidationResult string `json:"validationResult"`
			}
			if err := json.Unmarshal(rec.Value, &v); err != nil || v.OrderID != string(key) {
				t.Fatalf("order-validations record %q: %s (%v)", key, rec.Value, err)
			}
			if verdicts[v.OrderID] == nil {
				verdicts[v.OrderID] = map[domain.CheckType]string{}
			}
			if prev, dup := verdicts[v.OrderID][domain.CheckType(v.CheckType)]; dup {
				t.Errorf("order %q: %s answered twice (%s, then %s)", v.OrderID, v.CheckType, prev, v.ValidationResult)
			}
			verdicts[v.OrderID][domain.CheckType(v.CheckType)] = v.ValidationResult
		default:
			var e struct {
				ID            string `json:"id"`
				CustomerID    int64  `json:"customerId"`
				CustomerLevel string `json:"customerLevel"`
			}
			if err := json.Unmarshal(rec.Value, &e); err != nil || e.ID != string(key) {
				t.Fatalf("%s record %q: %s (%v)", rec.Topic, key, rec.Value, err)
			}
			if e.CustomerLevel != levelOf[rec.Topic] || levels[e.CustomerID-500] != e.CustomerLevel {
				t.Errorf("order %q on %s for customer %d with level %q", e.ID, rec.Topic, e.CustomerID, e.CustomerLevel)
			}
			enriched[e.ID]++
		}
	}

	sent := emails.byOrder()
	for _, o := range all {
		c, f := created[o.ID], final[o.ID]
		// The CREATED as Python wrote it, under the id its serializer registered for its batch.
		wantID := orderIDs[batchOf[o.ID]]
		switch {
		case c.Topic == "":
			t.Errorf("order %q: Python read no CREATED", o.ID)
		case c.SchemaID != wantID || !sameRegistryOrder(c.order, o):
			t.Errorf("order %q: CREATED read back as %+v (schema id %d), Python wrote %+v (schema id %d)", o.ID, c.order, c.SchemaID, o, wantID)
		}
		// The final state in the services' own schema, so a field only the newer schema has
		// (channel) is not in it: the services write what they read.
		back := o.avroOrder
		back.State = string(wantFinal(o).State)
		switch {
		case f.Topic == "":
			t.Errorf("order %q: Python read no final state", o.ID)
		case f.SchemaID != servicesOrderID || f.order.avroOrder != back || f.order.Channel != nil:
			t.Errorf("order %q: final record %+v (schema id %d), want %+v in the services' schema id %d", o.ID, f.order, f.SchemaID, back, servicesOrderID)
		}
		for _, check := range []domain.CheckType{domain.OrderDetailsCheck, domain.FraudCheck, domain.InventoryCheck} {
			want := string(domain.Pass)
			if slices.Contains(failing[o.ID], check) {
				want = string(domain.Fail)
			}
			if got := verdicts[o.ID][check]; got != want {
				t.Errorf("order %q: %s %q, want %s", o.ID, check, got, want)
			}
		}
		if n := enriched[o.ID]; n != 1 {
			t.Errorf("order %q enriched %d times, want once on the %s topic", o.ID, n, levels[o.CustomerID-500])
		}
		// One email, with the order, the payment Python wrote and the customer.
		switch es := sent[o.ID]; {
		case len(es) != 1:
			t.Errorf("order %q: %d emails, want 1", o.ID, len(es))
		case es[0].Payment.ID != "Payment:"+o.ID || es[0].Payment.Amount != float64(o.Quantity)*o.Price ||
			es[0].Customer.ID != o.CustomerID || es[0].Customer.Level != levels[o.CustomerID-500] || es[0].Order.Price != o.Price:
			t.Errorf("order %q: email %+v", o.ID, es[0])
		}
	}

	// Nothing any service could not read.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadLetters := env.Names.Topic(string(platform.TopicDeadLetters))
	ends, err := env.Admin.ListEndOffsets(ctx, deadLetters)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("%s partition %d holds %d records", deadLetters, o.Partition, o.Offset)
		}
	})

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

	var names []string
	for _, b := range batches {
		names = append(names, b.name)
	}
	t.Logf("RESULT python confluent-kafka AvroSerializer/AvroDeserializer: %d customers, %d orders in %d Order schemas (%s: ids %v) and %d payments written; every order answered through REST; read back: %d records from orders, %d from order-validations, %d from the level topics; %d emails; 0 dead letters",
		len(customers), len(all), len(batches), strings.Join(names, ", "), orderIDs, len(payments),
		perTopic[ordersTopic], perTopic[validationsTopic], len(lines)-perTopic[ordersTopic]-perTopic[validationsTopic], len(emails.sent))
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
