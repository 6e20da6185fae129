package platform_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Writer schemas a hostile or unusual producer can register, and records written with them:
// each is read as Avro's resolution rules read it, or refused with ErrUnresolvableSchema or
// ErrUnknownSchemaID, never with a panic, a wrong value, or unbounded memory, stack or registry
// traffic. Found by an outside review of the resolver (each test failed on b1636a0).

const reviewNS = "io.confluent.examples.streams.avro.microservices"

func reviewSetup(t *testing.T) (*platform.Codecs, *sr.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	codecs, err := platform.CodecsFor(context.Background(), platform.Config{SchemaRegistryURL: reg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := sr.NewClient(sr.URLs(reg.URL()))
	return codecs, client
}

// register puts schema under subject and returns the Confluent header for its id.
func register(t *testing.T, client *sr.Client, subject, schema string) []byte {
	t.Helper()
	ss, err := client.CreateSchema(context.Background(), subject, sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	head := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(head[1:], uint32(ss.ID))
	return head
}

const customerFields = `{"name":"id","type":"long"},{"name":"firstName","type":"string"},{"name":"lastName","type":"string"},
	{"name":"email","type":"string"},{"name":"address","type":"string"}`

// An attribute a writer adds (here one named like an internal bookkeeping key once was) cannot
// rename its types: the branch written is the branch resolved.
func TestHostileSchemaAttributeCannotRenameTypes(t *testing.T) {
	codecs, client := reviewSetup(t)
	schema := `[
	 {"type":"record","name":"Customer","namespace":"a","\u0000fullName":"b.Customer","fields":[` + customerFields + `]},
	 {"type":"record","name":"Customer","namespace":"b","\u0000fullName":"a.Customer","fields":[` + customerFields + `,{"name":"level","type":"string"}]}]`
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := codec.BinaryFromNative(register(t, client, "customers-nul-value", schema), goavro.Union("b.Customer", map[string]any{
		"id": int64(1), "firstName": "F", "lastName": "L", "email": "e", "address": "x", "level": "platinum"}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := codecs.Customer.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Level != "platinum" {
		t.Fatalf("writer wrote level %q, service read %q (no error)", "platinum", got.Level)
	}
}

// A union in object form, {"type": [...]}, as goavro accepts it (it used to panic the resolver).
func TestHostileSchemaUnionInObjectForm(t *testing.T) {
	codecs, client := reviewSetup(t)
	schema := `{"type":"record","name":"Order","namespace":"` + reviewNS + `","fields":[
		{"name":"id","type":"string"},{"name":"customerId","type":"long"},
		{"name":"state","type":{"type":"enum","name":"OrderState","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}},
		{"name":"product","type":{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS"]}},
		{"name":"quantity","type":"int"},{"name":"price","type":{"type":["null","double"]}}]}`
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := codec.BinaryFromNative(register(t, client, "orders-objunion-value", schema), map[string]any{
		"id": "o1", "customerId": int64(7), "state": "CREATED", "product": "JUMPERS", "quantity": int32(2), "price": goavro.Union("double", 4.0)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("Unmarshal panicked: %v", p)
		}
	}()
	if got, err := codecs.Order.Unmarshal(b); err != nil || got.Price != 4 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// A nested type with "namespace": "" is named as goavro names it (by the enclosing namespace),
// so its union branch is found.
func TestHostileSchemaEmptyNamespaceUnionBranch(t *testing.T) {
	codecs, client := reviewSetup(t)
	schema := `{"type":"record","name":"Order","namespace":"` + reviewNS + `","fields":[
		{"name":"id","type":"string"},{"name":"customerId","type":"long"},
		{"name":"state","type":["null",{"type":"enum","name":"OrderState","namespace":"","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}]},
		{"name":"product","type":{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS"]}},
		{"name":"quantity","type":"int"},{"name":"price","type":"double"}]}`
	codec, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := codec.BinaryFromNative(register(t, client, "orders-emptyns-value", schema), map[string]any{
		"id": "o1", "customerId": int64(7), "state": goavro.Union(reviewNS+".OrderState", "CREATED"), "product": "JUMPERS", "quantity": int32(2), "price": 4.0})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := codecs.Order.Unmarshal(b); err != nil || got.State != "CREATED" {
		t.Fatalf("valid record: %+v, %v", got, err)
	}
}

// A field with a logical type is read as its underlying type, as the specification says a
// reader without it reads it (goavro would give a time.Time, and key a union branch by
// "long.timestamp-millis").
func TestHostileSchemaLogicalTypeReadAsUnderlying(t *testing.T) {
	codecs, client := reviewSetup(t)
	for i, ct := range []string{`["null",{"type":"long","logicalType":"timestamp-millis"}]`, `{"type":"long","logicalType":"timestamp-millis"}`} {
		schema := `{"type":"record","name":"Order","namespace":"` + reviewNS + `","fields":[
		{"name":"id","type":"string"},{"name":"customerId","type":` + ct + `},
		{"name":"state","type":{"type":"enum","name":"OrderState","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}},
		{"name":"product","type":{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS"]}},
		{"name":"quantity","type":"int"},{"name":"price","type":"double"}]}`
		head := register(t, client, fmt.Sprintf("orders-lt%d-value", i), schema)
		// body: id "o1", customerId 7 (union index 1 first when a union), state 0, product 0, quantity 2, price 4.0
		body := []byte{4, 'o', '1'}
		if i == 0 {
			body = append(body, 2)
		}
		body = append(body, 14, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x10, 0x40)
		got, err := codecs.Order.Unmarshal(append(head, body...))
		if err != nil || got.CustomerID != 7 {
			t.Errorf("customerId %s: %+v, %v", ct, got, err)
		}
	}
}

// A schema that defines a full name twice is refused (Java refuses it too): goavro binds a
// reference to the definition seen so far, and a resolution by name could pick the other.
func TestHostileSchemaNameDefinedTwiceIsRefused(t *testing.T) {
	codecs, client := reviewSetup(t)
	withLevel := `{"type":"record","name":"Customer","namespace":"a","fields":[` + customerFields + `,{"name":"level","type":"string"}]}`
	withoutLevel := `{"type":"record","name":"Customer","namespace":"a","fields":[` + customerFields + `]}`
	schema := `[
	 {"type":"record","name":"Customer","namespace":"x","fields":[` + customerFields + `,{"name":"inner","type":` + withLevel + `}]},
	 "a.Customer",
	 {"type":"record","name":"W","namespace":"w","fields":[{"name":"inner","type":` + withoutLevel + `}]}]`
	head := register(t, client, "customers-redef-value", schema)
	// union index 1 ("a.Customer", decoded by goavro with the first definition), then its fields
	body := []byte{2, 2, 2, 'F', 2, 'L', 2, 'e', 2, 'x', 16}
	body = append(body, "platinum"...)
	if got, err := codecs.Customer.Unmarshal(append(head, body...)); !errors.Is(err, platform.ErrUnresolvableSchema) {
		t.Fatalf("got %+v, %v; want ErrUnresolvableSchema", got, err)
	}
}

// goavro panics on a second bytes.decimal without a precision, which Java's parser accepts
// (it ignores invalid logical types): logical types are dropped before goavro sees the schema,
// and a panic of the library would be a refusal, not a crash.
func TestHostileSchemaThatPanicsTheAvroLibrary(t *testing.T) {
	codecs, client := reviewSetup(t)
	schema := `{"type":"record","name":"Order","namespace":"` + reviewNS + `","fields":[
		{"name":"id","type":"string"},{"name":"customerId","type":"long"},
		{"name":"state","type":{"type":"enum","name":"OrderState","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}},
		{"name":"product","type":{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS"]}},
		{"name":"quantity","type":"int"},{"name":"price","type":"double"},
		{"name":"d1","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}},
		{"name":"d2","type":{"type":"bytes","logicalType":"decimal"}}]}`
	head := register(t, client, "orders-decimal-value", schema)
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("Unmarshal panicked: %v", p)
		}
	}()
	if _, err := codecs.Order.Unmarshal(append(head, 0)); err == nil {
		t.Fatal("a one-byte body decoded")
	}
}

// orderWithPad is a writer Order with one extra field the reader lacks (skipped by resolution,
// but still fully decoded by goavro first).
func orderWithPad(pad string) string {
	return `{"type":"record","name":"Order","namespace":"` + reviewNS + `","fields":[
		{"name":"id","type":"string"},{"name":"customerId","type":"long"},
		{"name":"state","type":{"type":"enum","name":"OrderState","symbols":["CREATED","VALIDATED","FAILED","SHIPPED"]}},
		{"name":"product","type":{"type":"enum","name":"Product","symbols":["JUMPERS","UNDERPANTS","STOCKINGS"]}},
		{"name":"quantity","type":"int"},{"name":"price","type":"double"},{"name":"pad","type":` + pad + `}]}`
}

var orderBody = []byte{4, 'o', '1', 14, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x10, 0x40}

func zigzag(n int64) []byte { return binary.AppendVarint(nil, n) }

// An array of items that take no bytes: a few bytes would announce millions of items, which
// goavro allocates and loops over (it cost 256 MiB for a 25-byte record). Refused.
func TestHostileSchemaArrayOfNullsIsRefused(t *testing.T) {
	codecs, client := reviewSetup(t)
	head := register(t, client, "orders-pad-value", orderWithPad(`{"type":"array","items":"null"}`))
	b := append(append(append(head, orderBody...), zigzag(1<<24)...), 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := codecs.Order.Unmarshal(b)
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d-byte record: err=%v, %s, %d MiB allocated", len(b), err, el, alloc>>20)
	if !errors.Is(err, platform.ErrUnresolvableSchema) {
		t.Fatalf("got %v, want ErrUnresolvableSchema", err)
	}
	if alloc > 64<<20 {
		t.Fatalf("a %d-byte record allocated %d MiB", len(b), alloc>>20)
	}
}

// A recursive writer type nests one level per input byte and goavro recurses once per level: a
// deep enough record (a few MB, compressing to a few KB) overflowed the stack, which kills the
// process. Refused.
func TestHostileSchemaRecursiveTypeIsRefused(t *testing.T) {
	codecs, client := reviewSetup(t)
	head := register(t, client, "orders-rec-value", orderWithPad(`{"type":"record","name":"R","fields":[{"name":"n","type":["null","R"]}]}`))
	b := append(append(head, orderBody...), bytes.Repeat([]byte{2}, 200_000)...)
	b = append(b, 0)
	if _, err := codecs.Order.Unmarshal(b); !errors.Is(err, platform.ErrUnresolvableSchema) {
		t.Fatalf("got %v, want ErrUnresolvableSchema", err)
	}
}

// A schema id whose text cannot be used is fetched and parsed once, not once per record.
func TestHostileSchemaUnparseableIsFetchedOnce(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	var lookups atomic.Int64
	target, _ := url.Parse(reg.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			lookups.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	codecs, err := platform.CodecsFor(context.Background(), platform.Config{SchemaRegistryURL: front.URL})
	if err != nil {
		t.Fatal(err)
	}
	client, _ := sr.NewClient(sr.URLs(reg.URL()))
	head := register(t, client, "orders-bad-value", orderWithPad(`{"type":"int"},"default":"not an int"`))
	if _, err := codecs.Order.Unmarshal(append(head, orderBody...)); !errors.Is(err, platform.ErrUnknownSchemaID) {
		t.Fatalf("got %v, want ErrUnknownSchemaID", err)
	}
	first := lookups.Load() // the services' own registrations look schemas up too
	for i := 0; i < 99; i++ {
		codecs.Order.Unmarshal(append(head, orderBody...))
	}
	if n := lookups.Load() - first; n != 0 {
		t.Fatalf("99 more records of one unparseable schema id: %d more registry lookups", n)
	}
}

// Records of schemas seen for the first time by many goroutines at once (run with -race).
func TestHostileSchemaConcurrentFirstSight(t *testing.T) {
	codecs, client := reviewSetup(t)
	var heads [][]byte
	for i := 0; i < 8; i++ {
		heads = append(heads, register(t, client, fmt.Sprintf("orders-c%d-value", i), orderWithPad(fmt.Sprintf(`{"type":"record","name":"P%d","fields":[]}`, i))))
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, h := range heads {
				if _, err := codecs.Order.Unmarshal(append(h, orderBody...)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

// A union of 3,000 records none of which resolves: the refusal names a few, so the error each
// dead-lettered record carries stays small.
func TestHostileSchemaHugeUnionErrorStaysSmall(t *testing.T) {
	codecs, client := reviewSetup(t)
	var br []string
	for i := 0; i < 3000; i++ {
		br = append(br, fmt.Sprintf(`{"type":"record","name":"Order","namespace":"n%d","fields":[{"name":"id","type":"string"}]}`, i))
	}
	schema := "[" + strings.Join(br, ",") + "]"
	head := register(t, client, "orders-huge-value", schema)
	b := append(head, 0, 2, 'x')
	_, err := codecs.Order.Unmarshal(b)
	start := time.Now()
	for i := 0; i < 100; i++ {
		_, err = codecs.Order.Unmarshal(b)
		_ = err.Error()
	}
	t.Logf("schema %d B; error %d B; %v per refused record", len(schema), len(err.Error()), time.Since(start)/100)
	if !errors.Is(err, platform.ErrUnresolvableSchema) || len(err.Error()) > 2048 {
		t.Fatalf("error of %d bytes: %.200v", len(err.Error()), err)
	}
}
