package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

// fuzzBodyLimit is small so that the fuzzer reaches the body-size limit too.
const fuzzBodyLimit = 512

// FuzzDecodeOrder feeds arbitrary POST bodies to the decoder. It never panics; every refusal
// is a typed error that HTTP answers with 400 (a *requestError or a *domain.FieldError,
// never the 500 of an untyped error); and every order it accepts is one the service can
// write and serve: well-formed, CREATED, with an id usable in the Location URL, encodable
// with the Avro codec the write uses, and unchanged by a JSON round trip.
func FuzzDecodeOrder(f *testing.F) {
	for _, seed := range []string{
		`{"id":"7","customerId":2,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1.0}`,
		`{"id":"8","customerId":2,"product":"STOCKINGS","quantity":0,"price":0}`,
		`{"id":"9","customerId":-9223372036854775808,"product":"UNDERPANTS","quantity":-2147483648,"price":-1e308}`,
		`{"id":"a/b","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`,
		`{"id":"\u0000\ud800","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`,
		`{"id":"1","customerId":1,"state":"VALIDATED","product":"JUMPERS","quantity":1,"price":1}`,
		`{"id":"1","customerId":1,"product":"SOCKS","quantity":1,"price":1}`,
		`{"id":"1","customerId":1.5,"product":"JUMPERS","quantity":1,"price":1}`,
		`{"id":"1","customerId":1,"product":"JUMPERS","quantity":1,"price":1e999}`,
		`{"id":"1","customerId":1,"product":"JUMPERS","quantity":1,"price":1,"extra":true}`,
		`{"id":"1"} {"id":"2"}`,
		`{"id":null,"customerId":null,"product":null,"quantity":null,"price":null}`,
		`[]`, `null`, `""`, ``, `{`, strings.Repeat(`[`, 600),
	} {
		f.Add([]byte(seed))
	}
	codec := platform.StaticCodecs().Order
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := decodeOrder(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), fuzzBodyLimit), fuzzBodyLimit)
		if err != nil {
			var req *requestError
			var field *domain.FieldError
			if !errors.As(err, &req) && !errors.As(err, &field) {
				t.Fatalf("body %q: untyped error %T: %v", body, err, err)
			}
			if p := problemFor(err); p.Status != http.StatusBadRequest || p.Detail == "" {
				t.Fatalf("body %q: problem %+v, want a 400 saying why", body, p)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("body %q: accepted an invalid order %+v: %v", body, o, err)
		}
		if o.State != domain.OrderCreated {
			t.Fatalf("body %q: accepted a new order in state %s", body, o.State)
		}
		if o.ID == "" || utf8.RuneCountInString(o.ID) > 256 || strings.ContainsAny(o.ID, "/?#") {
			t.Fatalf("body %q: accepted id %q", body, o.ID)
		}
		encoded, err := codec.Marshal(o)
		if err != nil {
			t.Fatalf("body %q: accepted order %+v does not encode: %v", body, o, err)
		}
		if back, err := codec.Unmarshal(encoded); err != nil || back != o {
			t.Fatalf("body %q: order %+v comes back from Avro as %+v (%v)", body, o, back, err)
		}
		answer, err := json.Marshal(o)
		if err != nil {
			t.Fatalf("body %q: accepted order %+v cannot be answered as JSON: %v", body, o, err)
		}
		again, err := decodeOrder(bytes.NewReader(answer), int64(len(answer)))
		if err != nil || again != o {
			t.Fatalf("body %q: the answer %s decodes as %+v (%v), want %+v", body, answer, again, err, o)
		}
	})
}
