package output

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		rows    [][]string
		want    string
	}{
		{
			"aligned",
			[]string{"HASH", "TYPE", "CHANNEL"},
			[][]string{{"abc", "POST", "TEST"}, {"abcdef", "AGGREGATE", ""}},
			"HASH    TYPE       CHANNEL\n" +
				"abc     POST       TEST\n" +
				"abcdef  AGGREGATE  -\n",
		},
		{
			"short and long rows",
			[]string{"A", "B"},
			[][]string{{"1"}, {"2", "3", "dropped"}},
			"A  B\n1  -\n2  3\n",
		},
		{
			"control characters are neutralized",
			[]string{"NAME", "VALUE"},
			[][]string{{"x\ty", "a\nb\x1b[31mred\x07"}},
			"NAME  VALUE\nx y   a b\\x1b[31mred\\a\n",
		},
		{"no rows", []string{"ONLY"}, nil, "ONLY\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable(tc.headers...)
			for _, r := range tc.rows {
				tb.Row(r...)
			}
			if tb.Len() != len(tc.rows) {
				t.Errorf("Len = %d", tb.Len())
			}
			var b bytes.Buffer
			if err := tb.Write(&b); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	var b bytes.Buffer
	if err := Fields(&b, [][2]string{{"status", "processed"}, {"item hash", "abc"}, {"channel", ""}}); err != nil {
		t.Fatal(err)
	}
	want := "status     processed\nitem hash  abc\nchannel    -\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestSanitize(t *testing.T) {
	tests := map[string]string{
		"plain":            "plain",
		"héllo ✓":          "héllo ✓",
		"a\tb\r\nc":        "a b  c",
		"\x1b]0;title\x07": `\x1b]0;title\a`,
		"\x7f":             `\x7f`,
		"\u009b":           `\u009b`,
		"bad\xffutf8":      `bad\xffutf8`,
		"line\u2028sep":    `line\u2028sep`,
	}
	for in, want := range tests {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer string", 5, "a lo…"},
		{"ééééééé", 3, "éé…"},
		{"anything", 0, "anything"},
	}
	for _, tc := range tests {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestJSONForms(t *testing.T) {
	var b bytes.Buffer
	if err := RawJSON(&b, []byte(` {"b":1.50,"a":[1e3, "<x>"]} `)); err != nil {
		t.Fatal(err)
	}
	// Key order and number text are kept.
	want := "{\n  \"b\": 1.50,\n  \"a\": [\n    1e3,\n    \"<x>\"\n  ]\n}\n"
	if b.String() != want {
		t.Errorf("RawJSON = %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := CompactJSON(&b, []byte("{\n \"a\" : 1 }")); err != nil || b.String() != "{\"a\":1}\n" {
		t.Errorf("CompactJSON = %q, %v", b.String(), err)
	}
	b.Reset()
	if err := JSON(&b, map[string]string{"k": "<&>"}); err != nil || b.String() != "{\n  \"k\": \"<&>\"\n}\n" {
		t.Errorf("JSON = %q, %v", b.String(), err)
	}
	for _, bad := range []string{"", "{", "nope"} {
		if err := RawJSON(&b, []byte(bad)); err == nil {
			t.Errorf("RawJSON(%q) accepted", bad)
		}
	}
}

func TestTime(t *testing.T) {
	if got := Time(time.Time{}); got != "-" {
		t.Errorf("zero = %q", got)
	}
	tm := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600))
	if got := Time(tm); got != "2026-03-04 04:06:07" {
		t.Errorf("Time = %q", got)
	}
	if strings.Contains(Time(tm), "+") {
		t.Error("zone shown")
	}
}
