package sampledata_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

var codecs = platform.StaticCodecs()

func mustMarshal[T any](t *testing.T, c *platform.AvroCodec[T], v T) []byte {
	t.Helper()
	b, err := c.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// asJSON renders v the way tail prints it and reads it back as generic JSON, so expectations
// are written as the user sees them.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(b []byte) map[string]any {
	return map[string]any{"base64": base64.StdEncoding.EncodeToString(b)}
}

var sampleOrder = domain.Order{ID: "o-1", CustomerID: 15, State: domain.OrderCreated, Product: domain.Underpants, Quantity: 3, Price: 5}

func TestDecoderChoosesTheFormatByTopic(t *testing.T) {
	names := platform.Names{Prefix: "p."}
	dec := sampledata.NewDecoder(names, codecs)
	order := mustMarshal(t, codecs.Order, sampleOrder)
	customer := sampledata.SampleCustomers()[6]
	garbage := []byte{0xff, 0x00, 0x01}
	cases := []struct {
		name      string
		topic     string // unprefixed
		key       []byte
		value     []byte
		headers   []kgo.RecordHeader
		wantKey   any
		wantValue any
		wantErr   string // substring of the error field; "" for none
	}{
		{"Avro order", "orders", []byte("o-1"), order, nil, "o-1", asJSON(t, sampleOrder), ""},
		{"Avro validation", "order-validations", []byte("o-1"),
			mustMarshal(t, codecs.OrderValidation, domain.OrderValidation{OrderID: "o-1", CheckType: domain.FraudCheck, ValidationResult: domain.Pass}), nil,
			"o-1", map[string]any{"orderId": "o-1", "checkType": "FRAUD_CHECK", "validationResult": "PASS"}, ""},
		{"Avro payment", "payments", []byte("Payment:1234"),
			mustMarshal(t, codecs.Payment, domain.Payment{ID: "Payment:1234", OrderID: "0", Ccy: "CZK", Amount: 1000}), nil,
			"Payment:1234", map[string]any{"id": "Payment:1234", "orderId": "0", "ccy": "CZK", "amount": 1000.0}, ""},
		{"enriched order on a level topic", "gold", []byte("o-1"),
			mustMarshal(t, codecs.OrderEnriched, domain.OrderEnriched{ID: "o-1", CustomerID: 15, CustomerLevel: "gold"}), nil,
			"o-1", map[string]any{"id": "o-1", "customerId": 15.0, "customerLevel": "gold"}, ""},
		{"stock as a big-endian int", "warehouse-inventory", []byte("JUMPERS"), []byte{0, 0, 1, 2}, nil, "JUMPERS", 258.0, ""},
		{"customer with a long key", "customers", []byte(platform.CustomerKey(15)), mustMarshal(t, codecs.Customer, customer), nil,
			15.0, asJSON(t, customer), ""},
		{"dead letter: raw bytes and headers", "dead-letters", []byte("o-9"), garbage,
			[]kgo.RecordHeader{{Key: platform.HeaderDLQSourceTopic, Value: []byte("p.orders")}, {Key: platform.HeaderDLQError, Value: []byte("decode Order: unknown magic byte")}},
			"o-9", b64(garbage), ""},
		{"internal JSON table", "validations-aggregator-table", []byte("o-1"), []byte(`{"checks":["FRAUD_CHECK"]}`), nil,
			"o-1", map[string]any{"checks": []any{"FRAUD_CHECK"}}, ""},
		{"internal table of Avro orders", "orders-service-table", []byte("o-1"), order, nil, "o-1", asJSON(t, sampleOrder), ""},
		{"tombstone", "customers", []byte(platform.CustomerKey(3)), nil, nil, 3.0, nil, ""},
		{"undecodable Avro value", "orders", []byte("o-2"), garbage, nil, "o-2", b64(garbage), "value: decode Order: record too short"},
		{"Avro of another record type", "orders", []byte("o-3"), mustMarshal(t, codecs.Customer, customer), nil,
			"o-3", b64(mustMarshal(t, codecs.Customer, customer)), "schema id belongs to another record type"},
		{"bad stock length", "warehouse-inventory", []byte("JUMPERS"), []byte{1, 2}, nil, "JUMPERS", b64([]byte{1, 2}), "value: decode stock count"},
		{"bad customer key", "customers", []byte("abc"), mustMarshal(t, codecs.Customer, customer), nil,
			b64([]byte("abc")), asJSON(t, customer), "key: decode customer key"},
		{"internal topic with neither JSON nor Avro", "fraud-service-loop", []byte("k"), garbage, nil,
			"k", b64(garbage), "neither JSON nor Confluent Avro"},
		{"binary key", "orders", []byte{0xff, 0xfe}, order, nil, b64([]byte{0xff, 0xfe}), asJSON(t, sampleOrder), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := time.UnixMilli(1_700_000_000_123)
			line := dec.Decode(&kgo.Record{Topic: names.Topic(c.topic), Partition: 2, Offset: 7, Timestamp: ts,
				Key: c.key, Value: c.value, Headers: c.headers})
			got := asJSON(t, line).(map[string]any)
			if got["topic"] != "p."+c.topic || got["partition"] != 2.0 || got["offset"] != 7.0 ||
				got["timestamp"] != "2023-11-14T22:13:20.123Z" {
				t.Errorf("position fields: %v", got)
			}
			if !reflect.DeepEqual(got["key"], c.wantKey) {
				t.Errorf("key %#v, want %#v", got["key"], c.wantKey)
			}
			if !reflect.DeepEqual(got["value"], c.wantValue) {
				t.Errorf("value %#v, want %#v", got["value"], c.wantValue)
			}
			errText, _ := got["error"].(string)
			if (c.wantErr == "") != (errText == "") || !strings.Contains(errText, c.wantErr) {
				t.Errorf("error %q, want %q", errText, c.wantErr)
			}
			for _, h := range c.headers {
				if hs, _ := got["headers"].(map[string]any); hs[h.Key] != string(h.Value) {
					t.Errorf("headers %v, want %s=%s", got["headers"], h.Key, h.Value)
				}
			}
		})
	}
}

func TestTailPrintsRecordsAsJSONLines(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	ordersTopic := env.Names.Topic(string(platform.TopicOrders))
	env.Produce(t, ordersTopic, "o-1", mustMarshal(t, codecs.Order, sampleOrder))
	env.Produce(t, ordersTopic, "o-2", []byte("not avro"))
	second := sampleOrder
	second.ID, second.State = "o-3", domain.OrderValidated
	env.Produce(t, ordersTopic, "o-3", mustMarshal(t, codecs.Order, second))
	env.Produce(t, env.Names.Topic(string(platform.TopicDeadLetters)), "o-2", []byte("not avro"),
		kgo.RecordHeader{Key: platform.HeaderDLQError, Value: []byte("decode Order: unknown magic byte")})

	cases := []struct {
		name  string
		opts  sampledata.TailOptions
		check func(t *testing.T, lines []map[string]any)
	}{
		{"orders, decoded or with an error", sampledata.TailOptions{Topic: "orders", FromBeginning: true, Max: 3},
			func(t *testing.T, lines []map[string]any) {
				byKey := map[string]map[string]any{}
				for _, l := range lines {
					byKey[l["key"].(string)] = l
				}
				if v := byKey["o-1"]["value"]; !reflect.DeepEqual(v, asJSON(t, sampleOrder)) {
					t.Errorf("o-1: %v", byKey["o-1"])
				}
				if v := byKey["o-3"]["value"]; !reflect.DeepEqual(v, asJSON(t, second)) {
					t.Errorf("o-3: %v", byKey["o-3"])
				}
				bad := byKey["o-2"]
				if !reflect.DeepEqual(bad["value"], b64([]byte("not avro"))) || !strings.Contains(bad["error"].(string), "decode Order") {
					t.Errorf("o-2: %v", bad)
				}
				for _, l := range lines {
					if l["topic"] != ordersTopic {
						t.Errorf("topic %v, want the real (prefixed) name %s", l["topic"], ordersTopic)
					}
				}
			}},
		{"max stops early", sampledata.TailOptions{Topic: "orders", FromBeginning: true, Max: 1},
			func(t *testing.T, lines []map[string]any) {}},
		{"dead letters with headers", sampledata.TailOptions{Topic: "dead-letters", FromBeginning: true, Max: 1},
			func(t *testing.T, lines []map[string]any) {
				l := lines[0]
				if !reflect.DeepEqual(l["value"], b64([]byte("not avro"))) || l["error"] != nil ||
					l["headers"].(map[string]any)[platform.HeaderDLQError] != "decode Order: unknown magic byte" {
					t.Errorf("dead letter: %v", l)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := sampledata.Tail(ctxFor(t), env.Config, codecs, c.opts, &out)
			if err != nil {
				t.Fatal(err)
			}
			var lines []map[string]any
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				var l map[string]any
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
				}
				lines = append(lines, l)
			}
			if n != c.opts.Max || len(lines) != c.opts.Max {
				t.Fatalf("printed %d (%d lines), want %d:\n%s", n, len(lines), c.opts.Max, out.String())
			}
			c.check(t, lines)
		})
	}
}

func TestTailStopsWithItsContextAndRefusesMissingTopics(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	t.Run("missing topic", func(t *testing.T) {
		_, err := sampledata.Tail(ctxFor(t), env.Config, codecs, sampledata.TailOptions{Topic: "no-such-topic"}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "no such topic") {
			t.Fatalf("error %v, want no such topic", err)
		}
	})
	t.Run("empty topic until cancelled", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		n, err := sampledata.Tail(ctx, env.Config, codecs, sampledata.TailOptions{Topic: "payments", FromBeginning: true}, &bytes.Buffer{})
		if err != nil || n != 0 {
			t.Fatalf("tail of an empty topic: %d records, %v", n, err)
		}
	})
}
