package platform

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// ErrBadLength is the kind of DecodeError for fixed-size plain values of the wrong size.
var ErrBadLength = fmt.Errorf("%w: wrong length for a fixed-size value", ErrShortRecord)

// StockCodec is the value format of `warehouse-inventory`: a 4-byte big-endian int, as written
// by Java's IntegerSerializer. It is a goka.Codec over int32.
type StockCodec struct{}

// Encode takes an int32 or an int that fits in one.
func (StockCodec) Encode(value any) ([]byte, error) {
	var n int32
	switch v := value.(type) {
	case int32:
		n = v
	case int:
		if int(int32(v)) != v {
			return nil, fmt.Errorf("encode stock: %d does not fit in an int32", v)
		}
		n = int32(v)
	default:
		return nil, fmt.Errorf("encode stock: unsupported value type %T", value)
	}
	return binary.BigEndian.AppendUint32(nil, uint32(n)), nil
}

// Decode returns an int32.
func (StockCodec) Decode(data []byte) (any, error) { return DecodeStock(data) }

// DecodeStock reads a 4-byte big-endian int.
func DecodeStock(data []byte) (int32, error) {
	if len(data) != 4 {
		return 0, &DecodeError{Kind: ErrBadLength, Record: "stock count", SchemaID: -1,
			Cause: fmt.Errorf("%d bytes, want 4", len(data))}
	}
	return int32(binary.BigEndian.Uint32(data)), nil
}

// CustomerKey is the key format of `customers`: the id as an 8-byte big-endian long (Java's
// LongSerializer). goka keys are strings, so the bytes travel as a string.
func CustomerKey(id int64) string {
	return string(binary.BigEndian.AppendUint64(nil, uint64(id)))
}

// ParseCustomerKey reads a key written by CustomerKey.
func ParseCustomerKey(key string) (int64, error) {
	if len(key) != 8 {
		return 0, &DecodeError{Kind: ErrBadLength, Record: "customer key", SchemaID: -1,
			Cause: fmt.Errorf("%d bytes, want 8", len(key))}
	}
	return int64(binary.BigEndian.Uint64([]byte(key))), nil
}

// JSONCodec encodes internal records that are written rarely and read by people and other
// tools as they are: the Orders membership table. Per-order state and loopback records use
// StateCodec, which is several times smaller. Decode returns a *T.
type JSONCodec[T any] struct{}

// Encode takes T or *T.
func (JSONCodec[T]) Encode(value any) ([]byte, error) { return encodeOwn[T](value, json.Marshal) }

// encodeOwn encodes value with marshal when it is a T or *T: a goka codec's Encode gets any.
func encodeOwn[T any](value any, marshal func(any) ([]byte, error)) ([]byte, error) {
	switch value.(type) {
	case T, *T:
		b, err := marshal(value)
		if err != nil {
			return nil, fmt.Errorf("encode %T: %w", value, err)
		}
		return b, nil
	default:
		var zero T
		return nil, fmt.Errorf("encode %T: unsupported value type %T", zero, value)
	}
}

// validated refuses a decoded value whose type has a Validate() error method that fails
// (ErrInvalidValue), so it is dead-lettered rather than acted on.
func validated[T any](v T) error {
	if validator, ok := any(v).(interface{ Validate() error }); ok {
		if err := validator.Validate(); err != nil {
			return &DecodeError{Kind: ErrInvalidValue, Record: fmt.Sprintf("%T", v), SchemaID: -1, Cause: err}
		}
	}
	return nil
}

// Decode returns a *T.
func (c JSONCodec[T]) Decode(data []byte) (any, error) {
	v, err := c.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Unmarshal decodes a T for platform.Decode. When T has a Validate() error method, a value
// that decodes but fails it is refused too (ErrInvalidValue), so it is dead-lettered rather
// than acted on.
func (JSONCodec[T]) Unmarshal(data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, &DecodeError{Kind: ErrCorruptJSON, Record: fmt.Sprintf("%T", v), SchemaID: -1, Cause: err}
	}
	return v, validated(v)
}
