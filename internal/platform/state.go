package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// StateCodec encodes a service's private state (group-table values) and loopback records as
// CBOR (RFC 8949). These never leave the ecosystem's internal topics, so they need no schema
// registry; what they need is to be small and cheap, because every order rewrites several of
// them: JSON with field names spelled out was three to five times the size (docs/benchmarks.md,
// issue 14). Struct fields carry `cbor:"N,keyasint,omitempty"` tags, so a field is one byte of
// key and a new field is a new number; a number is never reused for another meaning.
//
// Values written by earlier versions are JSON objects, and a CBOR value of ours is never a
// text string, so a first byte '{' (a 27-byte text string in CBOR) selects the JSON decoder:
// state and in-flight loop records survive the upgrade. Decode returns a *T.
//
// A strict codec (for loopback records) refuses fields this version does not know: such a
// record was not written by us, and acting on part of it would be a guess. State is decoded
// leniently, so that a rolled-back version can still read what a newer one wrote.
type StateCodec[T any] struct {
	Strict bool
}

var (
	stateEnc = mustEncMode(cbor.EncOptions{
		ShortestFloat: cbor.ShortestFloat16,
		// Keys and strings are written as Go holds them; decoding takes them back byte for
		// byte (UTF8DecodeInvalid), so an id with invalid UTF-8 keeps its identity, where
		// JSON replaced those bytes with U+FFFD and so merged distinct ids.
		String: cbor.StringToTextString,
	})
	stateDecOptions = cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
		TagsMd:      cbor.TagsForbidden,
		UTF8:        cbor.UTF8DecodeInvalid,
		// A value is far below Kafka's record limit; bounds keep a hostile record from
		// costing more than its own size would.
		MaxNestedLevels:  16,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 16,
	}
	stateDec       = mustDecMode(stateDecOptions)
	strictStateDec = mustDecMode(func() cbor.DecOptions {
		o := stateDecOptions
		o.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
		return o
	}())
)

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(fmt.Sprintf("platform: CBOR encoding options: %v", err))
	}
	return m
}

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(fmt.Sprintf("platform: CBOR decoding options: %v", err))
	}
	return m
}

// Encode takes T or *T.
func (StateCodec[T]) Encode(value any) ([]byte, error) { return encodeOwn[T](value, stateEnc.Marshal) }

// Decode returns a *T.
func (c StateCodec[T]) Decode(data []byte) (any, error) {
	v, err := c.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// Unmarshal decodes a T for platform.Decode. When T has a Validate() error method, a value
// that decodes but fails it is refused too (ErrInvalidValue), so it is dead-lettered rather
// than acted on.
func (c StateCodec[T]) Unmarshal(data []byte) (T, error) {
	var v T
	if len(data) > 0 && data[0] == '{' {
		if err := c.unmarshalJSON(data, &v); err != nil {
			return v, &DecodeError{Kind: ErrCorruptJSON, Record: fmt.Sprintf("%T", v), SchemaID: -1, Cause: err}
		}
	} else {
		dec := stateDec
		if c.Strict {
			dec = strictStateDec
		}
		if err := dec.Unmarshal(data, &v); err != nil {
			return v, &DecodeError{Kind: ErrCorruptCBOR, Record: fmt.Sprintf("%T", v), SchemaID: -1, Cause: err}
		}
	}
	return v, validated(v)
}

// unmarshalJSON reads a value an earlier version wrote; strict as the CBOR path is.
func (c StateCodec[T]) unmarshalJSON(data []byte, v *T) error {
	if !c.Strict {
		return json.Unmarshal(data, v)
	}
	return strictJSON(data, v)
}

// strictJSON decodes one JSON value, refusing fields T does not have and anything after it.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// More() is false before a stray '}' or ']'; only the end of input will do.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}

// StateForDisplay decodes a StateCodec value of unknown type into plain maps, slices and
// scalars that encoding/json renders, for inspection tools: a field's key is its number as a
// string (the `cbor:"N,..."` tag of its struct), a byte string is base64 as JSON has it. It
// refuses bytes that are not one CBOR map, the form every StateCodec value has.
func StateForDisplay(data []byte) (any, error) {
	if len(data) == 0 || data[0]>>5 != 5 { // major type 5: map
		return nil, &DecodeError{Kind: ErrCorruptCBOR, Record: "state", SchemaID: -1, Cause: errors.New("not a CBOR map")}
	}
	var v any
	if err := stateDec.Unmarshal(data, &v); err != nil {
		return nil, &DecodeError{Kind: ErrCorruptCBOR, Record: "state", SchemaID: -1, Cause: err}
	}
	return displayable(v), nil
}

// displayable turns CBOR's map[any]any into map[string]any, all the way down. A field number
// shows as its digits; any other key as Go quotes it when it could be taken for a number, so
// that the key 1 and the text "1" stay two entries.
func displayable(v any) any {
	switch v := v.(type) {
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			var name string
			switch k := k.(type) {
			case uint64, int64:
				name = fmt.Sprint(k)
			case string:
				name = k
				if _, err := strconv.ParseFloat(k, 64); err == nil || strings.HasPrefix(k, `"`) {
					name = strconv.Quote(k)
				}
			default:
				name = fmt.Sprintf("%#v", k)
			}
			out[name] = displayable(e)
		}
		return out
	case big.Int:
		return v.String()
	case *big.Int:
		return v.String()
	case []any:
		for i, e := range v {
			v[i] = displayable(e)
		}
		return v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprint(v) // JSON has no number for these
		}
		return v
	default:
		return v
	}
}
