package reliability

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordersys/ecosystem/internal/apachekafka"
	"github.com/ordersys/ecosystem/internal/platform"
	"github.com/ordersys/ecosystem/internal/platform/kafkatest"
)

// clusterPhase is one fault of the cluster scenario and what clients saw while it lasted.
type clusterPhase struct {
	Name string `json:"name"`
	// Orders placed (POST started) between the fault and the next phase, by POST status and
	// by read-back status.
	Posts     map[string]int `json:"posts"`
	ReadBacks map[string]int `json:"readBacks"`
	// LongestPost is the slowest POST of the phase; LongestReadBack the slowest wait from a
	// POST's answer until GET …/validated answered.
	LongestPost     string `json:"longestPost"`
	LongestReadBack string `json:"longestReadBack"`

	start, end time.Time
}

// Scenario 6 (Apache Kafka only: kfake has no replication): three brokers, every topic with
// replication 3 and min.insync.replicas 2. Under load (REST POSTs with payments, each order
// read back), the broker that leads most `orders` partitions and coordinates the most groups
// is SIGKILLed and started again; then every broker is restarted in turn (SIGTERM, as a
// rolling upgrade does). The audit is the suite's: nothing accepted is lost, one decision per
// order, reservations as the verdicts say, one email per eligible order. The report gives the
// client-visible statuses and the longest stall of each phase.
func TestKafkaClusterFailover(t *testing.T) {
	m := suiteMode(t, modeShort, modeFull)
	if !kafkatest.WantsApache() {
		t.Skip("the cluster scenario needs Apache Kafka (KAFKA_BACKEND=apache): kfake has no replication")
	}
	const partitions, nodes = 6, 3
	plan := crashPlanFor(m)
	bins := binaryPaths(t)
	broker := startApacheBroker(t, nodes, partitions)
	c := newClusterOn(t, bins, broker, partitions, nodes)
	c.checkTopicConfig(platform.TopicOrders, "min.insync.replicas", "2")
	stock := plan.stock
	known := c.seed(stock)
	svcs := c.startEcosystem()

	load := c.startLoadReading([]string{svcs[kindOrders].url()}, plan.rate, "cluster", newOrderMix(t, known), true)
	var phases []*clusterPhase
	begin := func(name string) {
		now := time.Now()
		if len(phases) > 0 {
			phases[len(phases)-1].end = now
		}
		phases = append(phases, &clusterPhase{Name: name, start: now})
	}
	begin("steady")
	time.Sleep(3 * plan.pause)

	victim, why := c.busiestNode(broker.cluster)
	begin(fmt.Sprintf("SIGKILL node %d (%s)", victim.ID, why))
	attempted, accepted := load.progress()
	victim.Kill()
	t.Logf("SIGKILLed Kafka node %d (%s) after %d orders (%d accepted)", victim.ID, why, attempted, accepted)
	time.Sleep(5 * time.Second)
	broker.restartNode(victim)
	c.waitServicesReady(svcs)
	t.Logf("node %d back", victim.ID)
	time.Sleep(3 * plan.pause)

	for _, n := range broker.cluster.Nodes() {
		// As a rolling upgrade does: the next broker goes only once every replica is back in
		// sync, or stopping it would leave partitions below min.insync.replicas.
		c.waitInSync(nodes, 2*time.Minute)
		begin(fmt.Sprintf("rolling restart of node %d", n.ID))
		if !n.Stop() {
			t.Logf("node %d did not stop within the bound after SIGTERM and was SIGKILLed", n.ID)
		}
		broker.restartNode(n)
		c.waitServicesReady(svcs)
		t.Logf("node %d restarted", n.ID)
		time.Sleep(3 * plan.pause)
	}
	begin("after")
	time.Sleep(plan.pause)
	placements := load.stop()
	phases[len(phases)-1].end = time.Now()

	for _, ph := range phases {
		ph.Posts, ph.ReadBacks = map[string]int{}, map[string]int{}
		var longestPost, longestRead time.Duration
		for _, p := range placements {
			if p.at.Before(ph.start) || !p.at.Before(ph.end) {
				continue
			}
			ph.Posts[statusKey(p.status)]++
			longestPost = max(longestPost, p.took)
			if p.accepted() {
				ph.ReadBacks[statusKey(p.readStatus)]++
				longestRead = max(longestRead, p.readTook-p.took)
			}
		}
		ph.LongestPost = longestPost.Round(time.Millisecond).String()
		ph.LongestReadBack = longestRead.Round(time.Millisecond).String()
		logReport(t, ph)
	}
	c.settle("kafka cluster failover", placements, stock, known, 3*time.Minute, svcs[kindEmail])
	c.checkAlive()
}

// checkTopicConfig fails the test unless the topic's key is set to want at the topic level
// (by provisioning, not inherited from the broker).
func (c *cluster) checkTopicConfig(topic goka.Stream, key, want string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := c.names.Topic(string(topic))
	configs, err := c.admin.DescribeTopicConfigs(ctx, name)
	if err != nil {
		c.t.Fatalf("describe %s configs: %v", name, err)
	}
	rc, err := configs.On(name, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		c.t.Fatalf("describe %s configs: %v", name, err)
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == key {
			if cfg.Value == nil || *cfg.Value != want || cfg.Source != kmsg.ConfigSourceDynamicTopicConfig {
				c.t.Fatalf("%s %s = %v (source %v), want %s set on the topic", name, key, cfg.MaybeValue(), cfg.Source, want)
			}
			return
		}
	}
	c.t.Fatalf("%s has no %s", name, key)
}

// waitInSync waits until every partition of every topic, the internal ones included, has all
// replicas in sync.
func (c *cluster) waitInSync(replicas int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		topics, err := c.admin.ListTopicsWithInternal(ctx)
		cancel()
		behind := 0
		if err == nil {
			for _, td := range topics {
				for _, p := range td.Partitions {
					if len(p.ISR) < replicas {
						behind++
					}
				}
			}
		}
		if err == nil && behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replicas not back in sync after %v: %d partitions behind (%v)", timeout, behind, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func statusKey(status int) string {
	if status == 0 {
		return "no answer"
	}
	return fmt.Sprint(status)
}

// waitServicesReady waits until every service is ready again; one that exited fails the test.
func (c *cluster) waitServicesReady(svcs map[string]*service) {
	c.t.Helper()
	for _, kind := range serviceKinds {
		if !c.awaitReadyOrExit(svcs[kind], 90*time.Second) {
			c.t.Fatalf("%s ended (%s) during the broker fault: %s", kind, svcs[kind].current().ExitState(),
				exitReason(svcs[kind].current().Output()))
		}
	}
}

// busiestNode returns the node that leads the most `orders` partitions, counting the consumer
// groups it coordinates as the tie-break (and the other way round when no node leads more
// partitions than another), with a note saying so.
func (c *cluster) busiestNode(cl *apachekafka.Cluster) (*apachekafka.Node, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	orders := c.names.Topic(string(platform.TopicOrders))
	topics, err := c.admin.ListTopics(ctx, orders)
	if err != nil {
		c.t.Fatalf("describe %s: %v", orders, err)
	}
	leads := map[int32]int{}
	for _, p := range topics[orders].Partitions {
		leads[p.Leader]++
	}
	groups, err := c.admin.ListGroups(ctx)
	if err != nil {
		c.t.Fatalf("list groups: %v", err)
	}
	described, err := c.admin.DescribeGroups(ctx, groups.Groups()...)
	if err != nil {
		c.t.Fatalf("describe groups: %v", err)
	}
	coordinates := map[int32]int{}
	for _, g := range described {
		coordinates[g.Coordinator.NodeID]++
	}
	ids := make([]int32, 0, len(cl.Nodes()))
	for _, n := range cl.Nodes() {
		ids = append(ids, int32(n.ID))
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := ids[i], ids[j]
		if leads[a] != leads[b] {
			return leads[a] > leads[b]
		}
		return coordinates[a] > coordinates[b]
	})
	top := ids[0]
	return cl.Node(int(top)), fmt.Sprintf("leads %d of %d orders partitions, coordinates %d of %d groups",
		leads[top], len(topics[orders].Partitions), coordinates[top], len(described))
}
