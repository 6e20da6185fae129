package platform

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/ordersys/ecosystem/schemas"
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
	// failure says why the registry's schema could not be used at all (kind
	// ErrUnknownSchemaID); the rest is zero then.
	failure error
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
		subjects = append(subjects, names.Prefix+avroNamespace+"."+record)
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
		if w.failure != nil {
			return writerSchema{}, w.failure
		}
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
			if len(s.missing) >= maxForeignSchemas {
				clear(s.missing)
			}
			s.missing[id] = true
			s.mu.Unlock()
			return writerSchema{}, ErrUnknownSchemaID
		}
		return writerSchema{}, fmt.Errorf("%w: registry lookup: %v", ErrUnknownSchemaID, err)
	}
	w = s.foreignWriter(text)
	s.mu.Lock()
	if len(s.byID) >= len(s.own)+maxForeignSchemas {
		s.forgetOneForeign()
	}
	s.byID[id] = w
	s.mu.Unlock()
	if w.failure != nil {
		return writerSchema{}, w.failure
	}
	return w, nil
}

// maxForeignSchemas bounds the writer schemas fetched from the registry that are kept; a
// producer registering schema after schema cannot grow the cache past it (one is forgotten and
// fetched again if it is seen again).
const maxForeignSchemas = 4096

// forgetOneForeign drops one cached writer schema that is not one of this binary's own.
func (s *SchemaSet) forgetOneForeign() {
	for id, w := range s.byID {
		if w.failure != nil || w.codec != s.own[w.record] {
			delete(s.byID, id)
			return
		}
	}
}

// foreignWriter builds the writer schema of a registry's schema text. Whatever goes wrong is
// kept as the schema's failure, so that a schema that cannot be read is fetched and parsed
// once, not once per record; a panic of the Avro library on a hostile schema is one of them.
func (s *SchemaSet) foreignWriter(text string) (w writerSchema) {
	defer func() {
		if r := recover(); r != nil {
			w = writerSchema{failure: fmt.Errorf("%w: registry schema refused by the Avro library: %v", ErrUnknownSchemaID, r)}
		}
	}()
	clean, parsed, err := prepareWriter(text)
	if err != nil {
		return writerSchema{failure: fmt.Errorf("%w: registry schema does not parse: %v", ErrUnknownSchemaID, err)}
	}
	codec, err := goavro.NewCodec(clean)
	if err != nil {
		return writerSchema{failure: fmt.Errorf("%w: registry schema does not parse: %v", ErrUnknownSchemaID, err)}
	}
	name := codec.CanonicalSchema()
	w = writerSchema{record: recordNameOf(name), codec: codec}
	if own, ok := s.own[w.record]; ok && own.CanonicalSchema() != name {
		readerText, _ := SchemaText(w.record)
		w.resolve, w.unresolvable = compileResolution(parsed, readerText)
	}
	return w
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
