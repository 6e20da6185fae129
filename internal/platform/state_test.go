package platform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// probeState has the shapes the services' state has: a flattened embedded struct, maps by
// id, optional parts, floats whose sign and NaN matter, and a Validate rule.
type probeState struct {
	probeInner
	Order   *domain.Order       `json:"order,omitempty" cbor:"10,keyasint,omitempty"`
	Answers map[string]int64    `json:"answers,omitempty" cbor:"11,keyasint,omitempty"`
	List    []domain.Payment    `json:"list,omitempty" cbor:"12,keyasint,omitempty"`
	Flags   map[string]struct{} `json:"flags,omitempty" cbor:"13,keyasint,omitempty"`
}

type probeInner struct {
	Count int64  `json:"count,omitempty" cbor:"1,keyasint,omitempty"`
	Note  string `json:"note,omitempty" cbor:"2,keyasint,omitempty"`
}

func (p probeState) Validate() error {
	if p.Count < 0 {
		return errors.New("negative count")
	}
	return nil
}

// Values of every shape survive encoding exactly: ids with invalid UTF-8 stay distinct (JSON
// would have merged them into U+FFFD), -0 keeps its sign, NaN stays NaN, and the encoding is
// far smaller than the JSON it replaces.
func TestStateCodecRoundTrip(t *testing.T) {
	codec := platform.StateCodec[probeState]{}
	cases := []struct {
		name  string
		value probeState
	}{
		{"zero", probeState{}},
		{"embedded fields", probeState{probeInner: probeInner{Count: 7, Note: "ünï"}}},
		{"order", probeState{Order: &domain.Order{ID: "o-1", CustomerID: 3, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 2, Price: 12.5}}},
		{"negative zero price", probeState{Order: &domain.Order{ID: "z", Price: math.Copysign(0, -1)}}},
		{"huge values", probeState{probeInner: probeInner{Count: math.MaxInt64}, Order: &domain.Order{CustomerID: math.MinInt64, Quantity: math.MaxInt32, Price: math.MaxFloat64}}},
		{"invalid UTF-8 keys", probeState{Answers: map[string]int64{"a\xff": 1, "a\xfe": 2, "": 3}}},
		{"list", probeState{List: []domain.Payment{{ID: "p", OrderID: "o", Ccy: "EUR", Amount: 0.1}, {}}}},
		{"empty struct values", probeState{Flags: map[string]struct{}{"x": {}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := codec.Encode(&c.value)
			if err != nil {
				t.Fatal(err)
			}
			got, err := codec.Unmarshal(b)
			if err != nil {
				t.Fatalf("decode %x: %v", b, err)
			}
			if !reflect.DeepEqual(got, c.value) {
				t.Fatalf("round trip\n got %#v\nwant %#v", got, c.value)
			}
			if c.value.Order != nil && math.Signbit(got.Order.Price) != math.Signbit(c.value.Order.Price) {
				t.Fatalf("price sign lost: %v", got.Order.Price)
			}
			if j, _ := json.Marshal(c.value); len(b) > len(j) {
				t.Errorf("CBOR %d bytes, JSON %d", len(b), len(j))
			}
		})
	}
	nan, err := codec.Encode(probeState{Order: &domain.Order{Price: math.NaN()}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := codec.Unmarshal(nan); err != nil || !math.IsNaN(got.Order.Price) {
		t.Fatalf("NaN price: %+v %v", got.Order, err)
	}
}

// State written by earlier versions (JSON) still decodes, so an upgrade keeps every table and
// the loop records in flight; strictness applies to both forms.
func TestStateCodecReadsEarlierJSON(t *testing.T) {
	legacy := []byte(`{"count":2,"note":"n","order":{"id":"o","customerId":1,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1},"answers":{"o":5}}`)
	want := probeState{probeInner: probeInner{Count: 2, Note: "n"},
		Order:   &domain.Order{ID: "o", CustomerID: 1, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1},
		Answers: map[string]int64{"o": 5}}
	for _, strict := range []bool{false, true} {
		got, err := platform.StateCodec[probeState]{Strict: strict}.Unmarshal(legacy)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("strict=%v: %+v %v", strict, got, err)
		}
	}
	unknown := []byte(`{"count":2,"extra":true}`)
	if _, err := (platform.StateCodec[probeState]{}).Unmarshal(unknown); err != nil {
		t.Fatalf("lenient codec refused an unknown JSON field: %v", err)
	}
	if _, err := (platform.StateCodec[probeState]{Strict: true}).Unmarshal(unknown); !errors.Is(err, platform.ErrCorruptJSON) {
		t.Fatalf("strict codec took an unknown JSON field: %v", err)
	}
}

// Bytes that are not a value of ours are refused with a DecodeError of one kind, never a
// panic or a partial value: what hostile producers write to a loop topic is dead-lettered.
func TestStateCodecRefusesHostileBytes(t *testing.T) {
	mustCBOR := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good, err := platform.StateCodec[probeState]{}.Encode(probeState{probeInner: probeInner{Count: 1}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		data   []byte
		strict bool
		kind   error
	}{
		{"empty", nil, false, platform.ErrCorruptCBOR},
		{"text", []byte("not json"), false, platform.ErrCorruptCBOR},
		{"JSON null", []byte("null"), false, platform.ErrCorruptCBOR},
		{"truncated", good[:len(good)-1], false, platform.ErrCorruptCBOR},
		{"trailing bytes", append(append([]byte{}, good...), 0x01), false, platform.ErrCorruptCBOR},
		{"wrong type for a field", mustCBOR(map[int]any{1: "many"}), false, platform.ErrCorruptCBOR},
		{"duplicate key", []byte{0xa2, 0x01, 0x01, 0x01, 0x02}, false, platform.ErrCorruptCBOR},
		{"indefinite length map", []byte{0xbf, 0x01, 0x01, 0xff}, false, platform.ErrCorruptCBOR},
		{"tag", []byte{0xc1, 0xa1, 0x01, 0x01}, false, platform.ErrCorruptCBOR},
		{"nested too deep", append(bytes.Repeat([]byte{0xa1, 0x0b}, 20), 0xa0), false, platform.ErrCorruptCBOR},
		{"huge declared length", []byte{0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false, platform.ErrCorruptCBOR},
		{"unknown field, strict", mustCBOR(map[int]any{1: 1, 99: 1}), true, platform.ErrCorruptCBOR},
		{"fails Validate", mustCBOR(map[int]any{1: -1}), false, platform.ErrInvalidValue},
		{"bad JSON", []byte(`{"count":`), false, platform.ErrCorruptJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := platform.StateCodec[probeState]{Strict: c.strict}.Unmarshal(c.data)
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %v", err, c.kind)
			}
			checkDecodeError(t, err)
		})
	}
	if _, err := (platform.StateCodec[probeState]{}).Unmarshal(mustCBOR(map[int]any{1: 1, 99: 1})); err != nil {
		t.Fatalf("lenient codec refused an unknown field: %v", err)
	}
	if _, err := (platform.StateCodec[probeState]{}).Encode("a string"); err == nil {
		t.Fatal("encoded a value of another type")
	}
}

// Inspection tools show a value with its field numbers as keys.
func TestStateForDisplay(t *testing.T) {
	b, err := platform.StateCodec[probeState]{}.Encode(probeState{probeInner: probeInner{Count: 2}, Answers: map[string]int64{"o": 5},
		Order: &domain.Order{ID: "o", Price: math.Inf(1)}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := platform.StateForDisplay(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"1":2`, `"11":{"o":5}`, `"6":"+Inf"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
	for _, bad := range [][]byte{nil, []byte("text"), {0x00, 0x00, 0x00, 0x00, 0x01}} {
		if _, err := platform.StateForDisplay(bad); !errors.Is(err, platform.ErrCorruptCBOR) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// What a hostile producer could write is shown as written: an integer key and a text key of
// the same digits stay apart, integers beyond 64 bits show their value, trailing JSON is refused.
func TestStateForDisplayKeepsHostileKeysApart(t *testing.T) {
	cases := []struct {
		data []byte
		want string
	}{
		{[]byte{0xa2, 0x01, 0x01, 0x61, '1', 0x02}, `{"\"1\"":2,"1":1}`},
		{[]byte{0xa1, 0x01, 0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, `{"1":"-18446744073709551616"}`},
	}
	for _, c := range cases {
		v, err := platform.StateForDisplay(c.data)
		if err != nil {
			t.Fatal(err)
		}
		if out, _ := json.Marshal(v); string(out) != c.want {
			t.Errorf("%x shown as %s, want %s", c.data, out, c.want)
		}
	}
	for _, trailing := range []string{`{"count":1}}`, `{"count":1}]`, `{"count":1} {}`} {
		if _, err := (platform.StateCodec[probeState]{Strict: true}).Unmarshal([]byte(trailing)); !errors.Is(err, platform.ErrCorruptJSON) {
			t.Errorf("%s: %v", trailing, err)
		}
	}
}
