package p2p

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrMalformed is the error of a gossip payload that is not a message.
var ErrMalformed = errors.New("p2p: malformed payload")

// DecodePayload returns the JSON of a gossip payload. pyaleph URL-unquotes
// every payload before parsing it, a legacy of clients that percent-encoded
// theirs. Unquoting valid JSON would corrupt any "%41" inside a message's
// content, so the payload is used as is when it is JSON already, and unquoted
// (as Python's urllib.parse.unquote does: invalid escapes stay) only when it
// is not.
func DecodePayload(data []byte) ([]byte, error) {
	if json.Valid(data) {
		return data, nil
	}
	u := unquote(data)
	if !json.Valid(u) {
		return nil, fmt.Errorf("%w: not JSON, even URL-unquoted (%d bytes)", ErrMalformed, len(data))
	}
	return u, nil
}

// unquote decodes %XX escapes like Python's urllib.parse.unquote with errors
// left in place; '+' stays a plus.
func unquote(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			if h, ok1 := unhex(b[i+1]); ok1 {
				if l, ok2 := unhex(b[i+2]); ok2 {
					out = append(out, h<<4|l)
					i += 2
					continue
				}
			}
		}
		out = append(out, b[i])
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
