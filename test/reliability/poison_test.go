package reliability

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/linkedin/goavro/v2"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// poison is one hostile record and what the ecosystem must do with it.
type poison struct {
	what  string
	topic string
	key   []byte
	value []byte
	// groups are the consumer groups that must dead-letter it, each once; none for records
	// that are logged and ignored (table inputs read through joins and lookups, tombstones).
	groups []string
	// reasons are fragments of the dlq.error header; the dead letter must carry one of them.
	reasons []string
}

// consumersOf lists the groups that read topic as a stream input and dead-letter what does
// not decode.
func consumersOf(topic string) []string {
	switch topic {
	case string(platform.TopicOrders):
		return []string{string(platform.GroupOrders), string(platform.GroupValidation), string(platform.GroupDetails),
			string(platform.GroupFraud), string(platform.GroupInventory), string(platform.GroupEmail)}
	case string(platform.TopicOrderValidations):
		return []string{string(platform.GroupValidation)}
	case string(platform.TopicPayments), string(platform.TopicCustomers), platform.LoopTopic(platform.GroupEmail):
		return []string{string(platform.GroupEmail)}
	case platform.LoopTopic(platform.GroupFraud):
		return []string{string(platform.GroupFraud)}
	case platform.LoopTopic(platform.GroupInventory):
		return []string{string(platform.GroupInventory)}
	}
	return nil
}

// evolvedAvro encodes native with the shipped schema of record plus one extra symbol in the
// enum named enum, framed with the record's static schema id: what a producer on a newer
// schema version writes. Its enum index is out of range for the shipped schema.
func evolvedAvro(t *testing.T, record, enum, symbol string, native map[string]any) []byte {
	t.Helper()
	text, err := platform.SchemaText(record)
	if err != nil {
		t.Fatal(err)
	}
	var schema any
	if err := json.Unmarshal([]byte(text), &schema); err != nil {
		t.Fatal(err)
	}
	found := false
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "enum" && x["name"] == enum {
				x["symbols"] = append(x["symbols"].([]any), symbol)
				found = true
			}
			for _, child := range x {
				walk(child)
			}
		case []any:
			for _, child := range x {
				walk(child)
			}
		}
	}
	walk(schema)
	if !found {
		t.Fatalf("no enum %s in %s", enum, record)
	}
	evolved, _ := json.Marshal(schema)
	codec, err := goavro.NewCodec(string(evolved))
	if err != nil {
		t.Fatal(err)
	}
	header := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(header[1:], uint32(platform.StaticSchemaIDs[record]))
	out, err := codec.BinaryFromNative(header, native)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// framed returns an Avro header with schema id id followed by body.
func framed(id uint32, body []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], id)
	return append(b, body...)
}

// poisonRecords is the hostile input of scenario 4: for every input topic, bytes that are
// not the topic's format, ids of unknown or other schemas, corrupt and truncated bodies, enum
// symbols from a newer schema, values the domain refuses, and tombstones.
func poisonRecords(t *testing.T, codecs *platform.Codecs) []poison {
	mustMarshal := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	goodOrder := domain.Order{ID: "poison-template", CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1}
	order := mustMarshal(codecs.Order.Marshal(goodOrder))
	payment := mustMarshal(codecs.Payment.Marshal(domain.Payment{ID: "poison-payment", OrderID: "x", Ccy: "EUR", Amount: 1}))
	validation := mustMarshal(codecs.OrderValidation.Marshal(domain.OrderValidation{OrderID: "poison-v", CheckType: domain.FraudCheck, ValidationResult: domain.Pass}))
	customer := mustMarshal(codecs.Customer.Marshal(domain.Customer{ID: 4242, Email: "x@example.test", Level: "gold"}))

	var out []poison
	avroTopic := func(topic, label string, good []byte, enumRecord []byte) {
		out = append(out,
			poison{what: label + ": text", topic: topic, value: []byte("not avro: " + label), reasons: []string{platform.ErrUnknownMagic.Error()}},
			poison{what: label + ": two bytes", topic: topic, value: []byte{0, 1}, reasons: []string{platform.ErrShortRecord.Error()}},
			poison{what: label + ": unknown schema id", topic: topic, value: framed(99, []byte(label)), reasons: []string{platform.ErrUnknownSchemaID.Error()}},
			poison{what: label + ": truncated body", topic: topic, value: good[:len(good)-3], reasons: []string{platform.ErrCorruptAvro.Error()}},
			poison{what: label + ": trailing bytes", topic: topic, value: append(append([]byte(nil), good...), 0x2a), reasons: []string{platform.ErrCorruptAvro.Error()}},
			poison{what: label + ": huge string length", topic: topic, value: framed(binary.BigEndian.Uint32(good[1:5]), []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}), reasons: []string{platform.ErrCorruptAvro.Error()}},
			poison{what: label + ": tombstone", topic: topic},
		)
		if enumRecord != nil {
			out = append(out, poison{what: label + ": enum symbol of a newer schema", topic: topic, value: enumRecord, reasons: []string{platform.ErrCorruptAvro.Error()}})
		}
	}
	orders := string(platform.TopicOrders)
	avroTopic(orders, "order", order, evolvedAvro(t, "Order", "OrderState", "LOST", map[string]any{
		"id": "poison-enum", "customerId": int64(1), "state": "LOST", "product": "JUMPERS", "quantity": int32(1), "price": 1.0}))
	out = append(out,
		poison{what: "order: a payment's schema id", topic: orders, value: payment, reasons: []string{platform.ErrWrongSchema.Error()}},
		poison{what: "order: unknown product of a newer schema", topic: orders, reasons: []string{platform.ErrCorruptAvro.Error()},
			value: evolvedAvro(t, "Order", "Product", "SOCKS", map[string]any{
				"id": "poison-socks", "customerId": int64(1), "state": "CREATED", "product": "SOCKS", "quantity": int32(1), "price": 1.0})})
	validations := string(platform.TopicOrderValidations)
	avroTopic(validations, "validation", validation, evolvedAvro(t, "OrderValidation", "OrderValidationType", "CREDIT_CHECK",
		map[string]any{"orderId": "poison-v2", "checkType": "CREDIT_CHECK", "validationResult": "PASS"}))
	out = append(out, poison{what: "validation: an order's schema id", topic: validations, value: order, reasons: []string{platform.ErrWrongSchema.Error()}})
	payments := string(platform.TopicPayments)
	avroTopic(payments, "payment", payment, nil)
	out = append(out, poison{what: "payment: no order id", topic: payments, reasons: []string{platform.ErrInvalidValue.Error()},
		value: mustMarshal(codecs.Payment.Marshal(domain.Payment{ID: "poison-no-order", Ccy: "EUR", Amount: 1}))})
	customers := string(platform.TopicCustomers)
	for _, p := range []poison{
		{what: "customer: text", value: []byte("not a customer"), reasons: []string{platform.ErrUnknownMagic.Error()}},
		{what: "customer: an order's schema id", value: order, reasons: []string{platform.ErrWrongSchema.Error()}},
		{what: "customer: truncated body", value: customer[:len(customer)-2], reasons: []string{platform.ErrCorruptAvro.Error()}},
	} {
		// Keys of customers nobody orders for: a bad value under a real customer's key would
		// rightly hold that customer's orders.
		p.topic, p.key = customers, []byte(platform.CustomerKey(int64(4000+len(out))))
		out = append(out, p)
	}
	out = append(out, poison{what: "customer: 3-byte key", topic: customers, key: []byte("abc"), value: customer, reasons: []string{"wrong length"}})

	// Loop topics carry each service's private CBOR messages (JSON from earlier versions is
	// still read); their formats change with the services, so the records here are either not
	// a message at all or one that no version of the service writes, and refused as either.
	corruptJSON, corruptCBOR, invalid := platform.ErrCorruptJSON.Error(), platform.ErrCorruptCBOR.Error(), platform.ErrInvalidValue.Error()
	loop := func(g goka.Group, label string, values ...string) {
		for i, v := range values {
			reasons := []string{corruptJSON, corruptCBOR, invalid}
			if i == 0 {
				reasons = []string{corruptCBOR}
			}
			out = append(out, poison{what: fmt.Sprintf("%s loop: %q", label, v), topic: platform.LoopTopic(g),
				key: []byte(fmt.Sprintf("poison-%s-%d", label, i)), value: []byte(v), reasons: reasons})
		}
	}
	cborOf := func(v map[int]any) string {
		b, err := cbor.Marshal(v)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	cborOrder := func(state string) map[int]any {
		return map[int]any{1: "p9", 2: 1, 3: state, 4: "JUMPERS", 5: 1, 6: 1.0}
	}
	loop(platform.GroupFraud, "fraud", "not json", "null",
		`{"order":{"id":"p1","customerId":1,"state":"LOST","product":"JUMPERS","quantity":1,"price":1},"eventTimeMs":1}`,
		`{"order":{"id":"p2","customerId":1,"state":"VALIDATED","product":"JUMPERS","quantity":1,"price":1},"eventTimeMs":1}`,
		`{"order":{"id":"p3","quantity":"many"}}`,
		cborOf(map[int]any{1: cborOrder("VALIDATED"), 2: 1}),
		cborOf(map[int]any{1: cborOrder("CREATED"), 2: 1, 9: "not ours"}))
	loop(platform.GroupInventory, "inventory", "not json", "null", `{}`,
		`{"reserve":{"orderId":"p4","quantity":1}}`,
		`{"verdict":{"result":"ERROR"}}`,
		`{"release":{"orderId":"p5","quantity":1e99,"source":{"topic":"orders"}}}`,
		`{"reserve":{"orderId":"p6","quantity":1,"source":{"topic":"orders"}},"verdict":{"result":"PASS"}}`,
		cborOf(map[int]any{}),
		cborOf(map[int]any{4: map[int]any{1: "ERROR"}}),
		cborOf(map[int]any{1: map[int]any{1: "p10", 2: 1, 4: map[int]any{1: "orders"}}, 4: map[int]any{1: "PASS"}}),
		cborOf(map[int]any{3: map[int]any{1: "p11", 7: 1}}))
	loop(platform.GroupEmail, "email", "not json", "null", `{}`,
		`{"payment":{"payment":{"id":"p7","orderId":"p7"}},"customer":{"id":1}}`,
		cborOf(map[int]any{}),
		cborOf(map[int]any{1: map[int]any{1: map[int]any{1: "p12", 2: "p12"}}, 3: map[int]any{1: 1}}))
	for i := range out {
		if out[i].value != nil && out[i].groups == nil {
			out[i].groups = consumersOf(out[i].topic)
		}
		if out[i].key == nil {
			out[i].key = []byte(fmt.Sprintf("poison-%d", i))
		}
	}
	// Table inputs read through a join or lookup are logged and ignored: nothing to dead-letter.
	out = append(out,
		poison{what: "membership: not json", topic: string(platform.TopicOrdersMembership), key: []byte("0"), value: []byte("not json")},
		poison{what: "stock: unknown product, 2 bytes", topic: string(platform.TopicWarehouseInventory), key: []byte("NOT-A-PRODUCT"), value: []byte{1, 2}},
	)
	return out
}

// Scenario 4: poison records on every input topic. Each group that reads a topic as a stream
// dead-letters each poison record once, unchanged, with headers saying where it came from and
// why; table inputs read through joins and lookups log and ignore them; nothing crashes, and
// good orders afterwards are still validated and emailed.
func TestPoisonRecords(t *testing.T) {
	suiteMode(t, modeShort, modeFull)
	c := newCluster(t, 4)
	stock := sampleStock(1000, 1000)
	c.seed(stock)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A stock row that is not a 4-byte count, for a product that is ordered, written before
	// the services start so that the inventory service's join has it: orders of the product
	// fail the inventory check (the row counts as missing) until the row is fixed.
	stockTopic := c.names.Topic(string(platform.TopicWarehouseInventory))
	if err := c.client.ProduceSync(ctx, &kgo.Record{Topic: stockTopic, Key: []byte(domain.Stockings), Value: []byte{0, 0, 7}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	svcs := c.startEcosystem()
	base := svcs[kindOrders].url()

	records := poisonRecords(t, c.codecs)
	for _, p := range records {
		rec := &kgo.Record{Topic: c.names.Topic(p.topic), Key: p.key, Value: p.value}
		if err := c.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("write %s: %v", p.what, err)
		}
	}

	place := func(o domain.Order) domain.Order {
		t.Helper()
		body, _ := json.Marshal(o)
		resp, err := http.Post(base+"/v1/orders", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", o.ID, resp.StatusCode, text)
		}
		if err := c.pay(ctx, o); err != nil {
			t.Fatal(err)
		}
		resp, err = http.Get(base + "/v1/orders/" + o.ID + "/validated?timeout=30000")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ = io.ReadAll(resp.Body)
		var got domain.Order
		if resp.StatusCode != http.StatusOK || json.Unmarshal(text, &got) != nil {
			t.Fatalf("GET %s/validated: %d %s", o.ID, resp.StatusCode, text)
		}
		return got
	}
	good := domain.Order{ID: "after-poison-1", CustomerID: 1, State: domain.OrderCreated, Product: domain.Underpants, Quantity: 1, Price: 5}
	if got := place(good); got.State != domain.OrderValidated {
		t.Errorf("good order after the poison: %s, want VALIDATED", got.State)
	}
	stockings := domain.Order{ID: "after-poison-2", CustomerID: 2, State: domain.OrderCreated, Product: domain.Stockings, Quantity: 1, Price: 5}
	if got := place(stockings); got.State != domain.OrderFailed {
		t.Errorf("order of a product whose stock row is unusable: %s, want FAILED", got.State)
	}
	if err := c.client.ProduceSync(ctx, &kgo.Record{Topic: stockTopic, Key: []byte(domain.Stockings), Value: []byte{0, 0, 0, 7}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fixed := domain.Order{ID: "after-poison-3", CustomerID: 3, State: domain.OrderCreated, Product: domain.Stockings, Quantity: 1, Price: 5}
	var got domain.Order
	fixedAfter := 0
	// The stock table is read through a join, which sees the fixed row once it has consumed
	// it; an order placed before that fails like the one above. Poll with new orders, each
	// decided once, until one sees the fix: that is the service working, not a retry of one.
	for i := 0; ; i++ {
		fixed.ID = fmt.Sprintf("after-poison-3-%d", i)
		if got = place(fixed); got.State == domain.OrderValidated || i == 10 {
			break
		}
		fixedAfter++
		time.Sleep(200 * time.Millisecond)
	}
	if got.State != domain.OrderValidated {
		t.Errorf("order after the stock row was fixed: %s, want VALIDATED", got.State)
	}
	if !strings.Contains(svcs[kindInventory].output(), "unusable stock row treated as missing") {
		t.Errorf("inventory did not log the unusable stock row")
	}
	kafkatest.Eventually(t, 30*time.Second, "email for the good order after the poison", func() bool {
		return emailsSent(svcs[kindEmail].output())[good.ID] == 1
	})

	// Dead letters: exactly the expected (record, group) pairs, each once.
	type dlqKey struct{ topic, group, value string }
	want := map[dlqKey]poison{}
	for _, p := range records {
		for _, g := range p.groups {
			want[dlqKey{c.names.Topic(p.topic), c.names.Topic(g), string(p.value)}] = p
		}
	}
	var letters []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	for {
		letters = c.readTopic(c.names.Topic(string(platform.TopicDeadLetters)))
		if len(letters) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	letters = c.readTopic(c.names.Topic(string(platform.TopicDeadLetters)))
	seen := map[dlqKey]int{}
	byGroup := map[string]int{}
	for _, r := range letters {
		h := map[string]string{}
		for _, hd := range r.Headers {
			h[hd.Key] = string(hd.Value)
		}
		k := dlqKey{h[platform.HeaderDLQSourceTopic], h[platform.HeaderDLQGroup], string(r.Value)}
		seen[k]++
		byGroup[k.group]++
		p, ok := want[k]
		if !ok {
			t.Errorf("unexpected dead letter from %s in %s: %q (%s)", k.topic, k.group, r.Value, h[platform.HeaderDLQError])
			continue
		}
		if !bytes.Equal(r.Key, p.key) {
			t.Errorf("dead letter of %q has key %q, want %q", p.what, r.Key, p.key)
		}
		for _, name := range []string{platform.HeaderDLQSourcePartition, platform.HeaderDLQSourceOffset} {
			if h[name] == "" {
				t.Errorf("dead letter of %q in %s lacks header %s", p.what, k.group, name)
			}
		}
		if !slices.ContainsFunc(p.reasons, func(r string) bool { return strings.Contains(h[platform.HeaderDLQError], r) }) {
			t.Errorf("dead letter of %q in %s: error %q, want it to mention one of %q", p.what, k.group, h[platform.HeaderDLQError], p.reasons)
		}
	}
	for k, p := range want {
		if n := seen[k]; n != 1 {
			t.Errorf("%q dead-lettered %d times by %s, want once", p.what, n, k.group)
		}
	}
	c.checkAlive()

	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, fmt.Sprintf("%s=%d", g, byGroup[g]))
	}
	sort.Strings(groups)
	type summary struct {
		Scenario      string   `json:"scenario"`
		PoisonRecords int      `json:"poisonRecords"`
		Expected      int      `json:"expectedDeadLetters"`
		DeadLetters   int      `json:"deadLetters"`
		ByGroup       []string `json:"byGroup"`
		// FixedAfterOrders is how many stockings orders after the stock row was fixed were
		// still judged against the broken row (the join sees the fix moments later).
		FixedAfterOrders int `json:"fixedAfterOrders"`
	}
	logReport(t, summary{Scenario: "poison records", PoisonRecords: len(records), Expected: len(want), DeadLetters: len(letters),
		ByGroup: groups, FixedAfterOrders: fixedAfter})
}
