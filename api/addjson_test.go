package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCanonicalJSON checks the add_json re-serialisation against what
// pyaleph's json.loads + orjson.dumps(OPT_SORT_KEYS) gives.
func TestCanonicalJSON(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`{"b": 1, "a": [1, 2, {"d": null, "c": true}]}`, `{"a":[1,2,{"c":true,"d":null}],"b":1}`},
		{" \n[ ]\t", `[]`},
		{`{}`, `{}`},
		{`"x"`, `"x"`},
		{`{"é":"é","a":"\u00e9","z":"\ud83d\ude00"}`, `{"a":"é","z":"😀","é":"é"}`},
		// Code point order: upper case before lower case, BMP before astral.
		{`{"b":0,"B":0,"\uffff":0,"😀":0,"a":0}`, "{\"B\":0,\"a\":0,\"b\":0,\"\uffff\":0,\"😀\":0}"},
		{`"\/\u001f\t\n\r\b\f\u000b\u007f\"\\"`, "\"/\\u001f\\t\\n\\r\\b\\f\\u000b\x7f\\\"\\\\\""},
		{`"<>&\u2028"`, "\"<>&\u2028\""},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`{"a":{"y":1},"a":[3]}`, `{"a":[3]}`},
		// Numbers: integers keep their digits, floats are orjson's (Ryū's) text.
		{`[0, -0, 7, -12, 12345678901234567890123]`, `[0,0,7,-12,12345678901234567890123]`},
		{`[1.0, 1.50, 1e5, 1E+2, 2.5e-3, -0.0, 0.0]`, `[1.0,1.5,100000.0,100.0,0.0025,-0.0,0.0]`},
		{`[1e15, 1e16, 1.5e16, 123456789012345678.0, 9007199254740993.0]`, `[1000000000000000.0,1e16,1.5e16,1.2345678901234568e17,9007199254740992.0]`},
		{`[0.0001, 1e-5, 0.000012, 1e-6, 1.5e-7, 5e-324]`, `[0.0001,0.00001,0.000012,1e-6,1.5e-7,5e-324]`},
		{`[1700000000.123, 0.1, 0.3, 1.7976931348623157e308]`, `[1700000000.123,0.1,0.3,1.7976931348623157e308]`},
		{`[1e400, -1e400, 1e-400]`, `[null,null,0.0]`},
	} {
		got, err := canonicalJSON([]byte(tt.in))
		if err != nil {
			t.Errorf("canonicalJSON(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("canonicalJSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalJSONRefuses(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	for _, in := range []string{"", " ", "{", `{"a":}`, "[1,]", "NaN", "Infinity", `{"a":1} x`, "[1] [2]", "01", `"\ud800`, deep} {
		if got, err := canonicalJSON([]byte(in)); err == nil {
			t.Errorf("canonicalJSON(%.40q) = %s, want an error", in, got)
		}
	}
	ok := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	if _, err := canonicalJSON([]byte(ok)); err != nil {
		t.Errorf("nesting of exactly %d levels: %v", maxJSONDepth, err)
	}
}

// TestAppendRyu checks the float layout against Ryū's rules on values around
// every boundary, and that the text always reads back as the same float.
func TestAppendRyu(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string
	}{
		{1, "1.0"}, {-1, "-1.0"}, {0.5, "0.5"}, {123.456, "123.456"}, {1e16 - 2, "9999999999999998.0"},
		{1e16, "1e16"}, {1.25e16, "1.25e16"}, {1e17, "1e17"}, {1e-4, "0.0001"}, {1.25e-5, "0.0000125"},
		{1e-5, "0.00001"}, {9.99e-6, "9.99e-6"}, {1e-10, "1e-10"}, {1e100, "1e100"}, {-2.5e-300, "-2.5e-300"},
		{math.MaxFloat64, "1.7976931348623157e308"}, {math.SmallestNonzeroFloat64, "5e-324"},
	} {
		if got := string(appendRyu(nil, tt.f)); got != tt.want {
			t.Errorf("appendRyu(%v) = %s, want %s", tt.f, got, tt.want)
		}
	}
	for i := -330; i < 310; i++ {
		f := 1.2345 * math.Pow(10, float64(i))
		if f == 0 || math.IsInf(f, 0) {
			continue
		}
		s := string(appendRyu(nil, f))
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back != f {
			t.Errorf("appendRyu(%v) = %s, reads back as %v (%v)", f, s, back, err)
		}
		if !strings.ContainsAny(s, ".e") {
			t.Errorf("appendRyu(%v) = %s: neither a fraction nor an exponent", f, s)
		}
	}
}

// TestMIMEBase64 checks the streamed encoding and its precomputed length
// against Python's base64.encodebytes layout.
func TestMIMEBase64(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 56, 57, 58, 114, 57 * 1024, 57*1024 + 1, 100_000} {
		in := make([]byte, n)
		for i := range in {
			in[i] = byte(i * 7)
		}
		var b strings.Builder
		got, err := writeMIMEBase64JSON(&b, strings.NewReader(string(in)))
		if err != nil || got != int64(n) {
			t.Fatalf("n=%d: read %d, %v", n, got, err)
		}
		// encodebytes: 76-character lines, each ending in a newline.
		all := base64.StdEncoding.EncodeToString(in)
		var want strings.Builder
		for i := 0; i < len(all); i += 76 {
			want.WriteString(all[i:min(i+76, len(all))])
			want.WriteString(`\n`)
		}
		if b.String() != want.String() {
			t.Errorf("n=%d: encoding differs from encodebytes", n)
		}
		if l := mimeBase64JSONLen(int64(n)); l != int64(b.Len()) {
			t.Errorf("n=%d: precomputed length %d, wrote %d", n, l, b.Len())
		}
	}
}

// FuzzCanonicalJSON: the canonical form is valid JSON, a fixed point, and
// holds the same value as its input.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.0,2,{"d":null}]}`, `"é\u0000"`, `[1e400,-0,1E+2]`, `{"a":1,"a":2}`, `[[[[]]]]`, `12345678901234567890`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := canonicalJSON(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("canonicalJSON(%q) = %q: invalid JSON", in, out)
		}
		again, err := canonicalJSON(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("canonicalJSON is not idempotent on %q: %q, %v", out, again, err)
		}
		var a, b any
		if json.Unmarshal(in, &a) == nil && json.Unmarshal(out, &b) == nil && !reflect.DeepEqual(a, b) && utf8.Valid(in) {
			t.Fatalf("canonicalJSON(%q) = %q: a different value", in, out)
		}
	})
}
