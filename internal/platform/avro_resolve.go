package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
//     an error for that record (the domain's Valid checks refuse it);
//   - logical types are read as their underlying types (prepareWriter drops them).
//
// A writer schema none of whose possible records can resolve is refused when it is first seen,
// with the reason; everything else fails only for the records that need what cannot resolve.
// So are writer schemas whose records could cost unbounded work to decode whatever the reader
// needs of them: recursive types (goavro recurses once per level, and a deep enough record
// overflows the stack) and arrays of items that take no bytes (a few bytes of input announce
// millions of items), and schemas that define a name twice (a reference would be ambiguous).

// resolution converts a writer's native value to the reader's.
type resolution func(v any) (any, error)

// compileResolution compiles the resolution of the parsed writer schema to the reader's text.
func compileResolution(writer any, readerText string) (resolution, error) {
	var r any
	if err := json.Unmarshal([]byte(readerText), &r); err != nil {
		return nil, fmt.Errorf("reader schema: %w", err)
	}
	s := avroSchemas{named: map[string]map[string]any{}, fulls: map[uintptr]string{}}
	s.collect(writer, "", nil)
	if s.err != nil {
		return nil, s.err
	}
	return s.compile(writer, r, "", "")
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

// compile resolves writer node w, in namespace wns, to reader node r at path.
func (s *avroSchemas) compile(w, r any, path, wns string) (resolution, error) {
	wt, wdef, branches := s.writerType(w, wns)
	rt, rdef := readerType(r)
	if rt == "union" {
		return nil, fmt.Errorf("%s: reader unions are not used by this project's schemas", where(path))
	}
	if wt == "union" {
		return s.compileUnion(branches, r, rt, path, wns)
	}
	switch rt {
	case "record", "enum":
		rname := shortName(goavroFullName(rdef, ""))
		if wt != rt || shortName(s.fullOf(wdef, wns)) != rname {
			return nil, fmt.Errorf("%s: writer %s does not resolve to reader %s %s", where(path), s.describe(wt, wdef, wns), rt, rname)
		}
		if rt == "record" {
			return s.compileRecord(wdef, rdef, path, namespaceOf(s.fullOf(wdef, wns)))
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
	if !slices.Contains(allowed, wt) {
		return nil, fmt.Errorf("%s: writer %s does not resolve to reader %s", where(path), s.describe(wt, wdef, wns), rt)
	}
	return promote(wt, rt, path), nil
}

// fullOf is the full name collect gave a writer definition.
func (s *avroSchemas) fullOf(def map[string]any, namespace string) string {
	if def == nil {
		return ""
	}
	if full, ok := s.fulls[identity(def)]; ok {
		return full
	}
	return goavroFullName(def, namespace)
}

func (s *avroSchemas) describe(kind string, def map[string]any, namespace string) string {
	if def != nil {
		if _, named := def["name"]; named {
			return kind + " " + s.fullOf(def, namespace)
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
		return nil, fmt.Errorf("%s: got %T for a writer %s", where(path), v, wt)
	}
}

// maxBranchErrors bounds how many refused branches an error names.
const maxBranchErrors = 3

// compileUnion resolves each branch of a writer union on its own; goavro gives a union's value
// as nil (null) or a map from the written branch's type name to its value.
func (s *avroSchemas) compileUnion(branches []any, r any, rt, path, wns string) (resolution, error) {
	byName := map[string]resolution{}
	refused := map[string]error{}
	var errs []error
	for _, b := range branches {
		bt, bdef, _ := s.writerType(b, wns)
		if bt == "null" {
			continue
		}
		name := bt
		if bdef != nil {
			if _, named := bdef["name"]; named {
				name = s.fullOf(bdef, wns)
			}
		}
		res, err := s.compile(b, r, path, wns)
		if err != nil {
			refused[name] = err
			if len(errs) < maxBranchErrors {
				errs = append(errs, err)
			}
			continue
		}
		byName[name] = res
	}
	if len(byName) == 0 {
		return nil, fmt.Errorf("%s: no branch of the writer's union resolves to reader %s (%d refused): %w",
			where(path), rt, len(refused), errors.Join(errs...))
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
			return nil, fmt.Errorf("%s: written union branch %s is not one the schema names", where(path), name)
		}
		return nil, nil // unreachable: len(m) == 1
	}, nil
}

type fieldResolution struct {
	name    string
	resolve resolution // nil: the reader's default
	def     any
}

// compileRecord resolves writer record wdef, whose fields are in namespace wns, to rdef.
func (s *avroSchemas) compileRecord(wdef, rdef map[string]any, path, wns string) (resolution, error) {
	writerFields := map[string]any{}
	wf, _ := wdef["fields"].([]any)
	for _, f := range wf {
		if fm, ok := f.(map[string]any); ok {
			if name, ok := fm["name"].(string); ok {
				if _, twice := writerFields[name]; twice {
					return nil, fmt.Errorf("%s: the writer names field %s twice", where(path), name)
				}
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
			res, err := s.compile(wtype, fm["type"], sub, wns)
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
	kind, _ := readerType(t)
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
