package inventory_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/inventory"
)

func stock(units int32) inventory.Stock { return inventory.Stock{Units: units, Known: true} }

// op is one reservation (or, with release set, one release) on a product, and what must come
// out of it.
type op struct {
	release  bool
	id       string
	at       time.Duration
	qty      int32
	stock    inventory.Stock
	want     domain.ValidationResult // reservations only
	replayed bool
	late     bool
	changed  bool  // releases only
	reserved int64 // afterwards
}

func TestReserveAndRelease(t *testing.T) {
	noRow := inventory.Stock{}
	cases := []struct {
		name    string
		ops     []op
		entries int // entries left afterwards
	}{
		{"spec: the last jumper goes to the first order", []op{
			{id: "j1", qty: 1, stock: stock(1), want: domain.Pass, reserved: 1},
			{id: "j2", at: time.Second, qty: 1, stock: stock(1), want: domain.Fail, reserved: 1},
		}, 2},
		{"stock exactly used up passes", []op{
			{id: "a", qty: 3, stock: stock(5), want: domain.Pass, reserved: 3},
			{id: "b", qty: 2, stock: stock(5), want: domain.Pass, reserved: 5},
			{id: "c", qty: 1, stock: stock(5), want: domain.Fail, reserved: 5},
		}, 3},
		{"quantity zero passes even with zero stock, reserving nothing", []op{
			{id: "a", qty: 0, stock: stock(0), want: domain.Pass, reserved: 0},
		}, 1},
		{"no stock row fails", []op{
			{id: "a", qty: 0, stock: noRow, want: domain.Fail, reserved: 0},
			{id: "b", qty: 1, stock: noRow, want: domain.Fail, reserved: 0},
		}, 2},
		{"negative quantity fails and adds no stock", []op{
			{id: "a", qty: -5, stock: stock(5), want: domain.Fail, reserved: 0},
			{id: "b", qty: 5, stock: stock(5), want: domain.Pass, reserved: 5},
		}, 2},
		{"stock lowered below what is reserved", []op{
			{id: "a", qty: 5, stock: stock(10), want: domain.Pass, reserved: 5},
			{id: "b", qty: 0, stock: stock(4), want: domain.Fail, reserved: 5},
		}, 2},
		{"replays get their first verdict and reserve once, whatever the stock now", []op{
			{id: "a", qty: 2, stock: stock(2), want: domain.Pass, reserved: 2},
			{id: "b", qty: 1, stock: stock(2), want: domain.Fail, reserved: 2},
			{id: "a", qty: 2, stock: stock(2), want: domain.Pass, replayed: true, reserved: 2},
			{id: "b", qty: 1, stock: stock(100), want: domain.Fail, replayed: true, reserved: 2},
		}, 2},
		{"a failed order releases its units once", []op{
			{id: "a", qty: 2, stock: stock(2), want: domain.Pass, reserved: 2},
			{release: true, id: "a", at: time.Second, changed: true, reserved: 0},
			{release: true, id: "a", at: time.Second, changed: false, reserved: 0},
			{id: "a", qty: 2, stock: stock(2), want: domain.Pass, replayed: true, reserved: 0},
			{id: "b", qty: 2, stock: stock(2), want: domain.Pass, reserved: 2},
		}, 2},
		{"releasing an order that failed here changes nothing held", []op{
			{id: "a", qty: 3, stock: stock(2), want: domain.Fail, reserved: 0},
			{release: true, id: "a", changed: true, reserved: 0},
		}, 1},
		{"a release seen before its order keeps the order from reserving", []op{
			{release: true, id: "a", changed: true, reserved: 0},
			{id: "a", qty: 1, stock: stock(5), want: domain.Fail, reserved: 0},
			{id: "a", qty: 1, stock: stock(5), want: domain.Fail, replayed: true, reserved: 0},
		}, 1},
		{"entries expire after a day, their units stay reserved; older orders are late", []op{
			{id: "a", qty: 2, stock: stock(10), want: domain.Pass, reserved: 2},
			{id: "b", at: 25 * time.Hour, qty: 1, stock: stock(10), want: domain.Pass, reserved: 3},
			{id: "a", qty: 2, stock: stock(10), want: domain.Fail, late: true, reserved: 3},
			{release: true, id: "a", at: 30 * time.Minute, changed: false, reserved: 3},
			{id: "c", at: 25 * time.Hour, qty: 7, stock: stock(10), want: domain.Pass, reserved: 10},
		}, 2},
		{"an entry exactly at the horizon is kept", []op{
			{id: "a", qty: 2, stock: stock(10), want: domain.Pass, reserved: 2},
			{id: "b", at: 24 * time.Hour, qty: 1, stock: stock(10), want: domain.Pass, reserved: 3},
			{id: "a", qty: 2, stock: stock(10), want: domain.Pass, replayed: true, reserved: 3},
		}, 2},
	}
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r inventory.ReservedStock
			for i, o := range c.ops {
				at := base + o.at.Milliseconds()
				if o.release {
					if changed := r.Release(o.id, at); changed != o.changed {
						t.Fatalf("op %d: release %s changed=%v, want %v", i, o.id, changed, o.changed)
					}
				} else {
					out := r.Reserve(o.id, at, o.qty, o.stock)
					if out.Result != o.want || out.Replayed != o.replayed || out.Late != o.late {
						t.Fatalf("op %d: reserve %s: %+v, want %s replayed=%v late=%v", i, o.id, out, o.want, o.replayed, o.late)
					}
				}
				if r.Reserved != o.reserved {
					t.Fatalf("op %d (%s): reserved %d, want %d", i, o.id, r.Reserved, o.reserved)
				}
			}
			if len(r.Orders) != c.entries {
				t.Fatalf("%d entries left, want %d: %+v", len(r.Orders), c.entries, r.Orders)
			}
		})
	}
}

// Event times before 1970 (records without a timestamp read as the zero time) still work: a
// fresh state must not take its zero LatestEventMs for stream time.
func TestReserveZeroTime(t *testing.T) {
	var r inventory.ReservedStock
	zero := time.Time{}.UnixMilli()
	if out := r.Reserve("a", zero, 1, stock(1)); out.Result != domain.Pass || out.Late {
		t.Fatalf("first order at the zero time: %+v", out)
	}
	if out := r.Reserve("b", zero, 1, stock(1)); out.Result != domain.Fail || out.Late {
		t.Fatalf("second order at the zero time: %+v", out)
	}
}

// A product ordered every minute for a week keeps only about a day of entries.
func TestReservedStockStaysBounded(t *testing.T) {
	var r inventory.ReservedStock
	const orders = 7 * 24 * 60
	for i := 0; i < orders; i++ {
		r.Reserve(strconv.Itoa(i), int64(i)*time.Minute.Milliseconds(), 1, stock(orders))
	}
	if max := int(inventory.ReservationRetention/time.Minute) + 1; len(r.Orders) > max {
		t.Fatalf("%d entries kept, want at most %d", len(r.Orders), max)
	}
	if r.Reserved != orders {
		t.Fatalf("reserved %d, want %d: dropped entries must stay counted", r.Reserved, orders)
	}
}
