package platform

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/linkedin/goavro/v2"
	"github.com/ordersys/ecosystem/internal/domain"
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

func init() {
	// No shipped schema has an array or a map, but a foreign writer's may, and goavro decodes
	// all of a record, the fields the reader skips too. Its default limits (2^31 items and
	// bytes per block) let a few bytes of input allocate gigabytes.
	goavro.MaxBlockCount = 1 << 16
	goavro.MaxBlockSize = 1 << 20
}

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
	if rest, ok := strings.CutPrefix(err.Error(), kind.Error()+": "); ok {
		return errors.New(rest)
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
