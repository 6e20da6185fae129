package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/platform"
)

func req(id string, qty int32, partition int32, offset int64) ReserveRequest {
	return ReserveRequest{OrderID: id, Quantity: qty, EventMs: offset, Source: Source{Topic: "orders", Partition: partition, Offset: offset}}
}

func resend(r ReserveRequest) ReserveRequest { r.Resend = true; return r }

func TestReserveReleaseForget(t *testing.T) {
	stock := func(n int32) Stock { return Stock{Units: n, Known: true} }
	// Each step is one loopback record at offset at of the product's loopback partition.
	type step struct {
		at       int64
		reserve  *ReserveRequest
		release  *ReleaseRequest
		forget   string
		stock    Stock
		want     domain.ValidationResult
		outcome  Outcome
		reserved int64
		inFlight int
	}
	r := func(s ReserveRequest) *ReserveRequest { return &s }
	cases := []struct {
		name  string
		steps []step
	}{
		{"SPEC worked case for one product", []step{
			{at: 0, reserve: r(req("a", 1, 0, 1)), stock: stock(1), want: domain.Pass, outcome: Fresh, reserved: 1, inFlight: 1},
			{at: 1, reserve: r(req("b", 1, 1, 1)), stock: stock(1), want: domain.Fail, outcome: Fresh, reserved: 1, inFlight: 2},
		}},
		{"no stock row fails, even for nothing", []step{
			{at: 0, reserve: r(req("a", 0, 0, 1)), stock: Stock{}, want: domain.Fail, outcome: Fresh, inFlight: 1},
		}},
		{"negative quantity fails rather than adding stock", []step{
			{at: 0, reserve: r(req("a", -3, 0, 1)), stock: stock(5), want: domain.Fail, outcome: Fresh, inFlight: 1},
		}},
		{"an in-flight order asked again gets the same answer, whatever the stock now", []step{
			{at: 0, reserve: r(req("a", 2, 0, 7)), stock: stock(2), want: domain.Pass, outcome: Fresh, reserved: 2, inFlight: 1},
			{at: 1, reserve: r(req("a", 2, 0, 7)), stock: stock(0), want: domain.Pass, outcome: Replayed, reserved: 2, inFlight: 1},
			{at: 2, reserve: r(req("b", 1, 0, 8)), stock: stock(2), want: domain.Fail, outcome: Fresh, reserved: 2, inFlight: 2},
			{at: 2, reserve: r(req("b", 1, 0, 8)), stock: stock(100), want: domain.Fail, outcome: Replayed, reserved: 2, inFlight: 2},
		}},
		{"a FAILED order releases once: a redelivered release record and a resent release change nothing", []step{
			{at: 3, reserve: r(req("a", 2, 0, 1)), stock: stock(2), want: domain.Pass, outcome: Fresh, reserved: 2, inFlight: 1},
			{at: 4, release: &ReleaseRequest{"a", 2, Source{Topic: "orders", Offset: 9}}, reserved: 0},
			{at: 4, release: &ReleaseRequest{"a", 2, Source{Topic: "orders", Offset: 9}}, reserved: 0},
			// The FAILED record replayed on an instance whose order entry lagged: same source.
			{at: 5, release: &ReleaseRequest{"a", 2, Source{Topic: "orders", Offset: 9}}, reserved: 0},
			{at: 6, reserve: r(req("b", 2, 0, 10)), stock: stock(2), want: domain.Pass, outcome: Fresh, reserved: 2, inFlight: 1},
		}},
		{"a VALIDATED order is forgotten and keeps its units; its redelivered records change nothing", []step{
			{at: 10, reserve: r(req("a", 2, 0, 5)), stock: stock(9), want: domain.Pass, outcome: Fresh, reserved: 2, inFlight: 1},
			{at: 11, forget: "a", reserved: 2},
			// The loopback record redelivered.
			{at: 10, reserve: r(req("a", 2, 0, 5)), stock: stock(9), outcome: Stale, reserved: 2},
			// Its CREATED redelivered (offsets rewound): a first request from an applied source.
			{at: 12, reserve: r(req("a", 2, 0, 5)), stock: stock(9), outcome: Settled, reserved: 2},
			{at: 13, reserve: r(req("c", 2, 0, 4)), stock: stock(9), outcome: Settled, reserved: 2},
			{at: 14, reserve: r(req("d", 2, 1, 4)), stock: stock(9), want: domain.Pass, outcome: Fresh, reserved: 4, inFlight: 1},
		}},
		// Issue 13 item 3: a request lost in a crash while a later one of the same orders
		// partition got through is resent when its CREATED is redelivered. It must be judged,
		// not taken for applied by its (lower) source offset.
		{"a resent request whose first sending was lost is judged, whatever later requests did", []step{
			{at: 20, reserve: r(req("later", 1, 0, 9)), stock: stock(5), want: domain.Pass, outcome: Fresh, reserved: 1, inFlight: 1},
			{at: 21, reserve: r(resend(req("lost", 1, 0, 8))), stock: stock(5), want: domain.Pass, outcome: Fresh, reserved: 2, inFlight: 2},
			// Sent once more (another crash): the same answer, reserved once.
			{at: 22, reserve: r(resend(req("lost", 1, 0, 8))), stock: stock(0), want: domain.Pass, outcome: Replayed, reserved: 2, inFlight: 2},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rs ReservedStock
			for i, s := range c.steps {
				switch {
				case s.reserve != nil:
					a, outcome := rs.Reserve(*s.reserve, s.stock, s.at)
					if outcome != s.outcome || (outcome != Stale && outcome != Settled && a.Result != s.want) {
						t.Fatalf("step %d: %+v %v, want %s %v", i, a, outcome, s.want, s.outcome)
					}
				case s.release != nil:
					rs.Release(*s.release, s.at)
				default:
					rs.Forget(s.forget)
				}
				if rs.Reserved != s.reserved || len(rs.Orders) != s.inFlight {
					t.Fatalf("step %d: reserved %d with %d in flight, want %d and %d", i, rs.Reserved, len(rs.Orders), s.reserved, s.inFlight)
				}
			}
		})
	}
}

// A product's value holds in-flight orders only: it does not grow with the orders seen (the
// fault of the first design, which kept a day of orders in it).
func TestProductStateHoldsOnlyInFlightOrders(t *testing.T) {
	var rs ReservedStock
	size := func() int {
		b, _ := json.Marshal(TableValue{ReservedStock: rs})
		return len(b)
	}
	for i := 0; i < 100000; i++ {
		id := fmt.Sprint("order-", i)
		rs.Reserve(req(id, 1, int32(i%6), int64(i)), Stock{Units: 1 << 30, Known: true}, int64(i))
		if i >= 10 { // orders finish shortly after they are judged
			rs.Forget(fmt.Sprint("order-", i-10))
		}
		if i == 1000 {
			if s := size(); s > 2000 {
				t.Fatalf("value is %d bytes with 10 orders in flight", s)
			}
		}
	}
	if s := size(); s > 2000 || len(rs.Orders) != 10 || rs.Reserved != 100000 {
		t.Fatalf("after 100k orders: %d bytes, %d in flight, %d reserved", s, len(rs.Orders), rs.Reserved)
	}
}

func TestAnswersOlderThanTheRetentionAreDropped(t *testing.T) {
	var rs ReservedStock
	rs.Reserve(ReserveRequest{OrderID: "old", Quantity: 1, EventMs: 0, Source: Source{Topic: "orders", Offset: 1}}, Stock{Units: 9, Known: true}, 0)
	rs.Reserve(ReserveRequest{OrderID: "new", Quantity: 1, EventMs: AnswerRetention.Milliseconds() + 1, Source: Source{Topic: "orders", Offset: 2}}, Stock{Units: 9, Known: true}, 1)
	if _, ok := rs.Orders["old"]; ok || rs.Reserved != 2 {
		t.Fatalf("orders %v reserved %d: the old answer must go, its units stay", rs.Orders, rs.Reserved)
	}
}

func TestLoopMessageValidate(t *testing.T) {
	cases := []struct {
		name string
		m    LoopMessage
		ok   bool
	}{
		{"reserve", LoopMessage{Reserve: &ReserveRequest{OrderID: "a", Quantity: 1, Source: Source{Topic: "orders"}}}, true},
		{"release", LoopMessage{Release: &ReleaseRequest{"a", 1, Source{Topic: "orders"}}}, true},
		{"forget", LoopMessage{Forget: &OrderRef{"a"}}, true},
		{"verdict", LoopMessage{Verdict: &VerdictRecord{Result: domain.Pass, Reserved: 1}}, true},
		{"settled", LoopMessage{Verdict: &VerdictRecord{Settled: true}}, true},
		{"nothing", LoopMessage{}, false},
		{"two", LoopMessage{Release: &ReleaseRequest{"a", 1, Source{Topic: "orders"}}, Forget: &OrderRef{"a"}}, false},
		{"reserve without id", LoopMessage{Reserve: &ReserveRequest{Quantity: 1, Source: Source{Topic: "orders"}}}, false},
		{"reserve without source", LoopMessage{Reserve: &ReserveRequest{OrderID: "a", Quantity: 1}}, false},
		{"release without id", LoopMessage{Release: &ReleaseRequest{Quantity: 1, Source: Source{Topic: "orders"}}}, false},
		{"negative release", LoopMessage{Release: &ReleaseRequest{"a", -1, Source{Topic: "orders"}}}, false},
		{"error verdict", LoopMessage{Verdict: &VerdictRecord{Result: domain.Error}}, false},
	}
	for _, c := range cases {
		if err := c.m.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// Undecided orders (the aggregator down) cannot grow a product's value past MaxAnswers; a
// dropped order's release gives nothing back (its units stay reserved: never given back
// twice).
func TestAnswersAreCappedAndDroppedOrdersKeepTheirUnits(t *testing.T) {
	var rs ReservedStock
	for i := 0; i < 4000; i++ {
		rs.Reserve(req(fmt.Sprintf("%0240d", i), 1, 0, int64(i)), Stock{Units: 1 << 30, Known: true}, int64(i))
	}
	b, _ := json.Marshal(TableValue{ReservedStock: rs})
	if len(rs.Orders) != MaxAnswers || len(b) > 200_000 || rs.Reserved != 4000 {
		t.Fatalf("%d answers, %d bytes, %d reserved", len(rs.Orders), len(b), rs.Reserved)
	}
	dropped := fmt.Sprintf("%0240d", 0)
	if _, ok := rs.Orders[dropped]; ok {
		t.Fatal("the oldest answer was kept")
	}
	release := ReleaseRequest{OrderID: dropped, Quantity: 1, Source: Source{Topic: "orders", Partition: 1, Offset: 9}}
	if rs.Release(release, 4000) || rs.Reserved != 4000 {
		t.Fatalf("release of a dropped order: reserved %d", rs.Reserved)
	}
	kept := fmt.Sprintf("%0240d", 3999)
	if !rs.Release(ReleaseRequest{OrderID: kept, Quantity: 1, Source: Source{Topic: "orders", Partition: 1, Offset: 10}}, 4001) || rs.Reserved != 3999 {
		t.Fatalf("release of a known order: reserved %d", rs.Reserved)
	}
}

// Issue 13 item 12: one order's release reaching the product twice, from different source
// records (an order's key finished twice: see Release), gives its units back once.
func TestAReleaseFromAnotherSourceGivesBackNothingTwice(t *testing.T) {
	var rs ReservedStock
	rs.Reserve(req("a", 2, 0, 5), Stock{Units: 9, Known: true}, 0)
	rs.Release(ReleaseRequest{OrderID: "a", Quantity: 2, Source: Source{Topic: "inventory-service-loop", Partition: 3, Offset: 40}}, 1)
	rs.Release(ReleaseRequest{OrderID: "a", Quantity: 2, Source: Source{Topic: "orders", Partition: 0, Offset: 77}}, 2)
	if rs.Reserved != 0 {
		t.Fatalf("reserved %d after two releases of one order, want 0", rs.Reserved)
	}
}

// A product's and an order's values, and every loop record, survive the codecs exactly,
// including the flattened ReservedStock; the loop codec refuses what this service never writes.
func TestValuesSurviveTheCodecs(t *testing.T) {
	values := []TableValue{
		{ReservedStock: ReservedStock{Reserved: 5, Orders: map[string]Answer{"o\xff": {Result: domain.Pass, Reserved: 2, EventMs: 9}, "o\xfe": {Result: domain.Fail, EventMs: 10}},
			LatestEventMs: 10, Applied: map[string]int64{"orders/0": 7, "orders/5": 0}, LoopNext: 12}},
		{Order: &OrderEntry{Product: domain.Jumpers, Result: domain.Pass, Reserved: 2, Final: domain.OrderFailed}, First: "WoYTXo9QbbBNNphr",
			Finished: &FinishedEntry{Product: domain.Jumpers, Final: domain.OrderValidated, Reserved: 2}},
		{},
	}
	for i, v := range values {
		b, err := tableCodec.Encode(&v)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tableCodec.Unmarshal(b); err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("value %d: got %+v (%v), want %+v", i, got, err, v)
		}
	}
	loops := []LoopMessage{
		{Reserve: &ReserveRequest{OrderID: "o", Quantity: 1, EventMs: 5, Source: Source{Topic: "orders", Partition: 2, Offset: 3}, Resend: true}},
		{Release: &ReleaseRequest{OrderID: "o", Quantity: 1, Source: Source{Topic: "orders", Partition: 2, Offset: 4}}},
		{Forget: &OrderRef{OrderID: "o"}},
		{Verdict: &VerdictRecord{Result: domain.Pass, Reserved: 1, Settled: true}},
	}
	for i, m := range loops {
		b, err := loopCodec.Encode(&m)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := loopCodec.Unmarshal(b); err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("loop record %d: got %+v (%v), want %+v", i, got, err, m)
		}
	}
	foreign, err := cbor.Marshal(map[int]any{4: map[int]any{1: "PASS", 9: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loopCodec.Unmarshal(foreign); !errors.Is(err, platform.ErrCorruptCBOR) {
		t.Fatalf("loop record with an unknown field: %v", err)
	}
}
