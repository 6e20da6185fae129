package platform_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// orderSchemaWith is an Order schema in namespace ns whose fields are the shipped ones with
// the types given in override (a field mapped to "" is left out), in the order given by names.
func orderSchemaWith(ns string, names []string, override map[string]string) string {
	types := map[string]string{
		"id": `"string"`, "customerId": `"long"`,
		"state":    `{"type":"enum","name":"OrderState","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}`,
		"product":  `{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS"]}`,
		"quantity": `"int"`, "price": `"double"`,
	}
	var fields []string
	for _, n := range names {
		t := types[n]
		if o, ok := override[n]; ok {
			t = o
		}
		if t != "" {
			fields = append(fields, fmt.Sprintf(`{"name":%q,"type":%s}`, n, t))
		}
	}
	return fmt.Sprintf(`{"type":"record","name":"Order","namespace":%q,"fields":[%s]}`, ns, strings.Join(fields, ","))
}

var shippedOrder = []string{"id", "customerId", "state", "product", "quantity", "price"}

// Records another producer wrote with another version of a schema are read by Avro's
// resolution rules, as Java's and Python's resolving readers read them: promotions, unions,
// other namespaces and field orders are read; what cannot resolve is refused with its reason.
func TestRegistryModeResolvesOtherWriterSchemas(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	codecs, err := platform.CodecsFor(context.Background(), platform.Config{SchemaRegistryURL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := sr.NewClient(sr.URLs(reg.URL()))
	const ns = "io.confluent.examples.streams.avro.microservices"
	native := func(price any) map[string]any {
		return map[string]any{"id": "o1", "customerId": int64(7), "state": "CREATED", "product": "JUMPERS", "quantity": int32(2), "price": price}
	}
	want := domain.Order{ID: "o1", CustomerID: 7, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 2, Price: 4}
	reversed := []string{"price", "quantity", "product", "state", "customerId", "id"}
	cases := []struct {
		name   string
		schema string
		value  any
		want   domain.Order
		kind   error // nil: decodes to want
	}{
		{"int price promoted", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `"int"`}), native(int32(4)), want, nil},
		{"long price promoted", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `"long"`}), native(int64(4)), want, nil},
		{"float price promoted", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `"float"`}), native(float32(4)), want, nil},
		{"int customer id promoted to long", orderSchemaWith(ns, shippedOrder, map[string]string{"customerId": `"int"`}),
			map[string]any{"id": "o1", "customerId": int32(7), "state": "CREATED", "product": "JUMPERS", "quantity": int32(2), "price": 4.0}, want, nil},
		{"bytes id read as string", orderSchemaWith(ns, shippedOrder, map[string]string{"id": `"bytes"`}),
			map[string]any{"id": []byte("o1"), "customerId": int64(7), "state": "CREATED", "product": "JUMPERS", "quantity": int32(2), "price": 4.0}, want, nil},
		{"bytes id that is not UTF-8", orderSchemaWith(ns, shippedOrder, map[string]string{"id": `"bytes"`}),
			map[string]any{"id": []byte("o\xff"), "customerId": int64(7), "state": "CREATED", "product": "JUMPERS", "quantity": int32(2), "price": 4.0}, domain.Order{}, platform.ErrCorruptAvro},
		{"nullable price written", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `["double","null"]`}), native(goavro.Union("double", 4.0)), want, nil},
		{"nullable price written null", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `["null","double"]`}), native(nil), domain.Order{}, platform.ErrInvalidValue},
		{"union of int and long price", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `["int","long"]`}), native(goavro.Union("long", int64(4))), want, nil},
		{"other namespace, fields reversed, one added", orderSchemaWith("com.example.shop", append(reversed, "note"), map[string]string{"note": `{"type":"string","default":""}`}),
			map[string]any{"id": "o1", "customerId": int64(7), "state": "CREATED", "product": "JUMPERS", "quantity": int32(2), "price": 4.0, "note": "x"}, want, nil},
		{"enum symbol the reader lacks", orderSchemaWith(ns, shippedOrder, map[string]string{"product": `{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS","SOCKS"]}`}),
			map[string]any{"id": "o1", "customerId": int64(7), "state": "CREATED", "product": "SOCKS", "quantity": int32(2), "price": 4.0}, domain.Order{}, platform.ErrInvalidValue},
		{"product as a plain string", orderSchemaWith(ns, shippedOrder, map[string]string{"product": `"string"`}), native(4.0), domain.Order{}, platform.ErrUnresolvableSchema},
		{"long quantity (no demotion)", orderSchemaWith(ns, shippedOrder, map[string]string{"quantity": `"long"`}),
			map[string]any{"id": "o1", "customerId": int64(7), "state": "CREATED", "product": "JUMPERS", "quantity": int64(2), "price": 4.0}, domain.Order{}, platform.ErrUnresolvableSchema},
		{"price left out, no default", orderSchemaWith(ns, shippedOrder, map[string]string{"price": ""}),
			map[string]any{"id": "o1", "customerId": int64(7), "state": "CREATED", "product": "JUMPERS", "quantity": int32(2)}, domain.Order{}, platform.ErrUnresolvableSchema},
		{"price as a string", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `"string"`}), native("4"), domain.Order{}, platform.ErrUnresolvableSchema},
		{"union with no branch the reader can read", orderSchemaWith(ns, shippedOrder, map[string]string{"price": `["null","string"]`}), native(goavro.Union("string", "4")), domain.Order{}, platform.ErrUnresolvableSchema},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := writeWith(t, client, fmt.Sprintf("case-%d-value", i), c.schema, c.value)
			got, err := codecs.Order.Unmarshal(b)
			if c.kind == nil {
				if err != nil || got != c.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
				}
				return
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %+v, %v; want an error of kind %v", got, err, c.kind)
			}
			t.Logf("refused: %v", err)
		})
	}

	// The whole value a union: ["null", Order], as a producer writing nullable values declares.
	nullable := `["null",` + orderSchemaWith(ns, shippedOrder, nil) + `]`
	b := writeWith(t, client, "nullable-orders-value", nullable, goavro.Union(ns+".Order", native(4.0)))
	if got, err := codecs.Order.Unmarshal(b); err != nil || got != want {
		t.Fatalf("nullable value: got %+v, %v", got, err)
	}
	b = writeWith(t, client, "nullable-orders-value", nullable, nil)
	if _, err := codecs.Order.Unmarshal(b); !errors.Is(err, platform.ErrInvalidValue) {
		t.Fatalf("null value: got %v, want ErrInvalidValue", err)
	}

	// A nested record written as a union branch under a named reference (OrderValue.order).
	orderValue := `{"type":"record","name":"OrderValue","namespace":"` + ns + `","fields":[
		{"name":"order","type":["null",` + orderSchemaWith(ns, shippedOrder, map[string]string{"price": `"int"`}) + `]},
		{"name":"value","type":"float"}]}`
	b = writeWith(t, client, "order-value-value", orderValue, map[string]any{"order": goavro.Union(ns+".Order", native(int32(4))), "value": float32(8)})
	if got, err := codecs.OrderValue.Unmarshal(b); err != nil || got.Order != want || got.Value != 8 {
		t.Fatalf("OrderValue: got %+v, %v", got, err)
	}
}
