package pyjson

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"testing"
)

func TestFormatFloatMatchesPythonRepr(t *testing.T) {
	// Expected values are Python 3 repr() output.
	tests := []struct {
		in   float64
		want string
	}{
		{1700000000.0, "1700000000.0"},
		{1700000000.5, "1700000000.5"},
		{1762515431.653, "1762515431.653"},
		{1648215802.3821976, "1648215802.3821976"},
		{0.1, "0.1"},
		{123.0, "123.0"},
		{-2.5, "-2.5"},
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1e15, "1000000000000000.0"},
		{9999999999999998.0, "9999999999999998.0"},
		{1e16, "1e+16"},
		{1.5e16, "1.5e+16"},
		{123456789012345.6, "123456789012345.6"},
		{0.0001, "0.0001"},
		{0.00012, "0.00012"},
		{0.00001, "1e-05"},
		{1.5e-7, "1.5e-07"},
		{1e100, "1e+100"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{9223372036.0, "9223372036.0"},
	}
	for _, tt := range tests {
		if got := FormatFloat(tt.in); got != tt.want {
			t.Errorf("FormatFloat(%v) = %q, want %q", tt.in, got, tt.want)
		}
		// Whatever the form, it must read back as the same float.
		back, err := strconv.ParseFloat(FormatFloat(tt.in), 64)
		if err != nil || back != tt.in {
			t.Errorf("FormatFloat(%v) does not round-trip: %v, %v", tt.in, back, err)
		}
	}
}

func TestAppendStringEscapes(t *testing.T) {
	tests := []struct {
		in, raw, ascii string
	}{
		{"plain", `"plain"`, `"plain"`},
		{`q"b\`, `"q\"b\\"`, `"q\"b\\"`},
		{"<&>", `"<&>"`, `"<&>"`},
		{"a\nb\tc\r\b\f", `"a\nb\tc\r\b\f"`, `"a\nb\tc\r\b\f"`},
		{"\x00\x1f", `"\u0000\u001f"`, `"\u0000\u001f"`},
		{"\x7f", "\"\x7f\"", `"\u007f"`},
		{"héllo ☃", `"héllo ☃"`, `"h\u00e9llo \u2603"`},
		{"😀", `"😀"`, `"\ud83d\ude00"`},
		{"\u2028", "\"\u2028\"", `"\u2028"`},
		{"bad\xffutf8", "\"bad\uFFFDutf8\"", `"bad\ufffdutf8"`},
	}
	for _, tt := range tests {
		if got := string(AppendString(nil, tt.in, false)); got != tt.raw {
			t.Errorf("raw %q = %s, want %s", tt.in, got, tt.raw)
		}
		if got := string(AppendString(nil, tt.in, true)); got != tt.ascii {
			t.Errorf("ascii %q = %s, want %s", tt.in, got, tt.ascii)
		}
	}
}

type inner struct {
	Body string `json:"body"`
}

type base struct {
	Address string  `json:"address"`
	Time    float64 `json:"time"`
}

type post struct {
	base
	Type    string  `json:"type"`
	Content inner   `json:"content"`
	Ref     *string `json:"ref,omitempty"`
}

// TestSerializerDivergence rebuilds the three item_content forms of hashes.json from
// one Go value: Python's ensure_ascii form, the TS/Rust raw form, and checks that the
// Go encoding/json HTML-escaped form is NOT what we produce.
func TestSerializerDivergence(t *testing.T) {
	data, err := os.ReadFile("testdata/hashes.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			ItemContent string `json:"item_content"`
			ItemHash    string `json:"item_hash"`
		} `json:"serializer_divergence"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) != 3 {
		t.Fatalf("want 3 cases, got %d", len(f.Cases))
	}
	v := post{base: base{Address: "0x0000000000000000000000000000000000000000", Time: 1700000000.5},
		Type: "test", Content: inner{Body: "héllo ☃ <&>"}}
	// The content in hashes.json puts "type" before "content": our struct does too.
	for i, opts := range []Options{{ASCII: true}, {}} {
		got, err := opts.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != f.Cases[i].ItemContent {
			t.Errorf("case %d: got %s\nwant %s", i, got, f.Cases[i].ItemContent)
		}
		sum := sha256.Sum256(got)
		if h := hex.EncodeToString(sum[:]); h != f.Cases[i].ItemHash {
			t.Errorf("case %d: hash %s, want %s", i, h, f.Cases[i].ItemHash)
		}
	}
	got, _ := Marshal(v)
	if string(got) == f.Cases[2].ItemContent {
		t.Error("Marshal produced the HTML-escaped form")
	}
}

func TestMarshalShapes(t *testing.T) {
	ref := "abc"
	type tagged struct {
		A   int               `json:"a"`
		B   string            `json:"b,omitempty"`
		C   []int             `json:"c"`
		D   map[string]any    `json:"d,omitempty"`
		E   json.RawMessage   `json:"e,omitempty"`
		F   json.Number       `json:"f,omitempty"`
		G   *float64          `json:"g"`
		H   bool              `json:"-"`
		I   []byte            `json:"i,omitempty"`
		J   map[string]string `json:"j"`
		low int
	}
	tests := []struct {
		name string
		in   any
		opts Options
		want string
	}{
		{"nil", nil, Options{}, `null`},
		{"post", post{base: base{"0xA", 1.0}, Type: "t", Content: inner{"x"}, Ref: &ref}, Options{},
			`{"address":"0xA","time":1.0,"type":"t","content":{"body":"x"},"ref":"abc"}`},
		{"sorted", post{base: base{"0xA", 2.5}, Type: "t"}, Options{SortKeys: true},
			`{"address":"0xA","content":{"body":""},"time":2.5,"type":"t"}`},
		{"tags", tagged{A: 1, C: []int{1, 2}, E: json.RawMessage(" { \"z\" : 1.50 , \"a\" : [ true , null ] } "),
			F: "12.50", I: []byte("hi"), low: 3}, Options{},
			`{"a":1,"c":[1,2],"e":{"z":1.50,"a":[true,null]},"f":12.50,"g":null,"i":"aGk=","j":null}`},
		{"map sorted", map[string]any{"b": 1, "a": []any{1.0, "x"}}, Options{}, `{"a":[1.0,"x"],"b":1}`},
		{"raw ascii", json.RawMessage(`{"k":"é"}`), Options{ASCII: true}, `{"k":"\u00e9"}`},
		{"float32", float32(0.1), Options{}, `0.1`},
		{"nested empty", []any{[]any{}, map[string]any{}}, Options{}, `[[],{}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON: %s", got)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	type cyc struct{ Next *cyc }
	c := &cyc{}
	c.Next = c
	if _, err := Marshal(c); !errors.Is(err, ErrDepth) {
		t.Errorf("cycle: err = %v, want ErrDepth", err)
	}
	for _, v := range []any{math.NaN(), math.Inf(1), make(chan int), json.Number("1e"), json.RawMessage(`{`)} {
		if _, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%v) succeeded, want error", v)
		}
	}
}

func FuzzTranscode(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2,{"b":[null,true,"x"]}]`, `"é"`, `1.5e3`, `{"":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		for _, o := range []Options{{}, {ASCII: true}} {
			out, err := o.Marshal(json.RawMessage(data))
			if err != nil {
				if errors.Is(err, ErrDepth) {
					return
				}
				t.Fatalf("transcode %q: %v", data, err)
			}
			if !json.Valid(out) {
				t.Fatalf("transcode %q gave invalid JSON %q", data, out)
			}
			var a, b any
			_ = json.Unmarshal(data, &a)
			_ = json.Unmarshal(out, &b)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("transcode changed the value: %s → %s", data, out)
			}
		}
	})
}
