package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/internal/orders"
	"github.com/ordersys/ecosystem/internal/platform"
)

// request is one REST call of the instance-loss scenario and its outcome.
type request struct {
	method    string
	id        string
	partition int32
	via       string
	status    int // 0 when no answer came
	err       string
	start     time.Time
	took      time.Duration
	timeout   time.Duration
}

// owners reads the membership table: the latest announcement per partition of the orders view.
func (c *cluster) owners() map[int32]orders.Owner {
	c.t.Helper()
	latest := map[int32]orders.Owner{}
	for _, r := range c.readTopic(c.names.Topic(string(platform.TopicOrdersMembership))) {
		var o orders.Owner
		if json.Unmarshal(r.Value, &o) != nil {
			continue
		}
		if cur, ok := latest[o.Partition]; !ok || o.Generation >= cur.Generation {
			latest[o.Partition] = o
		}
	}
	return latest
}

// waitBalanced waits until every partition is announced at one generation by n instances.
func (c *cluster) waitBalanced(n int, timeout time.Duration) map[int32]orders.Owner {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		owners := c.owners()
		addrs, gens := map[string]bool{}, map[int32]bool{}
		for _, o := range owners {
			addrs[o.Addr] = true
			gens[o.Generation] = true
		}
		if len(owners) == c.partitions && len(addrs) == n && len(gens) == 1 {
			return owners
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("orders view not balanced over %d instances after %v: %+v", n, timeout, owners)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Scenario 3: three Orders instances share the orders view; one is SIGKILLed while clients
// read and write through the other two. Its partitions move to the survivors once its session
// times out (6 s) and goka's rebalance pause passes; meanwhile requests through the survivors
// wait within their deadline, and none gets a 5xx while its deadline has time left.
func TestOrdersInstanceLoss(t *testing.T) {
	m := suiteMode(t, modeShort, modeFull)
	const partitions = 6
	c := newCluster(t, partitions)
	stock := sampleStock(1_000_000, 1_000_000)
	known := c.seed(stock)
	var instances []*service
	for i := 1; i <= 3; i++ {
		instances = append(instances, c.startService(kindOrders, fmt.Sprintf("orders-%d", i)))
	}
	for _, s := range instances {
		c.waitReady(s, 90*time.Second)
	}
	owners := c.waitBalanced(3, 90*time.Second)
	victim := instances[2]
	survivors := instances[:2]
	var victimPartitions []int32
	for p, o := range owners {
		if o.Addr == victim.addr {
			victimPartitions = append(victimPartitions, p)
		}
	}
	slices.Sort(victimPartitions)
	t.Logf("%s owns partitions %v of %d", victim.name, victimPartitions, partitions)

	mix := newOrderMix(t, known)
	client := &http.Client{Timeout: time.Minute}
	const timeout = 20 * time.Second
	var mu sync.Mutex
	var requests []*request
	var ids []string
	do := func(method, id, via string, body []byte) *request {
		r := &request{method: method, id: id, partition: platform.PartitionFor(id, partitions), via: via, start: time.Now(), timeout: timeout}
		url := fmt.Sprintf("%s/v1/orders/%s?timeout=%d", via, id, timeout.Milliseconds())
		if method == http.MethodPost {
			url = fmt.Sprintf("%s/v1/orders?timeout=%d", via, timeout.Milliseconds())
		}
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		r.took = time.Since(r.start)
		if err != nil {
			r.err = err.Error()
		} else {
			text, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r.status = resp.StatusCode
			if resp.StatusCode >= 300 {
				r.err = string(bytes.TrimSpace(text))
			}
		}
		mu.Lock()
		requests = append(requests, r)
		mu.Unlock()
		return r
	}
	post := func(n int, via string) {
		o, _ := mix.next(fmt.Sprintf("loss-%d", n))
		body, _ := json.Marshal(o)
		if r := do(http.MethodPost, o.ID, via, body); r.status == http.StatusCreated {
			mu.Lock()
			ids = append(ids, o.ID)
			mu.Unlock()
		}
	}
	// Orders in every partition before the loss, posted through every instance.
	for n := 0; n < 60; n++ {
		post(n, instances[n%3].url())
	}
	if len(ids) != 60 {
		t.Fatalf("only %d of 60 orders accepted before the loss", len(ids))
	}

	// Readers of keys on the victim's partitions and of the others read separately, so that
	// readers stalled on the first cannot hide how the second fare.
	isVictim := map[int32]bool{}
	for _, p := range victimPartitions {
		isVictim[p] = true
	}
	var victimIDs, otherIDs []string
	for _, id := range ids {
		if isVictim[platform.PartitionFor(id, partitions)] {
			victimIDs = append(victimIDs, id)
		} else {
			otherIDs = append(otherIDs, id)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const readersPerSide = 4
	for i := 0; i < 2*readersPerSide; i++ {
		pool := otherIDs
		if i < readersPerSide {
			pool = victimIDs
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				do(http.MethodGet, pool[rng.IntN(len(pool))], survivors[n%2].url(), nil)
			}
		}(i)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 60; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			post(n, survivors[n%2].url())
		}
	}()

	time.Sleep(2 * time.Second)
	killedAt := time.Now()
	c.kill(victim)
	t.Logf("SIGKILLed %s", victim.name)
	observe := 25 * time.Second
	if m == modeFull {
		observe = 45 * time.Second
	}
	time.Sleep(observe)
	close(stop)
	wg.Wait()

	// Every partition has moved to the survivors.
	after := c.waitBalanced(2, 30*time.Second)
	for p, o := range after {
		if o.Addr == victim.addr {
			t.Errorf("partition %d still announced at the dead instance", p)
		}
	}

	type summary struct {
		Scenario         string         `json:"scenario"`
		VictimPartitions []int32        `json:"victimPartitions"`
		Requests         int            `json:"requests"`
		Statuses         map[string]int `json:"statuses"`
		// EarlyErrors are 5xx answers (or no answer) while the deadline had time left.
		EarlyErrors int `json:"earlyErrors"`
		// Latencies of requests started after the kill, for keys on the dead instance's
		// partitions and on the others (every partition pauses in goka's rebalance).
		VictimMax   string `json:"victimPartitionsMaxLatency"`
		OthersMax   string `json:"otherPartitionsMaxLatency"`
		VictimP50   string `json:"victimPartitionsP50"`
		LastStalled string `json:"lastStalledRequestEndedAfterKill"`
		Accepted    int    `json:"acceptedPosts"`
		AcceptedIn  int    `json:"acceptedPostsInTopic"`
	}
	sum := summary{Scenario: "orders instance loss", VictimPartitions: victimPartitions, Statuses: map[string]int{}}
	var victimLat, otherLat []time.Duration
	var lastStalled time.Duration
	for _, r := range requests {
		sum.Requests++
		key := fmt.Sprintf("%s %d", r.method, r.status)
		sum.Statuses[key]++
		// An answer at or after the deadline (minus the 20 ms forwarding margin) is a timeout,
		// not an error while time was left.
		if (r.status == 0 || r.status >= 500) && r.took < r.timeout-100*time.Millisecond {
			sum.EarlyErrors++
			if sum.EarlyErrors <= 20 {
				t.Errorf("%s %s via %s (partition %d): %d after %v of %v: %s",
					r.method, r.id, r.via, r.partition, r.status, r.took.Round(time.Millisecond), r.timeout, r.err)
			}
		}
		if r.status >= 300 && r.status < 500 {
			t.Errorf("%s %s via %s: %d %s", r.method, r.id, r.via, r.status, r.err)
		}
		if r.start.Before(killedAt) {
			continue
		}
		if isVictim[r.partition] {
			victimLat = append(victimLat, r.took)
		} else {
			otherLat = append(otherLat, r.took)
		}
		if r.took > time.Second {
			lastStalled = max(lastStalled, r.start.Add(r.took).Sub(killedAt))
		}
	}
	sort.Slice(victimLat, func(i, j int) bool { return victimLat[i] < victimLat[j] })
	sort.Slice(otherLat, func(i, j int) bool { return otherLat[i] < otherLat[j] })
	if len(victimLat) > 0 {
		sum.VictimMax = victimLat[len(victimLat)-1].Round(time.Millisecond).String()
		sum.VictimP50 = victimLat[len(victimLat)/2].Round(time.Millisecond).String()
	}
	if len(otherLat) > 0 {
		sum.OthersMax = otherLat[len(otherLat)-1].Round(time.Millisecond).String()
	}
	sum.LastStalled = lastStalled.Round(100 * time.Millisecond).String()

	inTopic := map[string]bool{}
	for _, r := range c.readTopic(c.names.Topic(string(platform.TopicOrders))) {
		if o, err := c.codecs.Order.Unmarshal(r.Value); err == nil && o.State == domain.OrderCreated {
			inTopic[o.ID] = true
		}
	}
	sum.Accepted = len(ids)
	for _, id := range ids {
		if inTopic[id] {
			sum.AcceptedIn++
		} else {
			t.Errorf("order %s accepted but not in the orders topic", id)
		}
	}
	logReport(t, sum)
	for _, s := range survivors {
		if exited(s.current(), 0) {
			t.Errorf("%s ended (%s)", s.name, s.current().ExitState())
		}
	}
}
