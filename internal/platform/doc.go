// Package platform owns every Kafka concern the services share, so that no service
// re-declares them: topic names and consumer groups, the Avro codecs with Confluent framing
// and their schema ids, the plain key/value formats, the one partitioner (Java-compatible
// murmur2), the sarama/goka and franz-go client configuration, topic provisioning, the
// dead-letter topic, the common configuration flags and the slog adapters for goka and sarama.
package platform
