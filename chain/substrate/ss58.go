package substrate

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mr-tron/base58"
	"golang.org/x/crypto/blake2b"
)

// SS58 limits.
const (
	// MaxFormat is the largest SS58 address format (network prefix): 14 bits.
	MaxFormat = 16383
	// DefaultFormat is the generic Substrate format, the one aleph clients use.
	DefaultFormat = 42

	ss58ChecksumLen = 2
	// maxSS58Text is the longest base58 text of a 2-byte prefix, a 32-byte key and
	// the checksum (36 bytes); base58 decoding is quadratic, so longer input is
	// rejected before decoding.
	maxSS58Text = 50
)

// ss58Context is hashed in front of the payload to make the checksum.
const ss58Context = "SS58PRE"

// reservedFormat reports whether f is one of the formats the SS58 registry
// reserves (46 and 47), which neither substrate nor substrate-interface accept.
func reservedFormat(f uint16) bool { return f == 46 || f == 47 }

// EncodeSS58 returns the SS58 address of a 32-byte public key in the given format
// (0 for Polkadot, 2 for Kusama, 42 for generic Substrate, up to MaxFormat).
func EncodeSS58(format uint16, key [32]byte) (string, error) {
	if format > MaxFormat {
		return "", fmt.Errorf("ss58 format %d is over %d", format, MaxFormat)
	}
	if reservedFormat(format) {
		return "", fmt.Errorf("ss58 format %d is reserved", format)
	}
	b := make([]byte, 0, 2+len(key)+ss58ChecksumLen)
	if format < 64 {
		b = append(b, byte(format))
	} else {
		// 14 bits in two bytes, the first marked by 0b01 in its top bits: the first
		// byte holds bits 2..7 of the format, the second bits 0..1 at its top and
		// bits 8..13 at its bottom.
		b = append(b, 0x40|byte(format&0xfc)>>2, byte(format>>8)|byte(format&0x03)<<6)
	}
	b = append(b, key[:]...)
	sum := ss58Checksum(b)
	b = append(b, sum[:ss58ChecksumLen]...)
	return base58.Encode(b), nil
}

// DecodeSS58 returns the format and the 32-byte public key of an SS58 address,
// checking its length and checksum. Addresses of other payload sizes (account
// indices, 33-byte ECDSA keys) are errors: only sr25519 and ed25519 keys are 32 bytes.
func DecodeSS58(address string) (format uint16, key [32]byte, err error) {
	if address == "" {
		return 0, key, errors.New("empty ss58 address")
	}
	if len(address) > maxSS58Text {
		return 0, key, fmt.Errorf("ss58 address has %d characters, over %d", len(address), maxSS58Text)
	}
	b, err := base58.Decode(address)
	if err != nil {
		return 0, key, fmt.Errorf("ss58 address is not base58: %w", err)
	}
	var prefixLen int
	switch {
	case len(b) == 0:
		return 0, key, errors.New("empty ss58 address")
	case b[0] < 64:
		prefixLen, format = 1, uint16(b[0])
	case b[0] < 128:
		if len(b) < 2 {
			return 0, key, errors.New("ss58 address is too short")
		}
		prefixLen = 2
		format = uint16(b[0]<<2|b[1]>>6) | uint16(b[1]&0x3f)<<8
	default:
		return 0, key, fmt.Errorf("ss58 address starts with byte %#x, not a valid prefix", b[0])
	}
	if want := prefixLen + len(key) + ss58ChecksumLen; len(b) != want {
		return 0, key, fmt.Errorf("ss58 address decodes to %d bytes, want %d for a 32-byte key", len(b), want)
	}
	if reservedFormat(format) {
		return 0, key, fmt.Errorf("ss58 format %d is reserved", format)
	}
	body, check := b[:len(b)-ss58ChecksumLen], b[len(b)-ss58ChecksumLen:]
	if sum := ss58Checksum(body); !bytes.Equal(sum[:ss58ChecksumLen], check) {
		return 0, key, errors.New("ss58 address checksum does not match")
	}
	copy(key[:], body[prefixLen:])
	return format, key, nil
}

// ss58Checksum is blake2b-512("SS58PRE" ‖ prefix ‖ key); addresses keep its first bytes.
func ss58Checksum(body []byte) [blake2b.Size]byte {
	buf := make([]byte, 0, len(ss58Context)+len(body))
	buf = append(buf, ss58Context...)
	buf = append(buf, body...)
	return blake2b.Sum512(buf)
}
