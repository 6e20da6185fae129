package ordersapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/ecosystem/ecotest"
	"github.com/ordersys/ecosystem/internal/ordersapi"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/sampledata"
)

// Against a running ecosystem on the test broker: each call's answer, and the status of the
// answers it does not expect.
func TestClientAgainstTheOrdersService(t *testing.T) {
	env := kafkatest.New(t, kafkatest.Options{})
	ctx := context.Background()
	if err := sampledata.SetStock(ctx, env.Client, env.Names, map[domain.Product]int32{domain.Jumpers: 5}); err != nil {
		t.Fatal(err)
	}
	c := ordersapi.New(ecotest.Start(t, env).URL, nil)
	o := domain.Order{ID: "api ü+%1", CustomerID: 2, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1}

	if err := c.Post(ctx, o); err != nil {
		t.Fatal(err)
	}
	decided, err := c.AwaitDecided(ctx, o.ID, 30*time.Second)
	if err != nil || decided.State != domain.OrderValidated {
		t.Fatalf("AwaitDecided: %+v, %v", decided, err)
	}
	got, err := c.Get(ctx, o.ID, time.Second)
	if err != nil || got != decided {
		t.Fatalf("Get: %+v, %v; want %+v", got, err, decided)
	}
	if err := c.Probe(ctx, o.ID, time.Second); err != nil {
		t.Fatalf("Probe: %v", err)
	}

	other := o
	other.Quantity = 2
	cases := []struct {
		name   string
		err    error
		status int
	}{
		{"another order under the same id", c.Post(ctx, other), 409},
		{"an invalid order", c.Post(ctx, domain.Order{ID: "", State: domain.OrderCreated}), 400},
		{"no such order", func() error { _, err := c.Get(ctx, "nobody", 0); return err }(), 504},
		{"no such order, probed", c.Probe(ctx, "nobody", 0), 504},
	}
	for _, tc := range cases {
		var se *ordersapi.StatusError
		if !errors.As(tc.err, &se) || ordersapi.Status(tc.err) != tc.status || se.Body == "" {
			t.Errorf("%s: %v (status %d), want %d with a problem body", tc.name, tc.err, ordersapi.Status(tc.err), tc.status)
		}
	}
}

// Get hands back an answer under another id for the caller to report (the sample-data tool
// counts it as a mismatch); AwaitDecided, whose callers only want a state, refuses it.
func TestAnswersUnderAnotherID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"id":"someone-else","customerId":1,"state":"VALIDATED","product":"JUMPERS","quantity":1,"price":1}`))
	}))
	defer srv.Close()
	c := ordersapi.New(srv.URL, nil)
	if got, err := c.Get(context.Background(), "mine", time.Second); err != nil || got.ID != "someone-else" {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	if _, err := c.AwaitDecided(context.Background(), "mine", time.Second); err == nil {
		t.Fatal("AwaitDecided accepted another order")
	}
}
