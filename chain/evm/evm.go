// Package evm verifies and makes the EIP-191 personal_sign signatures of ETH and
// every EVM chain code (ETHERLINK, ARB, BASE, …): keccak256 of
// "\x19Ethereum Signed Message:\n" + decimal length + verification buffer, signed
// with secp256k1 as a 65-byte r‖s‖v value written in hex. A verifier recovers the
// public key from the signature and compares its address with the sender.
//
// It also provides Account, a message.Signer with keys from hex, from randomness
// or from a BIP-39 mnemonic (BIP-32/44 derivation, m/44'/60'/0'/0/0 by default).
//
// Everything is pure Go (decred secp256k1, x/crypto sha3); cgo is never needed.
package evm

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"

	"golang.org/x/crypto/sha3"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

// SignatureSize is the length of a raw signature, r‖s‖v.
const SignatureSize = 65

// maxSignatureText bounds the signature text before any decoding: "0x" and 130
// hex digits.
const maxSignatureText = 2 + 2*SignatureSize

// personalPrefix starts every EIP-191 version 0x45 ("E") message.
const personalPrefix = "\x19Ethereum Signed Message:\n"

// Verifier checks EIP-191 signatures for the EVM chain codes. The zero value is
// ready to use.
type Verifier struct{}

// Register binds every EVM chain code of message.EVMChains to a Verifier.
func Register(r *chain.Registry) {
	for _, c := range message.EVMChains {
		r.Register(c, Verifier{})
	}
}

// IsEVMChain reports whether c is signed with EIP-191 (ETH and the EVM L1/L2 codes).
func IsEVMChain(c message.Chain) bool {
	for _, k := range message.EVMChains {
		if k == c {
			return true
		}
	}
	return false
}

// Verify checks that m.Signature is an EIP-191 signature of m's verification
// buffer by the key whose address is m.Sender. The address comparison ignores
// case, as pyaleph's does. Errors carry code 1 and name "sender", "signature",
// or the field that makes the buffer unsignable.
func (Verifier) Verify(m *message.Message) error {
	// The buffer is signed as text by every EVM wallet (pyaleph decodes it as
	// UTF-8 before hashing), so bytes that are not UTF-8 cannot carry a valid signature.
	for _, f := range [...]struct{ name, value string }{
		{"chain", string(m.Chain)}, {"type", string(m.Type)}, {"item_hash", m.ItemHash},
	} {
		if !utf8.ValidString(f.value) {
			return chain.SignatureError(f.name, "not valid UTF-8, so it cannot be signed as EIP-191 text")
		}
	}
	return Verify(m.VerificationBuffer(), m.Sender, m.Signature)
}

// Verify checks that signature (hex, with or without 0x) is an EIP-191 signature
// of buf by the address sender ("0x" + 40 hex digits, any case). It returns nil or
// a code-1 *message.Error naming "sender" or "signature".
func Verify(buf []byte, sender, signature string) error {
	want, err := parseAddress(sender)
	if err != nil {
		return chain.SignatureError("sender", "%v", err)
	}
	sig, err := decodeSignature(signature)
	if err != nil {
		return err
	}
	got, err := recoverAddress(buf, &sig)
	if err != nil {
		return err
	}
	if got != want {
		return chain.SignatureError("signature", "signed by %s, not by the sender %s", checksumHex(&got), checksumHex(&want))
	}
	return nil
}

// RecoverAddress returns the EIP-55 address of the key that made sig, a raw
// 65-byte r‖s‖v EIP-191 signature of buf. v may be 27/28, 0/1, or an EIP-155
// value (35 and up), as eth_account accepts. Errors name "signature".
func RecoverAddress(buf []byte, sig []byte) (string, error) {
	if len(sig) != SignatureSize {
		return "", chain.SignatureError("signature", "%d bytes, want %d (r‖s‖v)", len(sig), SignatureSize)
	}
	addr, err := recoverAddress(buf, (*[SignatureSize]byte)(sig))
	if err != nil {
		return "", err
	}
	return checksumHex(&addr), nil
}

// HashMessage returns the EIP-191 personal_sign digest of buf:
// keccak256("\x19Ethereum Signed Message:\n" + decimal(len(buf)) + buf).
func HashMessage(buf []byte) [32]byte {
	var lenText [20]byte
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(personalPrefix))
	h.Write(strconv.AppendInt(lenText[:0], int64(len(buf)), 10))
	h.Write(buf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// recoverAddress recovers the signer's 20-byte address from a raw signature.
func recoverAddress(buf []byte, sig *[SignatureSize]byte) ([20]byte, error) {
	recid, err := recoveryID(sig[64])
	if err != nil {
		return [20]byte{}, err
	}
	hash := HashMessage(buf)
	pub, err := recoverPublicKey(&hash, (*[64]byte)(sig[:64]), recid)
	if err != nil {
		return [20]byte{}, chain.SignatureError("signature", "public key recovery failed: %v", err)
	}
	return pubkeyAddress(&pub), nil
}

// recoveryID maps the v byte to the recovery id 0 or 1. eth_account (and so
// pyaleph) accepts 27/28, 0/1 and EIP-155 values v = 35 + 2·chainID + parity;
// anything else (2…26, 29…34) is malformed.
func recoveryID(v byte) (byte, error) {
	switch {
	case v == 0 || v == 1:
		return v, nil
	case v == 27 || v == 28:
		return v - 27, nil
	case v >= 35:
		return (v - 35) % 2, nil
	}
	return 0, chain.SignatureError("signature", "recovery byte v=%d, want 27 or 28 (or 0, 1, or an EIP-155 value of 35 and up)", v)
}

// decodeSignature parses the signature text: 130 hex digits of r‖s‖v, with an
// optional 0x (as eth_account's HexBytes accepts). Odd-length text is rejected:
// HexBytes would left-pad it, but no signer writes a signature that way.
func decodeSignature(s string) ([SignatureSize]byte, error) {
	var sig [SignatureSize]byte
	if len(s) > maxSignatureText {
		return sig, chain.SignatureError("signature", "%d characters, want 0x and %d hex digits", len(s), 2*SignatureSize)
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	switch {
	case s == "":
		return sig, chain.SignatureError("signature", "empty")
	case len(s)%2 != 0:
		return sig, chain.SignatureError("signature", "odd number of hex digits (%d)", len(s))
	case len(s) != 2*SignatureSize:
		return sig, chain.SignatureError("signature", "%d bytes, want %d (r‖s‖v)", len(s)/2, SignatureSize)
	}
	if _, err := hex.Decode(sig[:], []byte(s)); err != nil {
		return sig, chain.SignatureError("signature", "not hex: %v", err)
	}
	return sig, nil
}

// pubkeyAddress is the last 20 bytes of keccak256 of the uncompressed key X‖Y.
func pubkeyAddress(xy *[64]byte) [20]byte {
	h := sha3.NewLegacyKeccak256()
	h.Write(xy[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return [20]byte(sum[12:])
}
