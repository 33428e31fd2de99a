package evm

import (
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/sha3"
)

// addressTextLen is "0x" plus 40 hex digits.
const addressTextLen = 2 + 40

// ChecksumAddress returns addr ("0x" + 40 hex digits in any case) in its EIP-55
// mixed-case form. It does not check an existing checksum: senders are compared
// case-insensitively, so a wrongly-cased address is still the same account.
func ChecksumAddress(addr string) (string, error) {
	a, err := parseAddress(addr)
	if err != nil {
		return "", fmt.Errorf("evm: %w", err)
	}
	return checksumHex(&a), nil
}

// IsAddress reports whether s is "0x" followed by 40 hex digits, in any case.
func IsAddress(s string) bool {
	_, err := parseAddress(s)
	return err == nil
}

// parseAddress decodes "0x" + 40 hex digits. The prefix may be "0X": pyaleph
// lowercases the whole sender before comparing, prefix included.
func parseAddress(s string) ([20]byte, error) {
	var a [20]byte
	if len(s) != addressTextLen || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return a, fmt.Errorf("%.50q is not an EVM address: want 0x followed by 40 hex digits", s)
	}
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return a, errors.New("not an EVM address: the 40 digits after 0x must be hex")
	}
	return a, nil
}

// checksumHex writes a as "0x" + EIP-55 hex: a letter digit is uppercase when the
// matching nibble of keccak256(lowercase hex) is 8 or more.
func checksumHex(a *[20]byte) string {
	var out [addressTextLen]byte
	out[0], out[1] = '0', 'x'
	lower := out[2:]
	hex.Encode(lower, a[:])
	h := sha3.NewLegacyKeccak256()
	h.Write(lower)
	var sum [32]byte
	h.Sum(sum[:0])
	for i, c := range lower {
		nibble := sum[i/2] >> 4
		if i%2 == 1 {
			nibble = sum[i/2] & 0x0f
		}
		if c >= 'a' && nibble >= 8 {
			lower[i] = c - 'a' + 'A'
		}
	}
	return string(out[:])
}
