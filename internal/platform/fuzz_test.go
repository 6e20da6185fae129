package platform_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// decodeKinds are the kinds a *DecodeError can have; each error matches exactly one.
var decodeKinds = []error{
	platform.ErrShortRecord, platform.ErrUnknownMagic, platform.ErrUnknownSchemaID,
	platform.ErrWrongSchema, platform.ErrCorruptAvro, platform.ErrInvalidValue, platform.ErrCorruptJSON, platform.ErrCorruptCBOR,
}

// checkDecodeError fails unless err is a *DecodeError of exactly one kind, the contract
// services rely on to dead-letter a record with a reason.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *platform.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %q is not a *platform.DecodeError", err, err)
	}
	matched := 0
	for _, kind := range decodeKinds {
		if errors.Is(err, kind) {
			matched++
		}
	}
	if matched != 1 {
		t.Fatalf("error %q matches %d kinds, want exactly 1", err, matched)
	}
	if err.Error() == "" {
		t.Fatal("empty error message")
	}
}

// reencodes checks that a value that decoded encodes again and decodes to the same encoding:
// what a service decodes, it can write back (e.g. the aggregator re-emitting an order).
func reencodes[T any](t *testing.T, c *platform.AvroCodec[T], v T) {
	t.Helper()
	first, err := c.Marshal(v)
	if err != nil {
		t.Fatalf("decoded %s %+v does not encode: %v", c.Record(), v, err)
	}
	again, err := c.Unmarshal(first)
	if err != nil {
		t.Fatalf("re-encoded %s does not decode: %v", c.Record(), err)
	}
	second, err := c.Marshal(again)
	if err != nil || !bytes.Equal(first, second) {
		t.Fatalf("%s round trip changed the value: %x then %x (%v)", c.Record(), first, second, err)
	}
}

// decodeWithEveryCodec runs b through every Avro codec and checks the outcome.
func decodeWithEveryCodec(t *testing.T, b []byte) {
	codecs := platform.StaticCodecs()
	check := func(err error) bool {
		if err != nil {
			checkDecodeError(t, err)
			return false
		}
		return true
	}
	if v, err := codecs.Order.Unmarshal(b); check(err) {
		if !v.State.Valid() || !v.Product.Valid() {
			t.Fatalf("decoded order with unknown enum symbols: %+v", v)
		}
		reencodes(t, codecs.Order, v)
	}
	if v, err := codecs.OrderValidation.Unmarshal(b); check(err) {
		if !v.CheckType.Valid() || !v.ValidationResult.Valid() {
			t.Fatalf("decoded validation with unknown enum symbols: %+v", v)
		}
		reencodes(t, codecs.OrderValidation, v)
	}
	if v, err := codecs.Payment.Unmarshal(b); check(err) {
		reencodes(t, codecs.Payment, v)
	}
	if v, err := codecs.Customer.Unmarshal(b); check(err) {
		reencodes(t, codecs.Customer, v)
	}
	if v, err := codecs.OrderEnriched.Unmarshal(b); check(err) {
		reencodes(t, codecs.OrderEnriched, v)
	}
	if v, err := codecs.OrderValue.Unmarshal(b); check(err) {
		reencodes(t, codecs.OrderValue, v)
	}
}

// seedRecords are valid records of every type, so that mutations start from real encodings.
func seedRecords(t testing.TB) [][]byte {
	codecs := platform.StaticCodecs()
	order := domain.Order{ID: "0", CustomerID: 15, State: domain.OrderCreated, Product: domain.Underpants, Quantity: 3, Price: 5.0}
	var out [][]byte
	add := func(b []byte, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	add(codecs.Order.Marshal(order))
	add(codecs.Order.Marshal(domain.Order{ID: "ü/?#", CustomerID: math.MinInt64, State: domain.OrderShipped, Product: domain.Stockings, Quantity: math.MaxInt32, Price: math.Inf(-1)}))
	add(codecs.OrderValidation.Marshal(domain.OrderValidation{OrderID: "0", CheckType: domain.FraudCheck, ValidationResult: domain.Error}))
	add(codecs.Payment.Marshal(domain.Payment{ID: "Payment:1234", OrderID: "0", Ccy: "CZK", Amount: 1000}))
	add(codecs.Customer.Marshal(domain.Customer{ID: 15, FirstName: "Franz", LastName: "Kafka", Email: "frans@thedarkside.net", Address: "oppression street, prague, cze", Level: "gold"}))
	add(codecs.OrderEnriched.Marshal(domain.OrderEnriched{ID: "0", CustomerID: 15, CustomerLevel: "gold"}))
	add(codecs.OrderValue.Marshal(domain.OrderValue{Order: order, Value: 15}))
	return out
}

// FuzzAvroDecoders feeds arbitrary bytes to every Avro codec: none panics, every refusal is
// a *DecodeError of exactly one kind, and whatever decodes holds known enum symbols and
// survives a round trip.
func FuzzAvroDecoders(f *testing.F) {
	for _, b := range seedRecords(f) {
		f.Add(b)
	}
	f.Fuzz(decodeWithEveryCodec)
}

// FuzzAvroBodies frames arbitrary Avro bodies with a schema id of the fixed table (or near
// it), so that the fuzzer spends its time inside the Avro decoding rather than on headers.
func FuzzAvroBodies(f *testing.F) {
	for _, b := range seedRecords(f) {
		f.Add(uint8(binary.BigEndian.Uint32(b[1:5])), b[5:])
	}
	f.Fuzz(func(t *testing.T, id uint8, body []byte) {
		framed := make([]byte, 5, 5+len(body))
		binary.BigEndian.PutUint32(framed[1:], uint32(id%8))
		decodeWithEveryCodec(t, append(framed, body...))
	})
}

// FuzzDecodeStock: a stock value is exactly 4 bytes; anything else is a typed error, and a
// count that decodes encodes back to the same bytes.
func FuzzDecodeStock(f *testing.F) {
	for _, s := range [][]byte{{0, 0, 0, 20}, {0xff, 0xff, 0xff, 0xff}, {}, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := platform.DecodeStock(b)
		if err != nil {
			checkDecodeError(t, err)
			if !errors.Is(err, platform.ErrBadLength) {
				t.Fatalf("stock %x: %v, want a wrong-length error", b, err)
			}
			return
		}
		again, err := platform.StockCodec{}.Encode(n)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("stock %x decoded to %d, which encodes to %x (%v)", b, n, again, err)
		}
	})
}

// FuzzParseCustomerKey: a customer key is exactly 8 bytes; anything else is a typed error,
// and an id that parses gives back the same key.
func FuzzParseCustomerKey(f *testing.F) {
	for _, id := range []int64{0, 15, -1, math.MaxInt64} {
		f.Add(platform.CustomerKey(id))
	}
	f.Add("15")
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		id, err := platform.ParseCustomerKey(key)
		if err != nil {
			checkDecodeError(t, err)
			if !errors.Is(err, platform.ErrBadLength) {
				t.Fatalf("key %q: %v, want a wrong-length error", key, err)
			}
			return
		}
		if platform.CustomerKey(id) != key {
			t.Fatalf("key %x parsed to %d, which gives key %x", key, id, platform.CustomerKey(id))
		}
	})
}
