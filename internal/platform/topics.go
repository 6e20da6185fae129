package platform

import (
	"slices"

	"github.com/lovoo/goka"
)

// Public topics of SPEC.md. Their names, keys and value formats are shared with the reference
// Java system.
const (
	TopicOrders             goka.Stream = "orders"
	TopicOrderValidations   goka.Stream = "order-validations"
	TopicWarehouseInventory goka.Table  = "warehouse-inventory"
	TopicCustomers          goka.Table  = "customers"
	TopicPayments           goka.Stream = "payments"
	TopicPlatinum           goka.Stream = "platinum"
	TopicGold               goka.Stream = "gold"
	TopicSilver             goka.Stream = "silver"
	TopicBronze             goka.Stream = "bronze"
)

// TopicDeadLetters receives every record a service could not decode, unchanged, with headers
// saying where it came from and why it failed (see DeadLetter). One topic for the whole
// ecosystem, so an operator watches one place.
const TopicDeadLetters goka.Stream = "dead-letters"

// TopicUnknownLevel receives enriched orders whose customer level is not one of the four
// level topics: routing never creates or writes a topic named by unchecked data.
const TopicUnknownLevel goka.Stream = "unknown-level"

// Consumer groups of the services. Each group's goka table topic is "<group>-table" and its
// loopback (re-key) topic "<group>-loop"; both are provisioned with the public topics.
const (
	GroupOrders     goka.Group = "orders-service"
	GroupValidation goka.Group = "validations-aggregator"
	GroupDetails    goka.Group = "order-details-service"
	GroupFraud      goka.Group = "fraud-service"
	GroupInventory  goka.Group = "inventory-service"
	GroupEmail      goka.Group = "email-service"
)

// TopicOrdersMembership is the compacted table in which each Orders instance announces the
// partitions it owns and the HTTP address where it serves them.
const TopicOrdersMembership goka.Table = "orders-service-membership"

// LevelTopics maps a customer level to the topic its enriched orders go to.
var LevelTopics = map[string]goka.Stream{
	"platinum": TopicPlatinum,
	"gold":     TopicGold,
	"silver":   TopicSilver,
	"bronze":   TopicBronze,
}

// TopicSpec describes one topic the ecosystem needs.
type TopicSpec struct {
	Name    string
	Record  string // Avro record of the value ("" for plain formats and internal topics)
	Compact bool   // a table: the last value per key is what counts
}

// PublicTopics lists the topics of SPEC.md.
func PublicTopics() []TopicSpec {
	return []TopicSpec{
		{Name: string(TopicOrders), Record: "Order"},
		{Name: string(TopicOrderValidations), Record: "OrderValidation"},
		{Name: string(TopicWarehouseInventory), Compact: true},
		{Name: string(TopicCustomers), Record: "Customer", Compact: true},
		{Name: string(TopicPayments), Record: "Payment"},
		{Name: string(TopicPlatinum), Record: "OrderEnriched"},
		{Name: string(TopicGold), Record: "OrderEnriched"},
		{Name: string(TopicSilver), Record: "OrderEnriched"},
		{Name: string(TopicBronze), Record: "OrderEnriched"},
	}
}

// groupsWithTable and groupsWithLoop say which groups persist state and which re-key through a
// loopback topic; provisioning creates exactly these internal topics.
var (
	groupsWithTable = []goka.Group{GroupOrders, GroupValidation, GroupDetails, GroupFraud, GroupInventory, GroupEmail}
	groupsWithLoop  = []goka.Group{GroupFraud, GroupInventory, GroupEmail}
)

// AllTopics lists every topic of the ecosystem: the public ones, the group tables, the
// loopback (repartition) topics, the membership table and the shared side topics.
func AllTopics() []TopicSpec {
	topics := PublicTopics()
	for _, g := range groupsWithTable {
		topics = append(topics, TopicSpec{Name: string(goka.GroupTable(g)), Compact: true})
	}
	for _, g := range groupsWithLoop {
		topics = append(topics, TopicSpec{Name: LoopTopic(g)})
	}
	topics = append(topics,
		TopicSpec{Name: string(TopicOrdersMembership), Compact: true},
		TopicSpec{Name: string(TopicDeadLetters)},
		TopicSpec{Name: string(TopicUnknownLevel), Record: "OrderEnriched"},
	)
	return topics
}

// AllGroups lists the consumer groups of the ecosystem (every one keeps a group table), for
// tools that watch them, such as the benchmark waiting for their lag to reach zero.
func AllGroups() []goka.Group { return slices.Clone(groupsWithTable) }

// LoopTopic is the name goka gives a group's loopback topic (goka exports no function for it).
func LoopTopic(g goka.Group) string { return string(g) + "-loop" }
