package sampledata

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordersys/ecosystem/internal/platform"
)

// Line is one record as tail prints it: one JSON object per line. Key and Value hold the
// decoded record (a domain struct, a number, a string, JSON as stored) or, when the bytes do
// not decode, Raw with the bytes; Error then says why.
type Line struct {
	Topic     string         `json:"topic"`
	Partition int32          `json:"partition"`
	Offset    int64          `json:"offset"`
	Timestamp time.Time      `json:"timestamp"`
	Key       any            `json:"key"`
	Value     any            `json:"value"`
	Headers   map[string]any `json:"headers,omitempty"`
	Error     string         `json:"error,omitempty"`
}

// Raw carries bytes that are not text or did not decode, base64-encoded, so that nothing is
// lost from the output.
type Raw struct {
	Base64 string `json:"base64"`
}

func raw(b []byte) Raw { return Raw{Base64: base64.StdEncoding.EncodeToString(b)} }

// valueDecoder decodes a value's bytes into something encoding/json renders.
type valueDecoder func([]byte) (any, error)

// Decoder picks a record's key and value formats from its topic, under one set of names.
type Decoder struct {
	names  platform.Names
	values map[string]valueDecoder // unprefixed topic → decoder of its values
	avro   []valueDecoder          // every Avro record type, to recognise Confluent-framed bytes
}

// NewDecoder returns a Decoder for the topics under names, reading Avro with codecs.
func NewDecoder(names platform.Names, codecs *platform.Codecs) *Decoder {
	byRecord := map[string]valueDecoder{
		codecs.Order.Record():           avroDecoder(codecs.Order),
		codecs.OrderValidation.Record(): avroDecoder(codecs.OrderValidation),
		codecs.Payment.Record():         avroDecoder(codecs.Payment),
		codecs.Customer.Record():        avroDecoder(codecs.Customer),
		codecs.OrderEnriched.Record():   avroDecoder(codecs.OrderEnriched),
		codecs.OrderValue.Record():      avroDecoder(codecs.OrderValue),
	}
	d := &Decoder{names: names, values: map[string]valueDecoder{}}
	for _, spec := range platform.AllTopics() {
		if dec, ok := byRecord[spec.Record]; ok {
			d.values[spec.Name] = dec
		}
	}
	d.values[string(platform.TopicWarehouseInventory)] = func(b []byte) (any, error) { return platform.DecodeStock(b) }
	// Dead letters are by definition bytes that did not decode: show them as they are.
	d.values[string(platform.TopicDeadLetters)] = func(b []byte) (any, error) { return raw(b), nil }
	for _, record := range platform.RecordNames() {
		d.avro = append(d.avro, byRecord[record])
	}
	return d
}

func avroDecoder[T any](c platform.Unmarshaler[T]) valueDecoder {
	return func(b []byte) (any, error) { return c.Unmarshal(b) }
}

// Decode renders a record as a Line. It never fails: what does not decode is kept as Raw and
// explained in Line.Error.
func (d *Decoder) Decode(r *kgo.Record) Line {
	line := Line{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC()}
	topic := strings.TrimPrefix(r.Topic, d.names.Prefix)
	var errs []string

	switch {
	case r.Key == nil:
	case topic == string(platform.TopicCustomers):
		id, err := platform.ParseCustomerKey(string(r.Key))
		if err != nil {
			line.Key = raw(r.Key)
			errs = append(errs, "key: "+err.Error())
		} else {
			line.Key = id
		}
	default:
		line.Key = text(r.Key)
	}

	if r.Value != nil { // a nil value is a tombstone and prints as null
		v, err := d.decodeValue(topic, r.Value)
		if err != nil {
			line.Value = raw(r.Value)
			errs = append(errs, "value: "+err.Error())
		} else {
			line.Value = v
		}
	}

	if len(r.Headers) > 0 {
		line.Headers = make(map[string]any, len(r.Headers))
		for _, h := range r.Headers {
			line.Headers[h.Key] = text(h.Value)
		}
	}
	line.Error = strings.Join(errs, "; ")
	return line
}

// decodeValue decodes by the topic's known format. Internal topics hold the services' CBOR
// state and loop records (shown with numbered fields, see platform.StateForDisplay), JSON
// (membership, and state written before CBOR), or Avro orders (the Orders view's table);
// rather than keeping a list of which is which, bytes that are neither JSON nor CBOR are
// tried as Confluent Avro.
func (d *Decoder) decodeValue(topic string, b []byte) (any, error) {
	if dec, ok := d.values[topic]; ok {
		return dec(b)
	}
	if json.Valid(b) {
		return json.RawMessage(b), nil
	}
	if v, err := platform.StateForDisplay(b); err == nil {
		return v, nil
	}
	var first error
	for _, dec := range d.avro {
		v, err := dec(b)
		if err == nil {
			return v, nil
		}
		if errors.Is(err, platform.ErrWrongSchema) {
			continue
		}
		if first == nil {
			first = err
		}
		// Every codec reads the same header, so a bad header fails them all alike.
		if errors.Is(err, platform.ErrShortRecord) || errors.Is(err, platform.ErrUnknownMagic) ||
			errors.Is(err, platform.ErrUnknownSchemaID) {
			break
		}
	}
	if first == nil {
		first = errors.New("no known record type")
	}
	return nil, fmt.Errorf("neither JSON nor Confluent Avro: %w", first)
}

// text renders bytes as a string when they are UTF-8, else as Raw.
func text(b []byte) any {
	if utf8.Valid(b) {
		return string(b)
	}
	return raw(b)
}

// TailOptions says what Tail reads.
type TailOptions struct {
	// Topic is the ecosystem's name of the topic ("orders"); the configured prefix is added.
	Topic string
	// FromBeginning reads the records already there; otherwise only new ones.
	FromBeginning bool
	// Max stops after this many records; 0 reads until ctx ends.
	Max int
}

// Tail prints the records of one topic to out as JSON lines (see Line), until opts.Max records
// were printed or ctx ends; it returns how many it printed. It reads every partition without a
// consumer group, so it commits nothing and disturbs no service.
func Tail(ctx context.Context, cfg platform.Config, codecs *platform.Codecs, opts TailOptions, out io.Writer) (int, error) {
	names := cfg.Names()
	topic := names.Topic(opts.Topic)
	start := kgo.NewOffset().AtEnd()
	if opts.FromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(platform.ClientOptions(cfg, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start))...)
	if err != nil {
		return 0, fmt.Errorf("tail %s: connect: %w", topic, err)
	}
	defer cl.Close()
	// A consumer of a missing topic waits forever; say so instead.
	if err := checkTopic(ctx, kadm.NewClient(cl), topic); err != nil {
		return 0, err
	}

	dec := NewDecoder(names, codecs)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	printed := 0
	for opts.Max == 0 || printed < opts.Max {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return printed, nil
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			fetchErr = errors.Join(fetchErr, fmt.Errorf("tail %s: read partition %d: %w", t, p, err))
		})
		if fetchErr != nil {
			return printed, fetchErr
		}
		for _, r := range fetches.Records() {
			if opts.Max > 0 && printed >= opts.Max {
				break
			}
			if err := enc.Encode(dec.Decode(r)); err != nil {
				return printed, fmt.Errorf("tail %s: write: %w", topic, err)
			}
			printed++
		}
	}
	return printed, nil
}

func checkTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("tail %s: look up topic: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return fmt.Errorf("tail %s: no such topic (provision the topics first, and check --topic-prefix)", topic)
	}
	return nil
}
