package platform

import "github.com/lovoo/goka"

// Names applies an optional prefix to every topic and group name, so that several ecosystems
// (or several tests) can share one Kafka cluster. The zero value uses the names of SPEC.md
// unchanged, which is what production and Java interoperability need.
type Names struct {
	Prefix string
}

// Topic prefixes a topic name.
func (n Names) Topic(name string) string { return n.Prefix + name }

// Stream prefixes a stream topic.
func (n Names) Stream(s goka.Stream) goka.Stream { return goka.Stream(n.Prefix + string(s)) }

// Table prefixes a table topic.
func (n Names) Table(t goka.Table) goka.Table { return goka.Table(n.Prefix + string(t)) }

// Group prefixes a consumer group (and so its table and loop topics).
func (n Names) Group(g goka.Group) goka.Group { return goka.Group(n.Prefix + string(g)) }

// LevelTopic returns the topic enriched orders of a customer level go to, and whether the
// level is one of the known four; unknown levels go to TopicUnknownLevel.
func (n Names) LevelTopic(level string) (goka.Stream, bool) {
	if t, ok := LevelTopics[level]; ok {
		return n.Stream(t), true
	}
	return n.Stream(TopicUnknownLevel), false
}

// AllTopics lists every topic of the ecosystem under these names.
func (n Names) AllTopics() []TopicSpec {
	topics := AllTopics()
	for i := range topics {
		topics[i].Name = n.Topic(topics[i].Name)
	}
	return topics
}
