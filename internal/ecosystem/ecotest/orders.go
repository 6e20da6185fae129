package ecotest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/ordersys/ecosystem/internal/domain"
)

// PostAndAwait posts o to the Orders REST API at base, then long-polls GET …/validated until
// its final state, failing the test on any other answer; it returns what the GET said.
func PostAndAwait(t testing.TB, base string, o domain.Order) domain.Order {
	t.Helper()
	body, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/v1/orders", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %q: %d %s", o.ID, resp.StatusCode, b)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		loc = "/v1/orders/" + url.PathEscape(o.ID)
	}
	return await(t, base+loc, o.ID)
}

// Await long-polls GET /v1/orders/{id}/validated at base until the order's final state, failing
// the test on any other answer; it returns what the GET said.
func Await(t testing.TB, base, id string) domain.Order {
	t.Helper()
	return await(t, base+"/v1/orders/"+url.PathEscape(id), id)
}

func await(t testing.TB, order, id string) domain.Order {
	t.Helper()
	resp, err := http.Get(order + "/validated?timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got domain.Order
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil {
		t.Fatalf("GET %q validated: %d %s", id, resp.StatusCode, b)
	}
	return got
}
