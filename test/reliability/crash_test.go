package reliability

import (
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
)

// crashPlan sizes the crash scenarios by mode.
type crashPlan struct {
	rate   float64       // orders per second
	rounds int           // times every service is killed
	pause  time.Duration // load between a restart being ready and the next kill
	stock  map[domain.Product]int32
}

// crashPlanFor sizes the plan so that jumpers and stockings run out part-way through the run
// (the short run places about 600 orders of 2 units on average, a third of them per product).
func crashPlanFor(m mode) crashPlan {
	if m == modeFull {
		return crashPlan{rate: 30, rounds: 3, pause: 5 * time.Second, stock: sampleStock(3000, 1500)}
	}
	return crashPlan{rate: 15, rounds: 1, pause: 2 * time.Second, stock: sampleStock(300, 150)}
}

// Scenario 1: while orders arrive at a steady rate, every service in turn is SIGKILLed and
// started again on the same state directory. Every accepted order still reaches exactly one
// final state, reservations match the decisions, and each paid order of a known customer
// gets one email.
func TestServiceCrashesUnderLoad(t *testing.T) {
	m := suiteMode(t, modeShort, modeFull)
	plan := crashPlanFor(m)
	c := newCluster(t, 4)
	stock := plan.stock
	known := c.seed(stock)
	svcs := c.startEcosystem()

	load := c.startLoad([]string{svcs[kindOrders].url()}, plan.rate, "crash", newOrderMix(t, known))
	time.Sleep(plan.pause)
	for round := 1; round <= plan.rounds; round++ {
		for _, kind := range serviceKinds {
			s := svcs[kind]
			attempted, accepted := load.progress()
			c.kill(s)
			c.restart(s)
			took := c.waitReady(s, 90*time.Second)
			t.Logf("round %d: SIGKILLed %s after %d orders (%d accepted); ready again after %v",
				round, s.name, attempted, accepted, took.Round(100*time.Millisecond))
			time.Sleep(plan.pause)
		}
	}
	placements := load.stop()
	c.settle("service crash", placements, stock, known, 2*time.Minute, svcs[kindEmail])
	c.checkAlive()
}

// Scenario 2: the broker is SIGKILLed mid-load and started again on the same port and data
// directory. Services must reconnect by themselves: one that exits instead fails the test.
// To still measure whether anything was lost, such a service is then started again, as the
// deployment's restart policy (restart: unless-stopped) would, and the same promises are
// checked.
func TestBrokerCrashUnderLoad(t *testing.T) {
	m := suiteMode(t, modeShort, modeFull)
	plan := crashPlanFor(m)
	c := newCluster(t, 4)
	stock := plan.stock
	known := c.seed(stock)
	svcs := c.startEcosystem()

	load := c.startLoad([]string{svcs[kindOrders].url()}, plan.rate, "broker", newOrderMix(t, known))
	downtimes := []time.Duration{2 * time.Second}
	if m == modeFull {
		downtimes = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second}
	}
	for _, down := range downtimes {
		time.Sleep(5 * time.Second)
		attempted, accepted := load.progress()
		c.broker.kill()
		t.Logf("SIGKILLed the broker after %d orders (%d accepted); down for %v", attempted, accepted, down)
		time.Sleep(down)
		c.broker.restart()
		start := time.Now()
		for _, kind := range serviceKinds {
			s := svcs[kind]
			if c.awaitReadyOrExit(s, 90*time.Second) {
				continue
			}
			t.Errorf("%s did not survive the broker restart: it ended (%s): %s",
				s.name, s.current().ExitState(), exitReason(s.current().Output()))
			c.restart(s)
			c.waitReady(s, 90*time.Second)
		}
		t.Logf("broker back; every service ready %v after the broker", time.Since(start).Round(100*time.Millisecond))
	}
	time.Sleep(5 * time.Second)
	placements := load.stop()
	c.settle("broker crash", placements, stock, known, 2*time.Minute, svcs[kindEmail])
	c.checkAlive()
}
