"""The schema-registry peer of the interoperability suite: Confluent's confluent-kafka with its
schema_registry client, AvroSerializer and AvroDeserializer, as a Python service would use them.

    python registry.py produce <bootstrap> <registry-url> <plan.json>
    python registry.py read <bootstrap> <registry-url> <prefix> <timeout-seconds> <topic>=<count> ...

produce writes what plan.json lists, in this order: customers (key: the id as an 8-byte
big-endian long, as Kafka's LongSerializer writes it), orders with each schema the plan gives
(the first is the project's Order, later ones newer versions the serializer registers), then
payments (key: the payment id). Every value goes through AvroSerializer with automatic
registration; the subject is "<topic>-value" with the test's prefix taken off, so a newer Order
schema becomes a new version of the subject the services registered. It prints one line per
subject it registered: {"subject", "id", "version"}.

read consumes each topic from the beginning until it holds at least <count> records (or the
timeout passes) and prints one line per record: {"topic", "partition", "key" (hex),
"schemaId", "value"}, the value decoded by AvroDeserializer with the writer's schema fetched
from the registry by the id in its Confluent header (asked for under the subject produce uses,
as the deserializer names it).
"""

import json
import struct
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def subject_strategy(prefix):
    def strategy(ctx, record_name):
        topic = ctx.topic
        if prefix and topic.startswith(prefix):
            topic = topic[len(prefix):]
        return topic + "-value"
    return strategy


def produce(bootstrap, registry_url, plan_path):
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    registry = SchemaRegistryClient({"url": registry_url})
    conf = {"auto.register.schemas": True, "subject.name.strategy": subject_strategy(plan["prefix"])}

    def serializer(schema_path):
        with open(schema_path, encoding="utf-8") as f:
            return AvroSerializer(registry, f.read(), conf=conf)

    # murmur2_random is the partitioner that places keys as Java clients do.
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(f"{msg.topic()} {msg.key()!r}: {err}")

    def send(topic, ser, key, value):
        data = ser(value, SerializationContext(topic, MessageField.VALUE))
        while True:
            try:
                producer.produce(topic, key=key, value=data, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)

    topics = plan["topics"]
    customer = serializer(plan["schemas"]["Customer"])
    for c in plan["customers"]:
        send(topics["customers"], customer, struct.pack(">q", c["id"]), c)
    # Customers first: an order whose customer is not yet in the table waits in the email
    # service, which is allowed, but the test reads the level topics once.
    producer.flush(30)
    for batch in plan["orders"]:
        order = serializer(batch["schema"])
        for o in batch["records"]:
            send(topics["orders"], order, o["id"].encode("utf-8"), o)
    payment = serializer(plan["schemas"]["Payment"])
    for p in plan["payments"]:
        send(topics["payments"], payment, p["id"].encode("utf-8"), p)
    left = producer.flush(60)
    if errors or left:
        print("\n".join(errors[:10]) or f"{left} records not delivered", file=sys.stderr)
        return 1
    for subject in sorted(registry.get_subjects()):
        for version in registry.get_versions(subject):
            registered = registry.get_version(subject, version)
            print(json.dumps({"subject": subject, "id": registered.schema_id, "version": registered.version}))
    return 0


def read(bootstrap, registry_url, prefix, timeout, wanted):
    registry = SchemaRegistryClient({"url": registry_url})
    deserializer = AvroDeserializer(registry, conf={"subject.name.strategy": subject_strategy(prefix)})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"interop-registry-{time.time_ns()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    assignment = []
    for topic in wanted:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        assignment += [TopicPartition(topic, p, 0) for p in meta.partitions]
    consumer.assign(assignment)
    got = {topic: 0 for topic in wanted}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and any(got[t] < n for t, n in wanted.items()):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                raise KafkaException(msg.error())
            data = msg.value()
            value = deserializer(data, SerializationContext(msg.topic(), MessageField.VALUE))
            got[msg.topic()] += 1
            print(json.dumps({"topic": msg.topic(), "partition": msg.partition(), "key": msg.key().hex(),
                              "schemaId": struct.unpack(">I", data[1:5])[0], "value": value},
                             ensure_ascii=False))
    finally:
        consumer.close()
    return 0


def main():
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "produce":
        return produce(args[1], args[2], args[3])
    if len(args) >= 6 and args[0] == "read":
        wanted = {}
        for spec in args[5:]:
            topic, _, count = spec.rpartition("=")
            wanted[topic] = int(count)
        return read(args[1], args[2], args[3], float(args[4]), wanted)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
