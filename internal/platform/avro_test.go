package platform_test

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

var (
	sampleOrder    = domain.Order{ID: "0", CustomerID: 15, State: domain.OrderCreated, Product: domain.Underpants, Quantity: 3, Price: 5.0}
	sampleCustomer = domain.Customer{ID: 15, FirstName: "Franz", LastName: "Kafka", Email: "frans@thedarkside.net", Address: "oppression street, prague, cze", Level: "gold"}
)

// roundTrip encodes and decodes every record type with codecs and checks the Confluent framing.
func roundTrip(t *testing.T, codecs *platform.Codecs) {
	t.Helper()
	check := func(name string, encode func() ([]byte, error), decode func([]byte) (any, error), want any) {
		t.Run(name, func(t *testing.T) {
			b, err := encode()
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 0 {
				t.Fatalf("magic byte %d, want 0", b[0])
			}
			if id := int(binary.BigEndian.Uint32(b[1:5])); id != codecs.Schemas.WriteID(name) {
				t.Fatalf("schema id %d, want %d", id, codecs.Schemas.WriteID(name))
			}
			got, err := decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip = %+v, want %+v", got, want)
			}
		})
	}
	c := codecs
	check("Order", func() ([]byte, error) { return c.Order.Encode(sampleOrder) }, c.Order.Decode, sampleOrder)
	val := domain.OrderValidation{OrderID: "7", CheckType: domain.FraudCheck, ValidationResult: domain.Fail}
	check("OrderValidation", func() ([]byte, error) { return c.OrderValidation.Encode(&val) }, c.OrderValidation.Decode, val)
	pay := domain.Payment{ID: "Payment:1234", OrderID: "0", Ccy: "CZK", Amount: 1000}
	check("Payment", func() ([]byte, error) { return c.Payment.Encode(pay) }, c.Payment.Decode, pay)
	check("Customer", func() ([]byte, error) { return c.Customer.Encode(sampleCustomer) }, c.Customer.Decode, sampleCustomer)
	enr := domain.OrderEnriched{ID: "0", CustomerID: 15, CustomerLevel: "gold"}
	check("OrderEnriched", func() ([]byte, error) { return c.OrderEnriched.Encode(enr) }, c.OrderEnriched.Decode, enr)
	ov := domain.OrderValue{Order: sampleOrder, Value: 15}
	check("OrderValue", func() ([]byte, error) { return c.OrderValue.Encode(ov) }, c.OrderValue.Decode, ov)
}

func TestCodecsRoundTripStaticIDs(t *testing.T) {
	codecs := platform.StaticCodecs()
	roundTrip(t, codecs)
	for record, id := range platform.StaticSchemaIDs {
		if got := codecs.Schemas.WriteID(record); got != id {
			t.Errorf("static id of %s = %d, want %d", record, got, id)
		}
	}
}

func TestCodecsRoundTripRegistryIDs(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	codecs, err := platform.CodecsFor(context.Background(), platform.Config{SchemaRegistryURL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, codecs)

	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"orders-value", "order-validations-value", "payments-value", "customers-value", "gold-value"} {
		ss, err := client.SchemaByVersion(context.Background(), subject, -1)
		if err != nil {
			t.Fatalf("subject %s not registered: %v", subject, err)
		}
		if ss.Schema.Type != sr.TypeAvro {
			t.Errorf("subject %s has type %v", subject, ss.Schema.Type)
		}
	}
}

// Under a topic prefix the subjects are those of the prefixed topics, as a Confluent client
// writing to them names them (TopicNameStrategy), and two ecosystems sharing a registry do not
// share subjects.
func TestRegistrySubjectsFollowTheTopicPrefix(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	if _, err := platform.CodecsFor(context.Background(), platform.Config{SchemaRegistryURL: reg.URL(), TopicPrefix: "team-a."}); err != nil {
		t.Fatal(err)
	}
	client, _ := sr.NewClient(sr.URLs(reg.URL()))
	subjects, err := client.Subjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"team-a.io.confluent.examples.streams.avro.microservices.OrderValue": true}
	for _, topic := range platform.PublicTopics() {
		if topic.Record != "" {
			want["team-a."+topic.Name+"-value"] = true
		}
	}
	got := map[string]bool{}
	for _, s := range subjects {
		got[s] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("subjects %v, want %v", subjects, want)
	}
}

// A record written by another producer with another (compatible) schema version is decoded by
// field name, with the schema's defaults, once its id is fetched from the registry.
func TestRegistryModeDecodesOtherWriterSchemas(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	codecs, err := platform.CodecsFor(context.Background(), platform.Config{SchemaRegistryURL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := sr.NewClient(sr.URLs(reg.URL()))

	// An older Customer without "level": decodes with the default "bronze".
	oldCustomer := `{"type":"record","name":"Customer","namespace":"io.confluent.examples.streams.avro.microservices","fields":[
		{"name":"id","type":"long"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"},
		{"name":"email","type":"string"},{"name":"address","type":"string"}]}`
	b := writeWith(t, client, "legacy-customers-value", oldCustomer, map[string]any{
		"id": int64(3), "firstName": "A", "lastName": "B", "email": "e", "address": "x"})
	got, err := codecs.Customer.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Level != "bronze" || got.ID != 3 {
		t.Fatalf("legacy customer decoded as %+v", got)
	}

	// An Order whose writer knows a product we do not: a typed error, never a panic.
	newerOrder := `{"type":"record","name":"Order","namespace":"io.confluent.examples.streams.avro.microservices","fields":[
		{"name":"id","type":"string"},{"name":"customerId","type":"long"},
		{"name":"state","type":{"type":"enum","name":"OrderState","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}},
		{"name":"product","type":{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS","SOCKS"]}},
		{"name":"quantity","type":"int"},{"name":"price","type":"double"}]}`
	b = writeWith(t, client, "newer-orders-value", newerOrder, map[string]any{
		"id": "1", "customerId": int64(1), "state": "CREATED", "product": "SOCKS", "quantity": int32(1), "price": 1.0})
	if _, err := codecs.Order.Unmarshal(b); !errors.Is(err, platform.ErrInvalidValue) {
		t.Fatalf("unknown enum symbol: got %v, want ErrInvalidValue", err)
	}
}

func writeWith(t *testing.T, client *sr.Client, subject, schema string, native any) []byte {
	t.Helper()
	ss, err := client.CreateSchema(context.Background(), subject, sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	head := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(head[1:], uint32(ss.ID))
	b, err := codec.BinaryFromNative(head, native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMalformedBytesReturnsTypedErrors(t *testing.T) {
	codecs := platform.StaticCodecs()
	good, err := codecs.Order.Marshal(sampleOrder)
	if err != nil {
		t.Fatal(err)
	}
	payment, _ := codecs.Payment.Marshal(domain.Payment{ID: "p", OrderID: "o", Ccy: "EUR", Amount: 1})
	withID := func(id uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[1:5], id)
		return b
	}
	badEnum := append([]byte(nil), good[:5]...)
	// id "1", customerId 1, state index 9 (out of range)
	badEnum = append(badEnum, 2, '1', 2, 18, 0, 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f)
	cases := []struct {
		name string
		data []byte
		kind error
	}{
		{"empty", nil, platform.ErrShortRecord},
		{"short header", []byte{0, 0, 0}, platform.ErrShortRecord},
		{"unknown magic", append([]byte{1}, good[1:]...), platform.ErrUnknownMagic},
		{"unknown schema id", withID(999), platform.ErrUnknownSchemaID},
		{"id of another record", withID(uint32(platform.StaticSchemaIDs["Payment"])), platform.ErrWrongSchema},
		{"truncated body", good[:len(good)-3], platform.ErrCorruptAvro},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2), platform.ErrCorruptAvro},
		{"enum index out of range", badEnum, platform.ErrCorruptAvro},
		{"payment bytes as order", payment, platform.ErrWrongSchema},
		{"header only", good[:5], platform.ErrCorruptAvro},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := codecs.Order.Decode(c.data)
			var de *platform.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want *DecodeError", err, err)
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want kind %v", err, c.kind)
			}
		})
	}
}

func TestPlainFormats(t *testing.T) {
	b, err := platform.StockCodec{}.Encode(75)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, []byte{0, 0, 0, 75}) {
		t.Fatalf("stock 75 encoded as %v", b)
	}
	n, err := platform.StockCodec{}.Decode([]byte{0xff, 0xff, 0xff, 0xfe})
	if err != nil || n.(int32) != -2 {
		t.Fatalf("decode -2: %v %v", n, err)
	}
	if _, err := platform.DecodeStock([]byte{1, 2}); !errors.Is(err, platform.ErrShortRecord) {
		t.Fatalf("2-byte stock: %v", err)
	}
	if _, err := (platform.StockCodec{}).Encode(1 << 40); err == nil {
		t.Fatal("stock beyond int32 must not encode")
	}

	key := platform.CustomerKey(15)
	if !reflect.DeepEqual([]byte(key), []byte{0, 0, 0, 0, 0, 0, 0, 15}) {
		t.Fatalf("customer key 15 = %v", []byte(key))
	}
	id, err := platform.ParseCustomerKey(key)
	if err != nil || id != 15 {
		t.Fatalf("parse key: %d %v", id, err)
	}
	if _, err := platform.ParseCustomerKey("15"); !errors.Is(err, platform.ErrShortRecord) {
		t.Fatalf("text key: %v", err)
	}
}

// The shipped schemas are exactly SPEC.md's: names, namespace, field names, types, defaults.
func TestSchemasMatchSpec(t *testing.T) {
	want := map[string]string{
		"Order":           `{"name":"io.confluent.examples.streams.avro.microservices.Order","type":"record","fields":[{"name":"id","type":"string"},{"name":"customerId","type":"long"},{"name":"state","type":{"name":"io.confluent.examples.streams.avro.microservices.OrderState","type":"enum","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}},{"name":"product","type":{"name":"io.confluent.examples.streams.avro.microservices.Product","type":"enum","symbols":["JUMPERS","UNDERPANTS","STOCKINGS"]}},{"name":"quantity","type":"int"},{"name":"price","type":"double"}]}`,
		"OrderValidation": `{"name":"io.confluent.examples.streams.avro.microservices.OrderValidation","type":"record","fields":[{"name":"orderId","type":"string"},{"name":"checkType","type":{"name":"io.confluent.examples.streams.avro.microservices.OrderValidationType","type":"enum","symbols":["INVENTORY_CHECK","FRAUD_CHECK","ORDER_DETAILS_CHECK"]}},{"name":"validationResult","type":{"name":"io.confluent.examples.streams.avro.microservices.OrderValidationResult","type":"enum","symbols":["PASS","FAIL","ERROR"]}}]}`,
		"Payment":         `{"name":"io.confluent.examples.streams.avro.microservices.Payment","type":"record","fields":[{"name":"id","type":"string"},{"name":"orderId","type":"string"},{"name":"ccy","type":"string"},{"name":"amount","type":"double"}]}`,
		"Customer":        `{"name":"io.confluent.examples.streams.avro.microservices.Customer","type":"record","fields":[{"name":"id","type":"long"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"},{"name":"email","type":"string"},{"name":"address","type":"string"},{"name":"level","type":"string"}]}`,
		"OrderEnriched":   `{"name":"io.confluent.examples.streams.avro.microservices.OrderEnriched","type":"record","fields":[{"name":"id","type":"string"},{"name":"customerId","type":"long"},{"name":"customerLevel","type":"string"}]}`,
	}
	for record, canonical := range want {
		text, err := platform.SchemaText(record)
		if err != nil {
			t.Fatal(err)
		}
		c, err := goavro.NewCodec(text)
		if err != nil {
			t.Fatal(err)
		}
		if c.CanonicalSchema() != canonical {
			t.Errorf("%s canonical form\n got %s\nwant %s", record, c.CanonicalSchema(), canonical)
		}
	}
	// Parsing Canonical Form drops defaults; check the one SPEC.md names.
	text, _ := platform.SchemaText("Customer")
	if !strings.Contains(text, `"default": "bronze"`) {
		t.Error(`Customer.level must default to "bronze"`)
	}
}

// A string that is not UTF-8 is not Avro: an order id of such bytes is refused as corrupt, so
// it never becomes a key of the services' state (where other clients could not name it).
func TestAvroRefusesStringsThatAreNotUTF8(t *testing.T) {
	codecs := platform.StaticCodecs()
	// Each case encodes (goavro writes any bytes) and decodes one record, returning the error.
	decode := func(b []byte, err error, unmarshal func([]byte) error) error {
		if err != nil {
			t.Fatal(err)
		}
		return unmarshal(b)
	}
	cases := []struct {
		name string
		run  func() error
	}{
		{"order id", func() error {
			b, err := codecs.Order.Marshal(domain.Order{ID: "o\xff", CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1})
			return decode(b, err, func(b []byte) error { _, err := codecs.Order.Unmarshal(b); return err })
		}},
		{"payment's order id", func() error {
			b, err := codecs.Payment.Marshal(domain.Payment{ID: "p", OrderID: "o\xfe", Ccy: "EUR", Amount: 1})
			return decode(b, err, func(b []byte) error { _, err := codecs.Payment.Unmarshal(b); return err })
		}},
		{"validation's order id", func() error {
			b, err := codecs.OrderValidation.Marshal(domain.OrderValidation{OrderID: "\x80", CheckType: domain.FraudCheck, ValidationResult: domain.Pass})
			return decode(b, err, func(b []byte) error { _, err := codecs.OrderValidation.Unmarshal(b); return err })
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); !errors.Is(err, platform.ErrCorruptAvro) || !strings.Contains(err.Error(), "not UTF-8") {
				t.Fatalf("got %v, want ErrCorruptAvro naming UTF-8", err)
			}
		})
	}
}
