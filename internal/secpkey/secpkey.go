// Package secpkey generates and parses secp256k1 private keys for the chain
// packages that sign with them (avalanche, cosmos, evm, nuls).
//
// Parsing is strict: a key is exactly 64 hex digits, optionally after a lowercase
// "0x", and must be a scalar in [1, N-1]. decred's PrivKeyFromBytes would silently
// reduce a larger value mod N, giving a different key than the one written. Errors
// never quote the input, since it is secret, and callers add their own prefix.
package secpkey

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// hexLen is the number of hex digits in a private key.
const hexLen = 2 * secp256k1.PrivKeyBytesLen

// The errors ParseHex and ParseHexDigits return, in the order they are checked.
// ErrLength is wrapped with the length found; the others are returned as they are.
var (
	ErrLength     = errors.New("want 64 hex digits")
	ErrNotHex     = errors.New("not hex")
	ErrOutOfRange = errors.New("out of range for secp256k1")
)

// ErrNilReader is Generate's error for a nil random source. Generate has no
// default source: callers decide what nil means before calling it.
var ErrNilReader = errors.New("nil random source")

// Generate returns a fresh key read from rand, which must be a cryptographically
// secure source such as crypto/rand.Reader. It returns ErrNilReader when rand is
// nil, and otherwise any error unchanged from rand.
func Generate(rand io.Reader) (*secp256k1.PrivateKey, error) {
	if rand == nil {
		return nil, ErrNilReader
	}
	return secp256k1.GeneratePrivateKeyFromRand(rand)
}

// ParseHex parses a key written as 64 hex digits of either case, optionally after
// one lowercase "0x". It does not trim white space.
func ParseHex(s string) (*secp256k1.PrivateKey, error) {
	return ParseHexDigits(strings.TrimPrefix(s, "0x"))
}

// ParseHexDigits parses a key written as exactly 64 hex digits of either case,
// with no prefix, for callers that handle prefixes themselves. The key must be in
// [1, N-1].
func ParseHexDigits(s string) (*secp256k1.PrivateKey, error) {
	if len(s) != hexLen {
		return nil, fmt.Errorf("%w, got %d characters", ErrLength, len(s))
	}
	src := []byte(s)
	var b [secp256k1.PrivKeyBytesLen]byte
	defer clear(src)
	defer clear(b[:])
	// hex's error would quote the offending digit, so it is dropped.
	if _, err := hex.Decode(b[:], src); err != nil {
		return nil, ErrNotHex
	}
	var k secp256k1.ModNScalar
	if overflow := k.SetBytes(&b); overflow != 0 || k.IsZero() {
		return nil, ErrOutOfRange
	}
	return secp256k1.NewPrivateKey(&k), nil
}
