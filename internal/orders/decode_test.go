package orders

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDecodeOrderRejectsBadBodiesNamingTheField(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"malformed", `{"id": "1",`, "body"},
		{"not json", `hello`, "body"},
		{"empty", ``, "body"},
		{"missing id", `{"customerId":1,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1}`, "id"},
		{"empty id", `{"id":"","customerId":1,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1}`, "id"},
		{"missing product", `{"id":"1","customerId":1,"state":"CREATED","quantity":1,"price":1}`, "product"},
		{"unknown product", `{"id":"1","customerId":1,"state":"CREATED","product":"SOCKS","quantity":1,"price":1}`, "product"},
		{"unknown state", `{"id":"1","customerId":1,"state":"LOST","product":"JUMPERS","quantity":1,"price":1}`, "state"},
		{"not created", `{"id":"1","customerId":1,"state":"VALIDATED","product":"JUMPERS","quantity":1,"price":1}`, "state"},
		{"wrong type", `{"id":"1","customerId":"one","state":"CREATED","product":"JUMPERS","quantity":1,"price":1}`, "customerId"},
		{"quantity overflow", `{"id":"1","customerId":1,"state":"CREATED","product":"JUMPERS","quantity":3000000000,"price":1}`, "quantity"},
		{"unknown field", `{"id":"1","customerId":1,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1,"colour":"red"}`, "colour"},
		{"two objects", `{"id":"1","customerId":1,"product":"JUMPERS","quantity":1,"price":1} {}`, "body"},
		{"slash in id", `{"id":"a/b","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`, "id"},
		{"oversized", `{"id":"` + strings.Repeat("x", 200) + `","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`, "body"},
		// Issue 13 item 6: names are case-exact, once each, and the body is valid UTF-8.
		{"field in another case", `{"id":"a","ID":"b","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`, "ID"},
		{"field only in another case", `{"Id":"a","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`, "Id"},
		{"field twice", `{"id":"a","id":"b","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`, "id"},
		{"dot segment id", `{"id":"..","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`, "id"},
		{"unpaired surrogate in the id", `{"id":"a\ud800","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`, "id"},
		{"invalid UTF-8 in the id", "{\"id\":\"a\xff\",\"customerId\":1,\"product\":\"JUMPERS\",\"quantity\":1,\"price\":1}", "body"},
		// Found by schemathesis (issue 15): null read as "left out", so a null state was CREATED.
		{"null state", `{"id":"a","customerId":1,"state":null,"product":"JUMPERS","quantity":1,"price":1}`, "state"},
		{"null price", `{"id":"a","customerId":1,"product":"JUMPERS","quantity":1,"price":null}`, "price"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeOrder(http.MaxBytesReader(nil, ioNopCloser(c.body), 128), 128)
			if err == nil {
				t.Fatal("accepted")
			}
			p := problemFor(err)
			if p.Status != http.StatusBadRequest || p.Field != c.field {
				t.Fatalf("problem %+v, want 400 on field %q (err %v)", p, c.field, err)
			}
		})
	}
}

// The id's limit counts characters, as the OpenAPI document's maxLength does.
func TestDecodeOrderCountsIdCharactersNotBytes(t *testing.T) {
	body := func(id string) string {
		return `{"id":"` + id + `","customerId":1,"product":"JUMPERS","quantity":1,"price":1}`
	}
	if _, err := decodeOrder(strings.NewReader(body(strings.Repeat("ж", 256))), 4096); err != nil {
		t.Fatalf("256 characters (512 bytes) refused: %v", err)
	}
	if _, err := decodeOrder(strings.NewReader(body(strings.Repeat("ж", 257))), 4096); err == nil {
		t.Fatal("257 characters accepted")
	}
}

func TestDecodeOrderAcceptsReferenceBody(t *testing.T) {
	o, err := decodeOrder(strings.NewReader(`{"id":"7","customerId":2,"state":"CREATED","product":"JUMPERS","quantity":1,"price":1.0}`), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != "7" || o.CustomerID != 2 || o.Quantity != 1 || o.Price != 1 || o.State != "CREATED" {
		t.Fatalf("%+v", o)
	}
	// State may be left out: a new order is CREATED.
	o, err = decodeOrder(strings.NewReader(`{"id":"8","customerId":2,"product":"STOCKINGS","quantity":0,"price":0}`), 1024)
	if err != nil || o.State != "CREATED" {
		t.Fatalf("%+v %v", o, err)
	}
}

func TestProblemStatuses(t *testing.T) {
	cases := map[error]int{
		ErrConflict:       http.StatusConflict,
		ErrTimeout:        http.StatusGatewayTimeout,
		ErrTooManyWaiters: http.StatusServiceUnavailable,
		ErrNotOwner:       http.StatusServiceUnavailable,
		ErrUnavailable:    http.StatusBadGateway,
		fmt.Errorf("%w: write order 1: broker down", ErrNotWritten): http.StatusServiceUnavailable,
		errors.New("x"): http.StatusInternalServerError,
	}
	for err, want := range cases {
		if got := problemFor(err).Status; got != want {
			t.Errorf("%v → %d, want %d", err, got, want)
		}
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func ioNopCloser(s string) nopCloser { return nopCloser{strings.NewReader(s)} }

// ?timeout= is clamped to the maximum however large, as the OpenAPI document says; only what
// is not a non-negative integer is a 400 (schemathesis sent 91375908435780190208).
func TestTimeoutIsClampedHoweverLarge(t *testing.T) {
	s := &Service{cfg: Config{DefaultTimeout: 10 * time.Second, MaxTimeout: time.Minute}}
	cases := []struct {
		query string
		want  time.Duration
		bad   bool
	}{
		{"", 10 * time.Second, false},
		{"250", 250 * time.Millisecond, false},
		{"120000", time.Minute, false},
		{"9223372036854775807", time.Minute, false},
		{"91375908435780190208", time.Minute, false},
		{"-1", 0, true},
		{"-91375908435780190208", 0, true},
		{"1.5", 0, true},
		{"ten", 0, true},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/v1/orders/x?timeout="+c.query, nil)
		if c.query == "" {
			r = httptest.NewRequest(http.MethodGet, "/v1/orders/x", nil)
		}
		got, err := s.timeout(r)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("timeout=%s: %v, %v; want %v (bad request: %v)", c.query, got, err, c.want, c.bad)
		}
	}
}
