package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// schemas builds JSON Schemas (as OpenAPI 3.1 takes them) from the Go types
// the API encodes, so that the document says what the code sends: each
// struct becomes a named component, its fields its properties, required
// unless omitted when empty, and no others allowed.
type schemas struct {
	components map[string]any
	names      map[reflect.Type]string // each struct's component, unique
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// of returns the schema of v's type (a reference, for a struct).
func (s *schemas) of(v any) map[string]any {
	return s.schema(reflect.TypeOf(v))
}

func (s *schemas) schema(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType, t.Kind() == reflect.Interface:
		return map[string]any{} // any JSON value
	case t.Implements(marshalerType) && t.Kind() != reflect.Struct:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := s.schema(t.Elem())
		return map[string]any{"oneOf": []any{inner, map[string]any{"type": "null"}}}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": s.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": s.schema(t.Elem())}
	case reflect.Struct:
		name, done := s.names[t]
		if !done {
			name = componentName(t)
			if _, taken := s.components[name]; taken { // another package's type of that name
				pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
				name = strings.ToUpper(pkg[:1]) + pkg[1:] + name
			}
			if s.names == nil {
				s.names = map[reflect.Type]string{}
			}
			s.names[t] = name
			s.components[name] = nil // being built: a recursive type refers to itself
			s.components[name] = s.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// object is a struct's schema: its exported, JSON-encoded fields, with the
// fields of embedded structs in line.
func (s *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	s.fields(t, props, &required)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func (s *schemas) fields(t reflect.Type, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				s.fields(ft, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = s.schema(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			*required = append(*required, name)
		}
	}
}

// componentName names a struct's component after its Go type, without the
// package and with a capital: runJSON is Run, listRunsResponse is
// ListRunsResponse.
func componentName(t reflect.Type) string {
	name := strings.TrimSuffix(t.Name(), "JSON")
	if name == "" {
		return "Object"
	}
	if rest, ok := strings.CutPrefix(name, "API"); ok {
		name = "Api" + rest // as apiKeyJSON is ApiKey: initialisms are words in schema names
	}
	return strings.ToUpper(name[:1]) + name[1:]
}
