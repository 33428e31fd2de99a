package tezos

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/mr-tron/base58"
)

// curve is the signature scheme a key or signature belongs to.
type curve int

const (
	curveGeneric   curve = iota // "sig…": 64 bytes read with the key's curve
	curveEd25519                // tz1, edpk, edsig, edsk
	curveSecp256k1              // tz2, sppk, spsig1
	curveP256                   // tz3, p2pk, p2sig
)

func (c curve) String() string {
	switch c {
	case curveEd25519:
		return "ed25519"
	case curveSecp256k1:
		return "secp256k1"
	case curveP256:
		return "p256"
	}
	return "generic"
}

// kind is what an encoded value holds.
type kind int

const (
	kindAddress kind = iota
	kindPublicKey
	kindSignature
	kindSecretKey
)

func (k kind) String() string {
	switch k {
	case kindAddress:
		return "address"
	case kindPublicKey:
		return "public key"
	case kindSignature:
		return "signature"
	}
	return "secret key"
}

// encoding is one row of the Tezos base58check prefix table: the text prefix, the
// bytes prepended before base58 (chosen by Tezos so that every payload of the given
// length encodes with that text prefix), and the payload length.
type encoding struct {
	text   string
	prefix []byte
	size   int
	kind   kind
	curve  curve
}

// encodings is the subset of the Tezos prefix table that Aleph messages use.
// Checked against every key, address and signature in testdata/messages/tezos.json.
var encodings = []encoding{
	{"tz1", []byte{6, 161, 159}, 20, kindAddress, curveEd25519},
	{"tz2", []byte{6, 161, 161}, 20, kindAddress, curveSecp256k1},
	{"tz3", []byte{6, 161, 164}, 20, kindAddress, curveP256},
	{"edpk", []byte{13, 15, 37, 217}, 32, kindPublicKey, curveEd25519},
	{"sppk", []byte{3, 254, 226, 86}, 33, kindPublicKey, curveSecp256k1},
	{"p2pk", []byte{3, 178, 139, 127}, 33, kindPublicKey, curveP256},
	{"edsig", []byte{9, 245, 205, 134, 18}, 64, kindSignature, curveEd25519},
	{"spsig1", []byte{13, 115, 101, 19, 63}, 64, kindSignature, curveSecp256k1},
	{"p2sig", []byte{54, 240, 44, 52}, 64, kindSignature, curveP256},
	{"sig", []byte{4, 130, 43}, 64, kindSignature, curveGeneric},
	{"edsk", []byte{13, 15, 58, 7}, 32, kindSecretKey, curveEd25519},  // seed
	{"edsk", []byte{43, 246, 78, 7}, 64, kindSecretKey, curveEd25519}, // seed ‖ public key
}

// maxEncodedLength bounds the text handed to the base58 decoder, whose cost grows
// with the square of the input; the longest value in the table is 99 characters.
const maxEncodedLength = 128

var (
	errChecksum      = errors.New("bad base58check checksum")
	errUnknownPrefix = errors.New("unknown prefix")
	errLength        = errors.New("wrong length")
)

// encode returns the base58check text of payload under e's prefix.
func (e *encoding) encode(payload []byte) string {
	b := make([]byte, 0, len(e.prefix)+len(payload)+4)
	b = append(b, e.prefix...)
	b = append(b, payload...)
	return base58Check(b)
}

// base58Check appends the 4-byte double-sha256 checksum and encodes in base58.
func base58Check(b []byte) string {
	sum := checksum(b)
	return base58.Encode(append(b[:len(b):len(b)], sum[:]...))
}

func checksum(b []byte) [4]byte {
	h1 := sha256.Sum256(b)
	h2 := sha256.Sum256(h1[:])
	return [4]byte(h2[:4])
}

// decode parses s as a base58check value of kind want and returns its table row and
// payload. The byte prefix, the payload length and the text prefix must all agree
// (pytezos matches on the text prefix and length only; a valid value satisfies both).
func decode(s string, want kind) (*encoding, []byte, error) {
	if s == "" {
		return nil, nil, errors.New("empty")
	}
	if len(s) > maxEncodedLength {
		return nil, nil, fmt.Errorf("%w: %d characters, longer than any tezos %s", errLength, len(s), want)
	}
	raw, err := base58.Decode(s)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid base58: %w", err)
	}
	if len(raw) < 5 {
		return nil, nil, fmt.Errorf("%w: %d bytes decoded, too short for a checksum", errLength, len(raw))
	}
	body, sum := raw[:len(raw)-4], raw[len(raw)-4:]
	if want := checksum(body); !bytes.Equal(sum, want[:]) {
		return nil, nil, errChecksum
	}
	var prefixMatch *encoding
	for i := range encodings {
		e := &encodings[i]
		if e.kind != want || !bytes.HasPrefix(body, e.prefix) {
			continue
		}
		if len(body)-len(e.prefix) != e.size {
			prefixMatch = e
			continue
		}
		if strings.HasPrefix(s, e.text) {
			return e, body[len(e.prefix):], nil
		}
	}
	if prefixMatch != nil {
		return nil, nil, fmt.Errorf("%w: %s carries %d bytes, want %d", errLength, prefixMatch.text,
			len(body)-len(prefixMatch.prefix), prefixMatch.size)
	}
	return nil, nil, fmt.Errorf("%w %q for a tezos %s", errUnknownPrefix, truncate(s, 6), want)
}

// lookup returns the table row for kind k, curve c and payload size.
func lookup(k kind, c curve, size int) *encoding {
	for i := range encodings {
		e := &encodings[i]
		if e.kind == k && e.curve == c && e.size == size {
			return e
		}
	}
	return nil
}

// truncate shortens s for error messages, so that hostile input cannot make them huge.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
