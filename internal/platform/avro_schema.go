package platform

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Reading a foreign writer schema: its text prepared for goavro, its named types under goavro's
// naming rules, the structures refused before any record is decoded, and the type of a node.

// prepareWriter parses a registry's schema text for decoding: logical types are dropped, so
// that goavro decodes their underlying types (an int, a long, bytes) as the specification
// says a reader without them does; the text returned is what goavro compiles.
func prepareWriter(text string) (clean string, parsed any, err error) {
	if err := json.Unmarshal([]byte(text), &parsed); err != nil {
		return "", nil, fmt.Errorf("writer schema is not JSON: %w", err)
	}
	dropLogicalTypes(parsed)
	b, err := json.Marshal(parsed)
	if err != nil {
		return "", nil, fmt.Errorf("writer schema: %w", err)
	}
	return string(b), parsed, nil
}

func dropLogicalTypes(t any) {
	switch t := t.(type) {
	case []any:
		for _, e := range t {
			dropLogicalTypes(e)
		}
	case map[string]any:
		delete(t, "logicalType")
		for _, e := range t {
			dropLogicalTypes(e)
		}
	}
}

// avroSchemas are a parsed writer schema's named types, with goavro's naming rules, so that
// references and union branches are named as goavro names them.
type avroSchemas struct {
	named map[string]map[string]any // full name → definition
	fulls map[uintptr]string        // definition (by identity) → full name
	err   error                     // the first structural refusal collect found
}

func identity(m map[string]any) uintptr { return reflect.ValueOf(m).Pointer() }

func (s *avroSchemas) refuse(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

// collect records every named type of a writer schema in definition order (a reference binds
// to a name defined before it, as in goavro and Java) and refuses what decoding could not
// bound: defining is the chain of records whose fields are being walked.
func (s *avroSchemas) collect(t any, namespace string, defining []string) {
	if s.err != nil {
		return
	}
	switch t := t.(type) {
	case []any:
		for _, b := range t {
			s.collect(b, namespace, defining)
		}
	case string:
		if primitiveType(t) {
			return
		}
		full := s.resolveRef(t, namespace)
		switch {
		case full == "":
			s.refuse("type %q is not defined before its use", t)
		case slices.Contains(defining, full):
			s.refuse("type %s is recursive", full)
		}
	case map[string]any:
		switch kind := t["type"].(type) {
		case []any, map[string]any:
			s.collect(kind, namespace, defining)
		case string:
			switch kind {
			case "record", "error", "enum", "fixed":
				full := goavroFullName(t, namespace)
				if _, twice := s.named[full]; twice {
					s.refuse("type %s is defined twice", full)
					return
				}
				s.named[full], s.fulls[identity(t)] = t, full
				if kind == "record" || kind == "error" {
					fields, _ := t["fields"].([]any)
					for _, f := range fields {
						if fm, ok := f.(map[string]any); ok {
							s.collect(fm["type"], namespaceOf(full), append(defining, full))
						}
					}
				}
			case "array":
				if s.zeroWidth(t["items"], namespace, nil) {
					s.refuse("an array of items that take no bytes")
					return
				}
				s.collect(t["items"], namespace, defining)
			case "map":
				s.collect(t["values"], namespace, defining)
			}
		}
	}
}

// zeroWidth says whether values of t encode in no bytes at all (null, a record of such fields,
// a fixed of size 0).
func (s *avroSchemas) zeroWidth(t any, namespace string, seen []string) bool {
	switch t := t.(type) {
	case string:
		if t == "null" {
			return true
		}
		if primitiveType(t) {
			return false
		}
		full := s.resolveRef(t, namespace)
		if full == "" || slices.Contains(seen, full) {
			return false
		}
		return s.zeroWidth(s.named[full], namespaceOf(full), append(seen, full))
	case map[string]any:
		switch kind := t["type"].(type) {
		case string:
			switch kind {
			case "record", "error":
				full := goavroFullName(t, namespace)
				fields, _ := t["fields"].([]any)
				for _, f := range fields {
					fm, _ := f.(map[string]any)
					if !s.zeroWidth(fm["type"], namespaceOf(full), append(seen, full)) {
						return false
					}
				}
				return true
			case "fixed":
				size, _ := t["size"].(float64)
				return size == 0
			default:
				return kind == "null"
			}
		case map[string]any:
			return s.zeroWidth(kind, namespace, seen)
		}
	}
	return false
}

func primitiveType(t string) bool {
	switch t {
	case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
		return true
	}
	return false
}

// goavroFullName is the full name goavro gives a named type defined in namespace: a dotted name
// is full; else its own namespace, where an empty one counts as absent, or the enclosing one.
func goavroFullName(t map[string]any, namespace string) string {
	name, _ := t["name"].(string)
	if strings.Contains(name, ".") {
		return name
	}
	if ns, _ := t["namespace"].(string); ns != "" {
		namespace = ns
	}
	if namespace == "" {
		return name
	}
	return namespace + "." + name
}

// resolveRef is the full name a reference stands for in namespace, "" when none is defined.
func (s *avroSchemas) resolveRef(name, namespace string) string {
	if !strings.Contains(name, ".") && namespace != "" {
		if _, ok := s.named[namespace+"."+name]; ok {
			return namespace + "." + name
		}
	}
	if _, ok := s.named[name]; ok {
		return name
	}
	return ""
}

func shortName(full string) string { return full[strings.LastIndexByte(full, '.')+1:] }

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

// writerType names a writer schema node's type: a primitive, "record", "enum", "union", …,
// with the definition of a named type (references followed) or the branches of a union.
func (s *avroSchemas) writerType(t any, namespace string) (kind string, def map[string]any, branches []any) {
	switch t := t.(type) {
	case []any:
		return "union", nil, t
	case string:
		if primitiveType(t) {
			return t, nil, nil
		}
		if def := s.named[s.resolveRef(t, namespace)]; def != nil {
			kind, _ := def["type"].(string)
			return kind, def, nil
		}
	case map[string]any:
		switch kind := t["type"].(type) {
		case string:
			switch kind {
			case "record", "error", "enum", "fixed", "array", "map":
				return kind, t, nil
			}
			return s.writerType(kind, namespace) // a primitive in object form
		case []any, map[string]any:
			return s.writerType(kind, namespace)
		}
	}
	return "unknown", nil, nil
}

// readerType names a shipped schema node's type; they define every type inline.
func readerType(t any) (kind string, def map[string]any) {
	switch t := t.(type) {
	case string:
		return t, nil
	case map[string]any:
		switch kind := t["type"].(type) {
		case string:
			switch kind {
			case "record", "enum":
				return kind, t
			}
			return kind, nil
		case map[string]any:
			return readerType(kind)
		}
	case []any:
		return "union", nil
	}
	return "unknown", nil
}
