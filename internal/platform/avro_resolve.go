package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Avro schema resolution (the specification's "Schema Resolution" section), for records written
// with a schema other than the one this binary ships: another producer's version of a record
// (registry mode). A resolution is compiled once per writer schema and turns goavro's native
// form of the writer's record into the native form of the reader's, by the rules Java's and
// Python's resolving readers follow:
//
//   - fields match by name; a writer field the reader lacks is skipped, a reader field the
//     writer lacks takes the reader's default (no default: the schema is refused);
//   - int → long, float, double; long → float, double; float → double; string ↔ bytes;
//   - a writer union resolves the branch that was written; a written null where the reader
//     has no union is an error for that record, as is a branch that does not resolve;
//   - records and enums match by unqualified name; an enum symbol the reader does not know is
//     an error for that record (the domain's Valid checks refuse it).
//
// A writer schema none of whose possible records can resolve is refused when it is first seen,
// with the reason; everything else fails only for the records that need what cannot resolve.

// resolution converts a writer's native value to the reader's.
type resolution func(v any) (any, error)

// avroSchemas are parsed schema texts: the writer's named types, to follow references.
type avroSchemas struct {
	named map[string]any // full and short name → definition
}

// compileResolution parses both schema texts and compiles the resolution of writer to reader.
func compileResolution(writerText, readerText string) (resolution, error) {
	var w, r any
	if err := json.Unmarshal([]byte(writerText), &w); err != nil {
		return nil, fmt.Errorf("writer schema: %w", err)
	}
	if err := json.Unmarshal([]byte(readerText), &r); err != nil {
		return nil, fmt.Errorf("reader schema: %w", err)
	}
	s := avroSchemas{named: map[string]any{}}
	s.collect(w, "")
	return s.compile(w, r, "")
}

// collect records every named type defined in a schema under its full and short names.
func (s avroSchemas) collect(t any, namespace string) {
	switch t := t.(type) {
	case []any:
		for _, b := range t {
			s.collect(b, namespace)
		}
	case map[string]any:
		kind, _ := t["type"].(string)
		switch kind {
		case "record", "error", "enum", "fixed":
			full := fullName(t, namespace)
			t[fullNameKey] = full // namespaces are inherited: remember what this one resolved to
			s.named[full] = t
			s.named[shortName(full)] = t
			if kind == "record" || kind == "error" {
				fields, _ := t["fields"].([]any)
				for _, f := range fields {
					if fm, ok := f.(map[string]any); ok {
						s.collect(fm["type"], namespaceOf(full))
					}
				}
			}
		case "array":
			s.collect(t["items"], namespace)
		case "map":
			s.collect(t["values"], namespace)
		default:
			if _, nested := t["type"].(string); !nested {
				s.collect(t["type"], namespace)
			}
		}
	}
}

// fullNameKey holds, in a parsed writer definition, the full name collect resolved for it; no
// JSON attribute can collide with it.
const fullNameKey = "\x00fullName"

func fullName(t map[string]any, namespace string) string {
	if full, ok := t[fullNameKey].(string); ok {
		return full
	}
	name, _ := t["name"].(string)
	if strings.Contains(name, ".") {
		return name
	}
	if ns, ok := t["namespace"].(string); ok {
		namespace = ns
	}
	if namespace == "" {
		return name
	}
	return namespace + "." + name
}

func shortName(full string) string { return full[strings.LastIndexByte(full, '.')+1:] }

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

// typeOf names a schema's type: a primitive, "record", "enum", "union", …; a reference to a
// named type is followed (writer side only: the reader's schemas define every type inline).
func (s avroSchemas) typeOf(t any) (string, map[string]any) {
	switch t := t.(type) {
	case []any:
		return "union", nil
	case string:
		switch t {
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
			return t, nil
		}
		if def, ok := s.named[t].(map[string]any); ok {
			kind, _ := def["type"].(string)
			return kind, def
		}
		return "unknown " + t, nil
	case map[string]any:
		switch kind := t["type"].(type) {
		case string:
			switch kind {
			case "record", "error", "enum", "fixed", "array", "map":
				return kind, t
			}
			// A primitive in object form, e.g. {"type": "int", "logicalType": "date"}: goavro
			// decodes some logical types to other Go types, which then fail as the wrong type.
			return s.typeOf(kind)
		default:
			return s.typeOf(kind)
		}
	}
	return "unknown", nil
}

// promotions lists, per reader primitive, the writer primitives that resolve to it.
var promotions = map[string][]string{
	"int":     {"int"},
	"long":    {"int", "long"},
	"float":   {"int", "long", "float"},
	"double":  {"int", "long", "float", "double"},
	"string":  {"string", "bytes"},
	"bytes":   {"bytes", "string"},
	"boolean": {"boolean"},
	"null":    {"null"},
}

func (s avroSchemas) compile(w, r any, path string) (resolution, error) {
	wt, wdef := s.typeOf(w)
	rt, rdef := s.typeOf(r)
	if rt == "union" {
		return nil, fmt.Errorf("%s: reader unions are not used by this project's schemas", where(path))
	}
	if wt == "union" {
		return s.compileUnion(w.([]any), r, rt, path)
	}
	switch rt {
	case "record":
		if wt != "record" || shortName(fullName(wdef, "")) != shortName(fullName(rdef, "")) {
			return nil, fmt.Errorf("%s: writer %s does not resolve to reader record %s", where(path), describe(wt, wdef), fullName(rdef, ""))
		}
		return s.compileRecord(wdef, rdef, path)
	case "enum":
		if wt != "enum" || shortName(fullName(wdef, "")) != shortName(fullName(rdef, "")) {
			return nil, fmt.Errorf("%s: writer %s does not resolve to reader enum %s", where(path), describe(wt, wdef), fullName(rdef, ""))
		}
		return func(v any) (any, error) {
			if _, ok := v.(string); !ok {
				return nil, fmt.Errorf("%s: enum value is %T", where(path), v)
			}
			return v, nil
		}, nil
	}
	allowed, primitive := promotions[rt]
	if !primitive {
		return nil, fmt.Errorf("%s: reader type %s is not used by this project's schemas", where(path), rt)
	}
	ok := false
	for _, a := range allowed {
		ok = ok || a == wt
	}
	if !ok {
		return nil, fmt.Errorf("%s: writer %s does not resolve to reader %s", where(path), describe(wt, wdef), rt)
	}
	return promote(wt, rt, path), nil
}

func describe(kind string, def map[string]any) string {
	if def != nil {
		if _, named := def["name"]; named {
			return kind + " " + fullName(def, "")
		}
	}
	return kind
}

func where(path string) string {
	if path == "" {
		return "record"
	}
	return "field " + path
}

// promote converts a writer primitive's native value (goavro: int32, int64, float32, float64,
// string, []byte, bool) to the reader's.
func promote(wt, rt, path string) resolution {
	return func(v any) (any, error) {
		bad := func() (any, error) { return nil, fmt.Errorf("%s: got %T for a writer %s", where(path), v, wt) }
		switch rt {
		case "long":
			switch n := v.(type) {
			case int64:
				return n, nil
			case int32:
				return int64(n), nil
			}
		case "float":
			switch n := v.(type) {
			case float32:
				return n, nil
			case int32:
				return float32(n), nil
			case int64:
				return float32(n), nil
			}
		case "double":
			switch n := v.(type) {
			case float64:
				return n, nil
			case float32:
				return float64(n), nil
			case int32:
				return float64(n), nil
			case int64:
				return float64(n), nil
			}
		case "string":
			switch b := v.(type) {
			case string:
				return b, nil
			case []byte:
				return string(b), nil
			}
		case "bytes":
			switch b := v.(type) {
			case []byte:
				return b, nil
			case string:
				return []byte(b), nil
			}
		case "int":
			if n, ok := v.(int32); ok {
				return n, nil
			}
		case "boolean":
			if b, ok := v.(bool); ok {
				return b, nil
			}
		case "null":
			if v == nil {
				return nil, nil
			}
		}
		return bad()
	}
}

// compileUnion resolves each branch of a writer union on its own; goavro gives a union's value
// as nil (null) or a map from the written branch's type name to its value.
func (s avroSchemas) compileUnion(branches []any, r any, rt, path string) (resolution, error) {
	byName := map[string]resolution{}
	refused := map[string]error{}
	var errs []error
	for _, b := range branches {
		bt, bdef := s.typeOf(b)
		name := bt
		if bdef != nil {
			if _, named := bdef["name"]; named {
				name = fullName(bdef, "")
			}
		}
		if bt == "null" {
			continue
		}
		res, err := s.compile(b, r, path)
		if err != nil {
			refused[name], errs = err, append(errs, err)
			continue
		}
		byName[name] = res
	}
	if len(byName) == 0 {
		return nil, fmt.Errorf("%s: no branch of the writer's union resolves to reader %s: %w", where(path), rt, errors.Join(errs...))
	}
	return func(v any) (any, error) {
		if v == nil {
			return nil, fmt.Errorf("%s: null written where the reader needs %s", where(path), rt)
		}
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, fmt.Errorf("%s: union value is %T", where(path), v)
		}
		for name, inner := range m {
			if res, ok := byName[name]; ok {
				return res(inner)
			}
			if err, ok := refused[name]; ok {
				return nil, err
			}
			return nil, fmt.Errorf("%s: union branch %s is not in the writer's schema", where(path), name)
		}
		return nil, nil // unreachable: len(m) == 1
	}, nil
}

type fieldResolution struct {
	name    string
	resolve resolution // nil: the reader's default
	def     any
}

func (s avroSchemas) compileRecord(wdef, rdef map[string]any, path string) (resolution, error) {
	writerFields := map[string]any{}
	wf, _ := wdef["fields"].([]any)
	for _, f := range wf {
		if fm, ok := f.(map[string]any); ok {
			if name, ok := fm["name"].(string); ok {
				writerFields[name] = fm["type"]
			}
		}
	}
	rf, _ := rdef["fields"].([]any)
	fields := make([]fieldResolution, 0, len(rf))
	for _, f := range rf {
		fm, _ := f.(map[string]any)
		name, _ := fm["name"].(string)
		sub := name
		if path != "" {
			sub = path + "." + name
		}
		if wtype, ok := writerFields[name]; ok {
			res, err := s.compile(wtype, fm["type"], sub)
			if err != nil {
				return nil, err
			}
			fields = append(fields, fieldResolution{name: name, resolve: res})
			continue
		}
		def, hasDefault := fm["default"]
		if !hasDefault {
			return nil, fmt.Errorf("field %s: not in the writer's schema and the reader has no default", sub)
		}
		native, err := defaultNative(def, fm["type"], sub)
		if err != nil {
			return nil, err
		}
		fields = append(fields, fieldResolution{name: name, def: native})
	}
	return func(v any) (any, error) {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: record value is %T", where(path), v)
		}
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			if f.resolve == nil {
				out[f.name] = f.def
				continue
			}
			fv, present := m[f.name]
			if !present {
				return nil, fmt.Errorf("field %s: missing from the written record", f.name)
			}
			rv, err := f.resolve(fv)
			if err != nil {
				return nil, err
			}
			out[f.name] = rv
		}
		return out, nil
	}, nil
}

// defaultNative turns a reader field's JSON default into goavro's native form of its type.
func defaultNative(def, t any, path string) (any, error) {
	kind, _ := t.(string)
	if m, ok := t.(map[string]any); ok {
		kind, _ = m["type"].(string)
	}
	switch v := def.(type) {
	case string:
		if kind == "string" || kind == "enum" {
			return v, nil
		}
	case float64:
		switch kind {
		case "int":
			return int32(v), nil
		case "long":
			return int64(v), nil
		case "float":
			return float32(v), nil
		case "double":
			return v, nil
		}
	case bool:
		if kind == "boolean" {
			return v, nil
		}
	}
	return nil, fmt.Errorf("field %s: default %v does not fit the reader's type %s", path, def, kind)
}
