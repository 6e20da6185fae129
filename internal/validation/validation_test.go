package validation_test

import (
	"testing"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
	"github.com/ordersys/ecosystem/internal/validation"
)

var codecs = platform.StaticCodecs()

type step struct {
	order  bool                    // consume the CREATED order
	check  domain.CheckType        // else consume this verdict
	result domain.ValidationResult //
}

func pass(c domain.CheckType) step { return step{check: c, result: domain.Pass} }
func fail(c domain.CheckType) step { return step{check: c, result: domain.Fail} }

var (
	inv     = domain.InventoryCheck
	fraud   = domain.FraudCheck
	details = domain.OrderDetailsCheck
	order   = step{order: true}
)

func TestAggregatorDecidesOncePerOrder(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		want  domain.OrderState // "" means no decision
	}{
		{"three passes", []step{order, pass(inv), pass(fraud), pass(details)}, domain.OrderValidated},
		{"verdicts before the order", []step{pass(inv), pass(fraud), pass(details), order}, domain.OrderValidated},
		{"duplicate passes of one check never validate", []step{order, pass(inv), pass(inv), pass(inv)}, ""},
		{"two checks passed twice", []step{order, pass(inv), pass(fraud), pass(inv), pass(fraud)}, ""},
		{"pass pass fail", []step{order, pass(inv), pass(fraud), fail(details)}, domain.OrderFailed},
		{"fail first, then passes", []step{order, fail(fraud), pass(inv), pass(details), pass(fraud)}, domain.OrderFailed},
		{"two fails decide once", []step{order, fail(fraud), fail(inv)}, domain.OrderFailed},
		{"error is a failure", []step{order, {check: inv, result: domain.Error}}, domain.OrderFailed},
		{"fail before the order", []step{fail(inv), order}, domain.OrderFailed},
		{"late fail after validation changes nothing", []step{order, pass(inv), pass(fraud), pass(details), fail(inv)}, domain.OrderValidated},
		{"order replayed after decision", []step{order, pass(inv), pass(fraud), pass(details), order}, domain.OrderValidated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tt := kafkatest.StartTester(t, validation.Graph(platform.Names{}, codecs))

			orders := tt.NewQueueTracker(string(platform.TopicOrders))
			o := domain.Order{ID: "o1", CustomerID: 2, State: domain.OrderCreated, Product: domain.Jumpers, Quantity: 1, Price: 1}
			for _, s := range c.steps {
				if s.order {
					b, _ := codecs.Order.Marshal(o)
					tt.Consume(string(platform.TopicOrders), o.ID, b)
					continue
				}
				b, _ := codecs.OrderValidation.Marshal(domain.OrderValidation{OrderID: o.ID, CheckType: s.check, ValidationResult: s.result})
				tt.Consume(string(platform.TopicOrderValidations), o.ID, b)
			}
			var decisions []domain.Order
			for {
				_, v, ok := orders.Next()
				if !ok {
					break
				}
				d, err := codecs.Order.Unmarshal(v.([]byte))
				if err != nil {
					t.Fatal(err)
				}
				if d.State != domain.OrderCreated {
					decisions = append(decisions, d)
				}
			}
			if c.want == "" {
				if len(decisions) != 0 {
					t.Fatalf("decisions %+v, want none", decisions)
				}
				return
			}
			if len(decisions) != 1 {
				t.Fatalf("%d decisions %+v, want exactly one %s", len(decisions), decisions, c.want)
			}
			want := o
			want.State = c.want
			if decisions[0] != want {
				t.Fatalf("decision %+v, want %+v", decisions[0], want)
			}
		})
	}
}
