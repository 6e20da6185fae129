package platform

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/ordersys/ecosystem/internal/domain"
	"github.com/ordersys/ecosystem/schemas"
)

// Decoding errors. A *DecodeError matches exactly one of these kinds with errors.Is.
var (
	ErrShortRecord     = errors.New("record too short")
	ErrUnknownMagic    = errors.New("unknown magic byte")
	ErrUnknownSchemaID = errors.New("unknown schema id")
	ErrWrongSchema     = errors.New("schema id belongs to another record type")
	// ErrUnresolvableSchema: the writer's schema is of the right record but Avro's resolution
	// rules cannot read it as this binary's (a field of a type that does not promote, a reader
	// field the writer lacks that has no default).
	ErrUnresolvableSchema = errors.New("writer schema does not resolve to the reader's")
	ErrCorruptAvro        = errors.New("corrupt Avro body")
	ErrInvalidValue       = errors.New("value not representable in the domain")
	ErrCorruptJSON        = errors.New("corrupt JSON body")
	ErrCorruptCBOR        = errors.New("corrupt CBOR body")
)

// DecodeError says why bytes could not be decoded into a record: Kind is one of the Err*
// values above, Cause the underlying error if any.
type DecodeError struct {
	Kind     error
	Record   string // the record type that was expected
	SchemaID int    // -1 when the header could not be read
	Cause    error
}

func (e *DecodeError) Error() string {
	msg := fmt.Sprintf("decode %s: %v", e.Record, e.Kind)
	if e.SchemaID >= 0 {
		msg += fmt.Sprintf(" (schema id %d)", e.SchemaID)
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap lets errors.Is match both the kind and the cause.
func (e *DecodeError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// confluentMagic is the first byte of the Confluent wire format: magic, 4-byte big-endian
// schema id, Avro binary body.
const (
	confluentMagic      = 0
	confluentHeaderSize = 5
)

// StaticSchemaIDs is the documented table of schema ids written when no schema registry is
// configured. Every binary carries the same schemas, so every binary agrees on these ids.
// They are only meaningful inside this ecosystem; with a registry the registry's ids are used.
var StaticSchemaIDs = map[string]int{
	"Order":           1,
	"OrderValidation": 2,
	"Payment":         3,
	"Customer":        4,
	"OrderEnriched":   5,
	"OrderValue":      6,
}

// schemaFiles maps each record's short name to its file under schemas/.
var schemaFiles = map[string]string{
	"Order":           "order.avsc",
	"OrderValidation": "order_validation.avsc",
	"Payment":         "payment.avsc",
	"Customer":        "customer.avsc",
	"OrderEnriched":   "order_enriched.avsc",
	"OrderValue":      "order_value.avsc",
}

// avroNamespace is the namespace of every record, kept from the reference system.
const avroNamespace = "io.confluent.examples.streams.avro.microservices"

// SchemaText returns the shipped schema of a record by its short name ("Order").
func SchemaText(record string) (string, error) {
	file, ok := schemaFiles[record]
	if !ok {
		return "", fmt.Errorf("schema text: no record %q", record)
	}
	b, err := fs.ReadFile(schemas.Files, file)
	if err != nil {
		return "", fmt.Errorf("schema text: read %s: %w", file, err)
	}
	return string(b), nil
}

// RecordNames lists the records with a shipped schema, sorted.
func RecordNames() []string {
	names := make([]string, 0, len(schemaFiles))
	for n := range schemaFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// writerSchema is one schema that bytes on a topic may have been written with.
type writerSchema struct {
	record string // short record name it describes
	codec  *goavro.Codec
	// resolve turns a record of another producer's schema into this binary's reader form
	// (avro_resolve.go); nil when the writer schema is the shipped one.
	resolve resolution
	// unresolvable says why records of this schema cannot be read at all.
	unresolvable error
}

// SchemaSet resolves schema ids: which id to write for each record, and which schema a read id
// stands for. It is safe for concurrent use.
type SchemaSet struct {
	writeIDs map[string]int           // record → id written
	own      map[string]*goavro.Codec // record → our shipped schema

	mu      sync.RWMutex
	byID    map[int]writerSchema
	lookup  func(ctx context.Context, id int) (string, error) // nil: no registry
	missing map[int]bool                                      // ids the registry said it does not know
}

// NewStaticSchemaSet returns the schema set of registry-less mode: ids from StaticSchemaIDs.
func NewStaticSchemaSet() (*SchemaSet, error) {
	s, err := newSchemaSet()
	if err != nil {
		return nil, err
	}
	for record, id := range StaticSchemaIDs {
		s.writeIDs[record] = id
		s.byID[id] = writerSchema{record: record, codec: s.own[record]}
	}
	return s, nil
}

// NewRegistrySchemaSet registers every shipped schema with the registry at url, under the
// subjects the topics use (TopicNameStrategy, "<topic>-value" with the topic's full name, so
// ecosystems under different prefixes keep subjects of their own, as a Confluent client
// writing to those topics names them; records on no public topic under their full record
// name), and returns a set that writes the registry's ids and looks up unknown ids there
// (cached), so records written by other producers with other schema versions decode too.
func NewRegistrySchemaSet(ctx context.Context, url string, names Names, opts ...sr.ClientOpt) (*SchemaSet, error) {
	client, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(url)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("schema registry: create client: %w", err)
	}
	s, err := newSchemaSet()
	if err != nil {
		return nil, err
	}
	for _, record := range RecordNames() {
		text, _ := SchemaText(record)
		subjects := SubjectsFor(names, record)
		for _, subject := range subjects {
			ss, err := client.CreateSchema(ctx, subject, sr.Schema{Schema: text, Type: sr.TypeAvro})
			if err != nil {
				return nil, fmt.Errorf("schema registry: register %s under %s: %w", record, subject, err)
			}
			s.writeIDs[record] = ss.ID
			s.byID[ss.ID] = writerSchema{record: record, codec: s.own[record]}
		}
	}
	s.lookup = func(ctx context.Context, id int) (string, error) {
		sch, err := client.SchemaByID(ctx, id)
		if err != nil {
			return "", err
		}
		return sch.Schema, nil
	}
	return s, nil
}

func newSchemaSet() (*SchemaSet, error) {
	s := &SchemaSet{
		writeIDs: map[string]int{},
		own:      map[string]*goavro.Codec{},
		byID:     map[int]writerSchema{},
		missing:  map[int]bool{},
	}
	for _, record := range RecordNames() {
		text, err := SchemaText(record)
		if err != nil {
			return nil, err
		}
		codec, err := goavro.NewCodec(text)
		if err != nil {
			return nil, fmt.Errorf("schema set: parse %s: %w", record, err)
		}
		s.own[record] = codec
	}
	return s, nil
}

// SubjectsFor lists the registry subjects a record is registered under, with names' prefix.
func SubjectsFor(names Names, record string) []string {
	var subjects []string
	for _, t := range PublicTopics() {
		if t.Record == record {
			subjects = append(subjects, names.Topic(t.Name)+"-value")
		}
	}
	if len(subjects) == 0 {
		subjects = append(subjects, avroNamespace+"."+record)
	}
	return subjects
}

// WriteID returns the schema id written in front of records of that type.
func (s *SchemaSet) WriteID(record string) int { return s.writeIDs[record] }

// writer finds the schema bytes with this id were written with.
func (s *SchemaSet) writer(id int) (writerSchema, error) {
	s.mu.RLock()
	w, ok := s.byID[id]
	known404 := s.missing[id]
	s.mu.RUnlock()
	if ok {
		return w, nil
	}
	if s.lookup == nil || known404 {
		return writerSchema{}, ErrUnknownSchemaID
	}
	// Bounded by the registry client's own timeout; decoding has no context of its own.
	text, err := s.lookup(context.Background(), id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == 404 {
			s.mu.Lock()
			s.missing[id] = true
			s.mu.Unlock()
			return writerSchema{}, ErrUnknownSchemaID
		}
		return writerSchema{}, fmt.Errorf("%w: registry lookup: %v", ErrUnknownSchemaID, err)
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return writerSchema{}, fmt.Errorf("%w: registry schema does not parse: %v", ErrUnknownSchemaID, err)
	}
	name := codec.CanonicalSchema()
	record := recordNameOf(name)
	w = writerSchema{record: record, codec: codec}
	if own, ok := s.own[record]; ok && own.CanonicalSchema() != name {
		readerText, _ := SchemaText(record)
		w.resolve, w.unresolvable = compileResolution(text, readerText)
	}
	s.mu.Lock()
	s.byID[id] = w
	s.mu.Unlock()
	return w, nil
}

// recordNameOf extracts the short record name from a canonical schema text.
func recordNameOf(schema string) string {
	const key = `"name":"`
	i := strings.Index(schema, key)
	if i < 0 {
		return ""
	}
	rest := schema[i+len(key):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	full := rest[:j]
	return full[strings.LastIndexByte(full, '.')+1:]
}

// AvroCodec encodes and decodes one record type in the Confluent wire format. It satisfies
// goka.Codec (values as T) and offers typed Marshal/Unmarshal for franz-go code.
type AvroCodec[T any] struct {
	record     string
	schemas    *SchemaSet
	toNative   func(T) map[string]any
	fromNative func(map[string]any) (T, error)
}

// Marshal encodes v with the record's write id.
func (c *AvroCodec[T]) Marshal(v T) ([]byte, error) {
	id := c.schemas.writeIDs[c.record]
	buf := make([]byte, confluentHeaderSize, 64)
	buf[0] = confluentMagic
	binary.BigEndian.PutUint32(buf[1:], uint32(id))
	out, err := c.schemas.own[c.record].BinaryFromNative(buf, c.toNative(v))
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.record, err)
	}
	return out, nil
}

// Unmarshal decodes Confluent-framed Avro bytes; errors are *DecodeError.
func (c *AvroCodec[T]) Unmarshal(b []byte) (T, error) {
	var zero T
	fail := func(kind error, id int, cause error) (T, error) {
		return zero, &DecodeError{Kind: kind, Record: c.record, SchemaID: id, Cause: cause}
	}
	if len(b) < confluentHeaderSize {
		return fail(ErrShortRecord, -1, fmt.Errorf("%d bytes, need at least %d", len(b), confluentHeaderSize))
	}
	if b[0] != confluentMagic {
		return fail(ErrUnknownMagic, -1, fmt.Errorf("magic byte %d, want %d", b[0], confluentMagic))
	}
	id := int(binary.BigEndian.Uint32(b[1:confluentHeaderSize]))
	w, err := c.schemas.writer(id)
	if err != nil {
		return fail(ErrUnknownSchemaID, id, unwrapKind(err, ErrUnknownSchemaID))
	}
	if w.record != c.record {
		return fail(ErrWrongSchema, id, fmt.Errorf("id %d is %s", id, w.record))
	}
	if w.unresolvable != nil {
		return fail(ErrUnresolvableSchema, id, w.unresolvable)
	}
	native, rest, err := w.codec.NativeFromBinary(b[confluentHeaderSize:])
	if err != nil {
		return fail(ErrCorruptAvro, id, err)
	}
	if len(rest) != 0 {
		return fail(ErrCorruptAvro, id, fmt.Errorf("%d trailing bytes", len(rest)))
	}
	if w.resolve != nil {
		if native, err = w.resolve(native); err != nil {
			return fail(ErrInvalidValue, id, err)
		}
	}
	m, ok := native.(map[string]any)
	if !ok {
		return fail(ErrCorruptAvro, id, fmt.Errorf("body is %T, not a record", native))
	}
	// Avro strings are UTF-8; goavro passes any bytes through. An id that is not UTF-8 would be
	// an id other clients cannot name (Java's decoder replaces the bytes, JSON tools too), so it
	// is refused here rather than kept as a key in the services' state.
	if field, bad := notUTF8(m); bad {
		return fail(ErrCorruptAvro, id, fmt.Errorf("field %s is not UTF-8, as Avro strings must be", field))
	}
	v, err := c.fromNative(m)
	if err != nil {
		return fail(ErrInvalidValue, id, err)
	}
	return v, nil
}

// unwrapKind drops the kind sentinel from err so that it is not reported twice.
func unwrapKind(err, kind error) error {
	if err == kind {
		return nil
	}
	return err
}

// Encode implements goka.Codec; it takes T or *T.
func (c *AvroCodec[T]) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case T:
		return c.Marshal(v)
	case *T:
		if v == nil {
			return nil, fmt.Errorf("encode %s: nil value", c.record)
		}
		return c.Marshal(*v)
	default:
		return nil, fmt.Errorf("encode %s: unsupported value type %T", c.record, value)
	}
}

// Decode implements goka.Codec; it returns a T.
func (c *AvroCodec[T]) Decode(data []byte) (any, error) {
	v, err := c.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Record is the short name of the record type this codec handles.
func (c *AvroCodec[T]) Record() string { return c.record }

// Codecs holds one codec per record type, all sharing one SchemaSet.
type Codecs struct {
	Schemas         *SchemaSet
	Order           *AvroCodec[domain.Order]
	OrderValidation *AvroCodec[domain.OrderValidation]
	Payment         *AvroCodec[domain.Payment]
	Customer        *AvroCodec[domain.Customer]
	OrderEnriched   *AvroCodec[domain.OrderEnriched]
	OrderValue      *AvroCodec[domain.OrderValue]
}

// NewCodecs builds the codecs over a schema set.
func NewCodecs(s *SchemaSet) *Codecs {
	return &Codecs{
		Schemas:         s,
		Order:           &AvroCodec[domain.Order]{"Order", s, orderToNative, orderFromNative},
		OrderValidation: &AvroCodec[domain.OrderValidation]{"OrderValidation", s, validationToNative, validationFromNative},
		Payment:         &AvroCodec[domain.Payment]{"Payment", s, paymentToNative, paymentFromNative},
		Customer:        &AvroCodec[domain.Customer]{"Customer", s, customerToNative, customerFromNative},
		OrderEnriched:   &AvroCodec[domain.OrderEnriched]{"OrderEnriched", s, enrichedToNative, enrichedFromNative},
		OrderValue:      &AvroCodec[domain.OrderValue]{"OrderValue", s, orderValueToNative, orderValueFromNative},
	}
}

var (
	staticCodecsOnce sync.Once
	staticCodecs     *Codecs
)

// StaticCodecs returns the process-wide codecs of registry-less mode.
func StaticCodecs() *Codecs {
	staticCodecsOnce.Do(func() {
		s, err := NewStaticSchemaSet()
		if err != nil {
			// The schemas are compiled into the binary; failing to parse them is a build defect.
			panic(err)
		}
		staticCodecs = NewCodecs(s)
	})
	return staticCodecs
}

// CodecsFor returns the static codecs when cfg names no schema registry, else registers the
// schemas with the registry (with cfg's basic auth and CA) and returns codecs using its ids.
func CodecsFor(ctx context.Context, cfg Config) (*Codecs, error) {
	if cfg.SchemaRegistryURL == "" {
		return StaticCodecs(), nil
	}
	s, err := NewRegistrySchemaSet(ctx, cfg.SchemaRegistryURL, cfg.Names(), cfg.Security.registryOptions()...)
	if err != nil {
		return nil, err
	}
	return NewCodecs(s), nil
}

// notUTF8 finds a string in a decoded Avro value that is not valid UTF-8, and names its field.
func notUTF8(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return "", !utf8.ValidString(v)
	case map[string]any:
		for k, e := range v {
			if field, bad := notUTF8(e); bad {
				if field == "" {
					return k, true
				}
				return k + "." + field, true
			}
		}
	case []any:
		for _, e := range v {
			if field, bad := notUTF8(e); bad {
				return field, true
			}
		}
	}
	return "", false
}
