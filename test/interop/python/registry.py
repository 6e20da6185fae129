"""The schema-registry peer of the interoperability suite: Confluent's confluent-kafka with its
schema_registry client, AvroSerializer and AvroDeserializer, as a Python service would use them.

    python registry.py produce <bootstrap> <registry-url> <plan.json>
    python registry.py read <bootstrap> <registry-url> <timeout-seconds> <topic>=<count> ...

produce writes what plan.json lists, in this order: customers (key: the id as an 8-byte
big-endian long, as Kafka's LongSerializer writes it), orders with each schema the plan gives
(the first is the project's Order, later ones newer versions the serializer registers), then
payments (key: the payment id). Every value goes through AvroSerializer with automatic
registration and the default subject naming (TopicNameStrategy, "<topic>-value", the subjects
the services register too), so each newer Order schema becomes a new version of the subject
the services registered. It prints one line per version of every subject in the registry:
{"subject", "id", "version"}.

read consumes each topic from the beginning until it holds at least <count> records, then on
to the end of every partition as it stands a second later (so that records beyond the count
are seen too), and prints one line per record: {"topic", "partition", "key" (hex),
"schemaId", "value"}, the value decoded by AvroDeserializer with the writer's schema fetched
from the registry by the id in its Confluent header. It exits 1, saying how many records it
got, if the counts are not reached within the timeout.
"""

import json
import struct
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def produce(bootstrap, registry_url, plan_path):
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    registry = SchemaRegistryClient({"url": registry_url})
    conf = {"auto.register.schemas": True}

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


def read(bootstrap, registry_url, timeout, wanted):
    registry = SchemaRegistryClient({"url": registry_url})
    deserializer = AvroDeserializer(registry)
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
    position = {}  # (topic, partition) -> next offset
    deadline = time.monotonic() + timeout
    ends = None  # (topic, partition) -> high watermark, once the counts are reached

    def done():
        if ends is None:
            return False
        return all(position.get(tp, 0) >= end for tp, end in ends.items())

    try:
        while not done():
            if ends is None and all(got[t] >= n for t, n in wanted.items()):
                time.sleep(1)  # records still on their way are written by now
                ends = latest_offsets(bootstrap, assignment)
                continue
            if time.monotonic() > deadline:
                print(f"timed out after {timeout} s with " +
                      ", ".join(f"{t}: {got[t]} of {n}" for t, n in wanted.items()), file=sys.stderr)
                return 1
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                raise KafkaException(msg.error())
            position[(msg.topic(), msg.partition())] = msg.offset() + 1
            data = msg.value()
            value = deserializer(data, SerializationContext(msg.topic(), MessageField.VALUE))
            got[msg.topic()] += 1
            print(json.dumps({"topic": msg.topic(), "partition": msg.partition(), "key": msg.key().hex(),
                              "schemaId": struct.unpack(">I", data[1:5])[0], "value": value},
                             ensure_ascii=False))
    finally:
        consumer.close()
    return 0


def latest_offsets(bootstrap, partitions):
    """The end offset of every partition, in one request per broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10)
    return {(tp.topic, tp.partition): f.result(timeout=15).offset for tp, f in futures.items()}


def main():
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "produce":
        return produce(args[1], args[2], args[3])
    if len(args) >= 5 and args[0] == "read":
        wanted = {}
        for spec in args[4:]:
            topic, _, count = spec.rpartition("=")
            wanted[topic] = int(count)
        return read(args[1], args[2], float(args[3]), wanted)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
