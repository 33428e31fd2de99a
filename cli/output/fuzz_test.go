package output

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzSanitize checks that sanitized text is valid UTF-8 without control
// characters, whatever a node sends.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[2J", "a\tb\nc", "\xff\xfe", "\u009b31m", "é\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Sanitize(%q) = %q is not valid UTF-8", s, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("Sanitize(%q) = %q keeps control character %U", s, out, r)
			}
		}
	})
}
