package inventory

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ordersys/ecosystem/internal/domain"
)

func src(partition int32, offset int64) Source {
	return Source{Topic: "orders", Partition: partition, Offset: offset}
}

func TestReserveAndRelease(t *testing.T) {
	stock := func(n int32) Stock { return Stock{Units: n, Known: true} }
	type step struct {
		reserve  *ReserveRequest
		release  *ReleaseRequest
		stock    Stock
		want     domain.ValidationResult // "" means not applied (redelivery)
		applied  bool
		reserved int64
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"SPEC worked case for one product", []step{
			{reserve: &ReserveRequest{"a", 1, src(0, 1)}, stock: stock(1), want: domain.Pass, applied: true, reserved: 1},
			{reserve: &ReserveRequest{"b", 1, src(1, 1)}, stock: stock(1), want: domain.Fail, applied: true, reserved: 1},
		}},
		{"stock exactly used up", []step{
			{reserve: &ReserveRequest{"a", 5, src(0, 1)}, stock: stock(5), want: domain.Pass, applied: true, reserved: 5},
		}},
		{"no stock row fails, even for nothing", []step{
			{reserve: &ReserveRequest{"a", 0, src(0, 1)}, stock: Stock{}, want: domain.Fail, applied: true},
		}},
		{"negative quantity fails rather than adding stock", []step{
			{reserve: &ReserveRequest{"a", -3, src(0, 1)}, stock: stock(5), want: domain.Fail, applied: true},
		}},
		{"redelivered request reserves once", []step{
			{reserve: &ReserveRequest{"a", 2, src(0, 7)}, stock: stock(5), want: domain.Pass, applied: true, reserved: 2},
			{reserve: &ReserveRequest{"a", 2, src(0, 7)}, stock: stock(5), reserved: 2},
			{reserve: &ReserveRequest{"z", 2, src(0, 3)}, stock: stock(5), reserved: 2}, // older offset of the same source
			{reserve: &ReserveRequest{"b", 2, src(1, 3)}, stock: stock(5), want: domain.Pass, applied: true, reserved: 4},
		}},
		{"release gives back once", []step{
			{reserve: &ReserveRequest{"a", 2, src(0, 1)}, stock: stock(2), want: domain.Pass, applied: true, reserved: 2},
			{release: &ReleaseRequest{"a", 2, src(0, 9)}, applied: true, reserved: 0},
			{release: &ReleaseRequest{"a", 2, src(0, 9)}, reserved: 0},
			{reserve: &ReserveRequest{"b", 2, src(0, 10)}, stock: stock(2), want: domain.Pass, applied: true, reserved: 2},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r ReservedStock
			for i, s := range c.steps {
				var got domain.ValidationResult
				var applied bool
				if s.reserve != nil {
					got, applied = r.Reserve(*s.reserve, s.stock)
				} else {
					applied = r.Release(*s.release)
				}
				if got != s.want || applied != s.applied || r.Reserved != s.reserved {
					t.Fatalf("step %d: result %q applied %v reserved %d, want %q %v %d", i, got, applied, r.Reserved, s.want, s.applied, s.reserved)
				}
			}
		})
	}
}

// A product's value does not grow with the orders it has seen: the fault of the first design.
func TestProductStateSizeIsConstant(t *testing.T) {
	var r ReservedStock
	size := func() int {
		b, _ := json.Marshal(TableValue{ReservedStock: r})
		return len(b)
	}
	for i := 0; i < 1000; i++ {
		r.Reserve(ReserveRequest{OrderID: fmt.Sprint("order-", i), Quantity: 1, Source: src(int32(i%6), int64(i))}, Stock{Units: 1 << 30, Known: true})
	}
	after1k := size()
	for i := 1000; i < 100000; i++ {
		r.Reserve(ReserveRequest{OrderID: fmt.Sprint("order-", i), Quantity: 1, Source: src(int32(i%6), int64(i))}, Stock{Units: 1 << 30, Known: true})
	}
	if grown := size() - after1k; grown > 16 {
		t.Fatalf("product value grew by %d bytes from 1k to 100k orders (%d bytes)", grown, size())
	}
	if r.Reserved != 100000 {
		t.Fatalf("reserved %d", r.Reserved)
	}
}

func TestLoopMessageValidate(t *testing.T) {
	cases := []struct {
		name string
		m    LoopMessage
		ok   bool
	}{
		{"reserve", LoopMessage{Reserve: &ReserveRequest{"a", 1, src(0, 1)}}, true},
		{"release", LoopMessage{Release: &ReleaseRequest{"a", 1, src(0, 1)}}, true},
		{"verdict", LoopMessage{Verdict: &VerdictRecord{Result: domain.Pass, Reserved: 1}}, true},
		{"nothing", LoopMessage{}, false},
		{"two", LoopMessage{Reserve: &ReserveRequest{"a", 1, src(0, 1)}, Verdict: &VerdictRecord{Result: domain.Fail}}, false},
		{"reserve without id", LoopMessage{Reserve: &ReserveRequest{"", 1, src(0, 1)}}, false},
		{"reserve without source", LoopMessage{Reserve: &ReserveRequest{"a", 1, Source{}}}, false},
		{"negative release", LoopMessage{Release: &ReleaseRequest{"a", -1, src(0, 1)}}, false},
		{"error verdict", LoopMessage{Verdict: &VerdictRecord{Result: domain.Error}}, false},
	}
	for _, c := range cases {
		if err := c.m.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
