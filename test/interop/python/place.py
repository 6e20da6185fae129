"""The Python peer of the interoperability suite: Confluent's confluent-kafka (librdkafka).

    python place.py <bootstrap> <topic> <keys-file> <partitioner>

Produces one record per key (keys-file: one key per line, hex of its UTF-8 bytes) with the
given librdkafka partitioner and prints {"key": hex, "partition": n} per key, in order.
librdkafka's own default, consistent_random (CRC32), places keys unlike Java clients;
murmur2_random is the one that matches them, and what a Python service beside Java ones must
configure.
"""

import json
import sys

from confluent_kafka import Producer


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, topic, keys_file, partitioner = sys.argv[1:]
    with open(keys_file, encoding="ascii") as f:
        keys = [line.strip() for line in f if line.strip()]
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": partitioner, "acks": "all", "linger.ms": 5})
    placed = [None] * len(keys)
    errors = []

    def delivered(i):
        def report(err, msg):
            if err is not None:
                errors.append(f"key {keys[i]}: {err}")
            else:
                placed[i] = msg.partition()
        return report

    for i, k in enumerate(keys):
        while True:
            try:
                producer.produce(topic, key=bytes.fromhex(k), value=b"x", on_delivery=delivered(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    if errors or any(p is None for p in placed):
        print("\n".join(errors[:10]) or "some records were not delivered", file=sys.stderr)
        return 1
    for k, p in zip(keys, placed):
        print(json.dumps({"key": k, "partition": p}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
