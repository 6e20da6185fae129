package ecotest

import (
	"context"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ordersapi"
)

// awaitTimeout is how long the helpers long-poll for an order's final state.
const awaitTimeout = 30 * time.Second

// PostAndAwait posts o to the Orders REST API at base, then long-polls GET …/validated until
// its final state, failing the test on any other answer; it returns what the GET said.
func PostAndAwait(t testing.TB, base string, o domain.Order) domain.Order {
	t.Helper()
	if err := ordersapi.New(base, nil).Post(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return Await(t, base, o.ID)
}

// Await long-polls GET /v1/orders/{id}/validated at base until the order's final state, failing
// the test on any other answer; it returns what the GET said.
func Await(t testing.TB, base, id string) domain.Order {
	t.Helper()
	got, err := ordersapi.New(base, nil).AwaitDecided(context.Background(), id, awaitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
