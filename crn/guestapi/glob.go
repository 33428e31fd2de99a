package guestapi

import (
	"unicode"
	"unicode/utf8"
)

// MaxPatternLength bounds a ?pattern= in bytes.
const MaxPatternLength = 256

// isWord is Python's str-regex \w: letters, numbers and the underscore.
func isWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r)
}

// ValidKey reports whether key matches upstream's ^\w+$ (Unicode \w, as
// Python's re has it) and is at most MaxKeyLength bytes.
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLength || !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if !isWord(r) {
			return false
		}
	}
	return true
}

// ValidPattern reports whether pattern matches upstream's ^[\w?*^\-]+$ and is
// at most MaxPatternLength bytes. Within it, * matches any run of characters,
// ? one character, and ^ and - only themselves (Redis gives them meaning only
// inside brackets, which the pattern cannot contain).
func ValidPattern(pattern string) bool {
	if pattern == "" || len(pattern) > MaxPatternLength || !utf8.ValidString(pattern) {
		return false
	}
	for _, r := range pattern {
		if !isWord(r) && r != '?' && r != '*' && r != '^' && r != '-' {
			return false
		}
	}
	return true
}

// globMatch matches s against a valid pattern, rune by rune. The iterative
// backtracking on the last * keeps it linear-ish: no exponential blow-up on
// patterns like a*a*a*a*b.
func globMatch(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]) && p[pi] != '*':
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
