// The Java peer of the interoperability suite: Apache Kafka's own producer and consumer and
// Apache Avro, doing what a Java service of the reference would do. Run with the source
// launcher (java -cp <classpath> Interop.java <command> ...); it prints one JSON line per
// result on stdout, for the Go test to compare.
//
//   place <bootstrap> <topic> <keys-file>
//       Produces one record per key (keys-file: one key per line, hex of its UTF-8 bytes) with
//       the client's default partitioner and prints {"key":hex,"partition":n} for each.
//   read <bootstrap> <topic> <schema.avsc>
//       Reads the topic from the start to its end offsets, strips the Confluent header (magic
//       byte 0, 4-byte schema id) and decodes each value with Avro's GenericDatumReader and
//       the given schema; prints {"partition":n,"offset":o,"key":k,"schemaId":id,"value":{...}}.

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.JsonEncoder;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Interop {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Interop place|read <bootstrap> <topic> <file>");
            System.exit(2);
        }
        switch (args[0]) {
            case "place" -> place(args[1], args[2], Path.of(args[3]));
            case "read" -> read(args[1], args[2], new File(args[3]));
            default -> {
                System.err.println("unknown command " + args[0]);
                System.exit(2);
            }
        }
    }

    static void place(String bootstrap, String topic, Path keysFile) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        HexFormat hex = HexFormat.of();
        List<String> keys = Files.readAllLines(keysFile, StandardCharsets.US_ASCII);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (String k : keys) {
                // No partition given: the default partitioner places keyed records by murmur2.
                sent.add(producer.send(new ProducerRecord<>(topic, hex.parseHex(k), "x".getBytes(StandardCharsets.UTF_8))));
            }
            for (int i = 0; i < keys.size(); i++) {
                System.out.println("{\"key\":\"" + keys.get(i) + "\",\"partition\":" + sent.get(i).get().partition() + "}");
            }
        }
    }

    static void read(String bootstrap, String topic, File schemaFile) throws Exception {
        Schema schema = new Schema.Parser().parse(schemaFile);
        GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(schema);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo pi : consumer.partitionsFor(topic)) {
                parts.add(new TopicPartition(topic, pi.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> ends = new HashMap<>(consumer.endOffsets(parts));
            ends.values().removeIf(end -> end == 0);
            long deadline = System.currentTimeMillis() + 60_000;
            while (!ends.isEmpty()) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("not at the end offsets after 60 s: " + ends);
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    Long end = ends.get(tp);
                    if (end == null || r.offset() >= end) {
                        continue;
                    }
                    ByteBuffer b = ByteBuffer.wrap(r.value());
                    if (b.remaining() < 5 || b.get() != 0) {
                        throw new IllegalStateException("record " + tp + "@" + r.offset() + " has no Confluent header");
                    }
                    int schemaId = b.getInt();
                    GenericRecord value = reader.read(null, DecoderFactory.get().binaryDecoder(r.value(), 5, r.value().length - 5, null));
                    System.out.println("{\"partition\":" + r.partition() + ",\"offset\":" + r.offset()
                            + ",\"key\":\"" + HexFormat.of().formatHex(r.key()) + "\",\"schemaId\":" + schemaId
                            + ",\"value\":" + toJson(schema, value) + "}");
                    if (r.offset() + 1 >= end) {
                        ends.remove(tp);
                    }
                }
            }
        }
    }

    // Avro's own JSON encoding of the record: enums as their symbols, doubles as numbers.
    static String toJson(Schema schema, GenericRecord value) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        JsonEncoder enc = EncoderFactory.get().jsonEncoder(schema, out);
        new GenericDatumWriter<GenericRecord>(schema).write(value, enc);
        enc.flush();
        return out.toString(StandardCharsets.UTF_8);
    }
}
