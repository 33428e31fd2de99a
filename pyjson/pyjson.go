// Package pyjson encodes Go values as JSON byte for byte the way Aleph's clients do:
// compact separators, no HTML escaping, and floats written as Python's repr writes
// them (1700000000.0, not 1700000000). Key order is the struct field order, which
// mirrors aleph-message's model order; map keys are sorted for determinism.
//
// By default non-ASCII text is written raw, as the TypeScript and Rust SDKs do. The
// ASCII option escapes it as \uXXXX, as Python's json.dumps does by default, and
// SortKeys sorts struct fields too (Python's sort_keys=True).
//
// An item_hash is the sha256 of these exact bytes, so every choice here is part of
// the wire format.
package pyjson

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Options select Python json.dumps variants.
type Options struct {
	// ASCII escapes every non-ASCII character as \uXXXX (surrogate pairs above the
	// BMP) and DEL as \u007f, like Python's ensure_ascii=True.
	ASCII bool
	// SortKeys sorts struct fields by JSON name, like Python's sort_keys=True.
	SortKeys bool
}

// maxDepth bounds nesting, so that a cyclic value fails instead of overflowing the stack.
const maxDepth = 1000

// ErrDepth is returned for values nested deeper than 1,000 levels (or cyclic).
var ErrDepth = errors.New("pyjson: value nested too deeply")

// Marshal encodes v compactly with raw UTF-8.
func Marshal(v any) ([]byte, error) { return Options{}.Marshal(v) }

// Marshal encodes v with the options.
func (o Options) Marshal(v any) ([]byte, error) {
	e := encoder{opts: o}
	if err := e.value(reflect.ValueOf(v), 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// AppendString appends s as a JSON string literal.
func AppendString(dst []byte, s string, ascii bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && !(ascii && c == 0x7f) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = appendU(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || ascii {
			dst = append(dst, s[start:i]...)
			if r == utf8.RuneError && size == 1 {
				r = utf8.RuneError // invalid UTF-8 becomes U+FFFD, as encoding/json does
			}
			if ascii {
				if r > 0xFFFF {
					r1, r2 := utf16.EncodeRune(r)
					dst = appendU(appendU(dst, r1), r2)
				} else {
					dst = appendU(dst, r)
				}
			} else {
				dst = utf8.AppendRune(dst, r)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

type encoder struct {
	buf  []byte
	opts Options
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	numberType        = reflect.TypeFor[json.Number]()
)

func (e *encoder) value(v reflect.Value, depth int) error {
	if depth > maxDepth {
		return ErrDepth
	}
	if !v.IsValid() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	t := v.Type()
	if t == numberType {
		return e.number(v.String())
	}
	if t.Implements(marshalerType) && !(t.Kind() == reflect.Pointer && v.IsNil()) {
		return e.marshaler(v.Interface().(json.Marshaler), depth)
	}
	if t.Kind() != reflect.Pointer && v.CanAddr() && reflect.PointerTo(t).Implements(marshalerType) {
		return e.marshaler(v.Addr().Interface().(json.Marshaler), depth)
	}
	if t.Implements(textMarshalerType) && !(t.Kind() == reflect.Pointer && v.IsNil()) {
		text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return fmt.Errorf("pyjson: marshal text %s: %w", t, err)
		}
		e.buf = AppendString(e.buf, string(text), e.opts.ASCII)
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case reflect.Float32:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("pyjson: unsupported float value %v", f)
		}
		// Shortest float32 digits, then read as float64, so 0.1f prints as 0.1.
		f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
		e.buf = AppendFloat(e.buf, f)
	case reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("pyjson: unsupported float value %v", f)
		}
		e.buf = AppendFloat(e.buf, f)
	case reflect.String:
		e.buf = AppendString(e.buf, v.String(), e.opts.ASCII)
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.value(v.Elem(), depth+1)
	case reflect.Slice:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(marshalerType) {
			e.buf = append(e.buf, '"')
			e.buf = base64.StdEncoding.AppendEncode(e.buf, v.Bytes())
			e.buf = append(e.buf, '"')
			return nil
		}
		return e.array(v, depth)
	case reflect.Array:
		return e.array(v, depth)
	case reflect.Map:
		return e.mapValue(v, depth)
	case reflect.Struct:
		return e.structValue(v, depth)
	default:
		return fmt.Errorf("pyjson: unsupported type %s", t)
	}
	return nil
}

func (e *encoder) number(s string) error {
	if s == "" {
		s = "0"
	}
	if !isJSONNumber(s) {
		return fmt.Errorf("pyjson: invalid number literal %q", s)
	}
	e.buf = append(e.buf, s...)
	return nil
}

func isJSONNumber(s string) bool {
	var f json.Number
	return json.Unmarshal([]byte(s), &f) == nil && strings.TrimSpace(s) == s
}

// marshaler re-emits a json.Marshaler's output through this encoder's rules, keeping
// key order and number text, so a json.RawMessage is normalized to compact form
// (and ASCII-escaped when asked) without reordering anything.
func (e *encoder) marshaler(m json.Marshaler, depth int) error {
	raw, err := m.MarshalJSON()
	if err != nil {
		return fmt.Errorf("pyjson: %w", err)
	}
	return e.transcode(raw, depth)
}

func (e *encoder) transcode(raw []byte, depth int) error {
	type frame struct {
		obj      bool
		count    int
		afterKey bool
	}
	if !json.Valid(raw) {
		return errors.New("pyjson: marshaler returned invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pyjson: invalid JSON from marshaler: %w", err)
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			e.buf = append(e.buf, byte(d))
			continue
		}
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			switch {
			case top.obj && !top.afterKey: // an object key
				if top.count > 0 {
					e.buf = append(e.buf, ',')
				}
				e.buf = AppendString(e.buf, tok.(string), e.opts.ASCII)
				e.buf = append(e.buf, ':')
				top.afterKey = true
				continue
			case top.obj:
				top.afterKey = false
			default:
				if top.count > 0 {
					e.buf = append(e.buf, ',')
				}
			}
			top.count++
		}
		switch x := tok.(type) {
		case json.Delim:
			if depth+len(stack) >= maxDepth {
				return ErrDepth
			}
			e.buf = append(e.buf, byte(x))
			stack = append(stack, frame{obj: x == '{'})
		case string:
			e.buf = AppendString(e.buf, x, e.opts.ASCII)
		case json.Number:
			e.buf = append(e.buf, x...)
		case bool:
			e.buf = strconv.AppendBool(e.buf, x)
		case nil:
			e.buf = append(e.buf, "null"...)
		}
	}
}

func (e *encoder) array(v reflect.Value, depth int) error {
	e.buf = append(e.buf, '[')
	for i := range v.Len() {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	return nil
}

func (e *encoder) mapValue(v reflect.Value, depth int) error {
	if v.IsNil() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	type kv struct {
		k string
		v reflect.Value
	}
	kvs := make([]kv, 0, v.Len())
	it := v.MapRange()
	for it.Next() {
		k, err := mapKey(it.Key())
		if err != nil {
			return err
		}
		kvs = append(kvs, kv{k, it.Value()})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	e.buf = append(e.buf, '{')
	for i, p := range kvs {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = AppendString(e.buf, p.k, e.opts.ASCII)
		e.buf = append(e.buf, ':')
		if err := e.value(p.v, depth+1); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func mapKey(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		b, err := tm.MarshalText()
		return string(b), err
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("pyjson: unsupported map key type %s", k.Type())
}

func (e *encoder) structValue(v reflect.Value, depth int) error {
	fields := cachedFields(v.Type())
	if e.opts.SortKeys {
		fields = slices.Clone(fields)
		slices.SortStableFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	}
	e.buf = append(e.buf, '{')
	n := 0
	for _, f := range fields {
		fv, ok := fieldByIndex(v, f.index)
		if !ok {
			continue // nil embedded pointer
		}
		if f.omitEmpty && isEmpty(fv) || f.omitZero && isZero(fv) {
			continue
		}
		if n > 0 {
			e.buf = append(e.buf, ',')
		}
		n++
		e.buf = AppendString(e.buf, f.name, e.opts.ASCII)
		e.buf = append(e.buf, ':')
		if err := e.value(fv, depth+1); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

func isZero(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

type field struct {
	name      string
	index     []int
	omitEmpty bool
	omitZero  bool
}

var fieldCache sync.Map // reflect.Type → []field

func cachedFields(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	f := typeFields(t, nil)
	// A shallower field shadows promoted fields of the same name.
	best := map[string]int{}
	for _, x := range f {
		if d, ok := best[x.name]; !ok || len(x.index) < d {
			best[x.name] = len(x.index)
		}
	}
	out := make([]field, 0, len(f))
	for _, x := range f {
		if best[x.name] == len(x.index) {
			best[x.name] = -1 // keep only the first at that depth
			out = append(out, x)
		}
	}
	fieldCache.Store(t, out)
	return out
}

func typeFields(t reflect.Type, prefix []int) []field {
	var direct, promoted []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		index := append(slices.Clone(prefix), i)
		ft := sf.Type
		if sf.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				promoted = append(promoted, typeFields(ft, index)...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		direct = append(direct, field{
			name:      name,
			index:     index,
			omitEmpty: hasOpt(opts, "omitempty"),
			omitZero:  hasOpt(opts, "omitzero"),
		})
	}
	// Promoted fields keep their position: place them where the embedded struct sits.
	if len(promoted) == 0 {
		return direct
	}
	all := append(direct, promoted...)
	slices.SortStableFunc(all, func(a, b field) int { return slices.Compare(a.index, b.index) })
	return all
}

func hasOpt(opts, name string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}
