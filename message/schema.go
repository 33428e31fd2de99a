package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// This file is a small strict JSON decoder for the content schemas. encoding/json
// cannot say which nested field was unknown, tell a missing field from a zero one,
// or refuse null, and pydantic (upstream's validator) does all three. The decoder
// is driven by struct tags:
//
//	json:"name"                 the JSON key
//	aleph:"required"            the key must be present
//	aleph:"nonnull"             a slice or map that must not be null
//	aleph:"strict"              an integer that must be written as one (no 1.0)
//
// A struct whose pointer implements extraAllowed accepts unknown keys; one that
// implements defaulter gets its defaults set before its keys are decoded.

type defaulter interface{ setDefaults() }

type extraAllowed interface{ allowExtra() }

// schemaDecoder is implemented by types with a custom shape (string-or-object refs,
// discriminated volume unions).
type schemaDecoder interface {
	decodeSchema(path string, raw []byte) error
}

var (
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	schemaDecoderType = reflect.TypeFor[schemaDecoder]()
	defaulterType     = reflect.TypeFor[defaulter]()
	extraAllowedType  = reflect.TypeFor[extraAllowed]()
)

// maxSchemaDepth bounds nesting in content, so hostile input cannot exhaust the stack.
const maxSchemaDepth = 64

// decodeStrict decodes raw into the value v points to.
func decodeStrict(path string, raw []byte, v any) error {
	return decodeValue(path, bytes.TrimSpace(raw), reflect.ValueOf(v).Elem(), fieldOpts{}, 0)
}

type fieldOpts struct {
	required, nonNull, strict bool
}

func decodeValue(path string, raw []byte, v reflect.Value, o fieldOpts, depth int) error {
	if depth > maxSchemaDepth {
		return Errorf(CodeInvalidFormat, path, "nested too deeply")
	}
	if len(raw) == 0 {
		return Errorf(CodeInvalidFormat, path, "empty value")
	}
	isNull := string(raw) == "null"
	t := v.Type()
	if reflect.PointerTo(t).Implements(schemaDecoderType) {
		if isNull {
			return Errorf(CodeInvalidFormat, path, "must not be null")
		}
		return v.Addr().Interface().(schemaDecoder).decodeSchema(path, raw)
	}
	if t == rawMessageType {
		if isNull {
			v.SetZero()
			return nil
		}
		if !json.Valid(raw) {
			return Errorf(CodeInvalidFormat, path, "invalid JSON")
		}
		v.SetBytes(slices.Clone(raw))
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull {
			v.SetZero()
			return nil
		}
		p := reflect.New(t.Elem())
		if err := decodeValue(path, raw, p.Elem(), o, depth+1); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Interface:
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			return Errorf(CodeInvalidFormat, path, "invalid JSON")
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	}
	if isNull {
		if (t.Kind() == reflect.Map || t.Kind() == reflect.Slice) && !o.nonNull {
			v.SetZero()
			return nil
		}
		return Errorf(CodeInvalidFormat, path, "must not be null")
	}
	switch t.Kind() {
	case reflect.Struct:
		return decodeStruct(path, raw, v, depth)
	case reflect.Map:
		if raw[0] != '{' {
			return Errorf(CodeInvalidFormat, path, "must be an object")
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return Errorf(CodeInvalidFormat, path, "invalid object")
		}
		if t.Key().Kind() != reflect.String {
			return Errorf(CodeInternalError, path, "unsupported map key type %s", t.Key())
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range sortedKeys(m) {
			ev := reflect.New(t.Elem()).Elem()
			if err := decodeValue(path+"."+k, bytes.TrimSpace(m[k]), ev, fieldOpts{}, depth+1); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		v.Set(out)
		return nil
	case reflect.Slice:
		if raw[0] != '[' {
			return Errorf(CodeInvalidFormat, path, "must be a list")
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return Errorf(CodeInvalidFormat, path, "invalid list")
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			if err := decodeValue(fmt.Sprintf("%s[%d]", path, i), bytes.TrimSpace(it), out.Index(i), fieldOpts{}, depth+1); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	case reflect.String:
		if raw[0] != '"' {
			return Errorf(CodeInvalidFormat, path, "must be a string")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Errorf(CodeInvalidFormat, path, "invalid string")
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		switch string(raw) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return Errorf(CodeInvalidFormat, path, "must be a boolean")
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := parseInt(raw, o.strict)
		if err != nil {
			return Errorf(CodeInvalidFormat, path, "%v", err)
		}
		if v.OverflowInt(n) {
			return Errorf(CodeInvalidFormat, path, "integer out of range")
		}
		v.SetInt(n)
		return nil
	case reflect.Float64, reflect.Float32:
		if !isNumber(raw) {
			return Errorf(CodeInvalidFormat, path, "must be a number")
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return Errorf(CodeInvalidFormat, path, "number out of range")
		}
		v.SetFloat(f)
		return nil
	}
	return Errorf(CodeInternalError, path, "unsupported schema type %s", t)
}

func isNumber(raw []byte) bool {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return false
	}
	return json.Valid(raw)
}

// parseInt accepts an integer literal, or (unless strict) a float with no fraction,
// as pydantic's lax mode does.
func parseInt(raw []byte, strict bool) (int64, error) {
	if !isNumber(raw) {
		return 0, fmt.Errorf("must be an integer")
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, nil
	}
	if strict {
		return 0, fmt.Errorf("must be an integer")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("must be an integer")
	}
	return int64(f), nil
}

func decodeStruct(path string, raw []byte, v reflect.Value, depth int) error {
	if raw[0] != '{' {
		return Errorf(CodeInvalidFormat, path, "must be an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return Errorf(CodeInvalidFormat, path, "invalid object")
	}
	pt := reflect.PointerTo(v.Type())
	if pt.Implements(defaulterType) {
		v.Addr().Interface().(defaulter).setDefaults()
	}
	fields := schemaFields(v.Type())
	known := make(map[string]bool, len(fields))
	for _, f := range fields {
		known[f.name] = true
		fv := v.FieldByIndex(f.index)
		val, ok := m[f.name]
		if !ok {
			if f.required {
				return Errorf(CodeInvalidFormat, joinField(path, f.name), "field required")
			}
			continue
		}
		if err := decodeValue(joinField(path, f.name), bytes.TrimSpace(val), fv, f.fieldOpts, depth+1); err != nil {
			return err
		}
	}
	if !pt.Implements(extraAllowedType) {
		for _, k := range sortedKeys(m) {
			if !known[k] {
				return Errorf(CodeInvalidFormat, joinField(path, truncate(k, 64)), "extra fields not permitted")
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

type schemaField struct {
	name  string
	index []int
	fieldOpts
}

var schemaCache sync.Map // reflect.Type → []schemaField

func schemaFields(t reflect.Type) []schemaField {
	if f, ok := schemaCache.Load(t); ok {
		return f.([]schemaField)
	}
	var out []schemaField
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			index := append(slices.Clone(prefix), i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, index)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			a := sf.Tag.Get("aleph")
			out = append(out, schemaField{name: name, index: index, fieldOpts: fieldOpts{
				required: strings.Contains(a, "required"),
				nonNull:  strings.Contains(a, "nonnull"),
				strict:   strings.Contains(a, "strict"),
			}})
		}
	}
	walk(t, nil)
	schemaCache.Store(t, out)
	return out
}
