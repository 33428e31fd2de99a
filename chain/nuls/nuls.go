// Package nuls verifies and signs Aleph messages from NULS2 keys (chain code NULS2).
//
// The signature is base64 of 65 bytes in Electrum order, [27+recid]‖r‖s, over
// sha256("\x18NULS Signed Message:\n" ‖ varint(len(buf)) ‖ buf) (a single sha256,
// Bitcoin varint). The public key is recovered, and the address rebuilt from it
// with the chain id read from the sender must equal the sender:
//
//	hash = int16_le(chainId) ‖ 0x01 ‖ ripemd160(sha256(compressed key))
//	address = prefix ‖ ascii_letters[len(prefix)-1] ‖ base58(hash ‖ xor(hash))
//
// with prefix "NULS" for chain 1 ("NULSd…") and "tNULS" for chain 2 ("tNULSe…"), the
// only chains the upstream library knows.
//
// Legacy NULS (v1, chain code NULS) is not implemented: that 2019 chain is dead and
// its scheme signs a Python bytes repr. Register leaves NULS unregistered, so the
// registry rejects such messages as an unsupported chain (code 0).
package nuls

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/mr-tron/base58"
	"golang.org/x/crypto/ripemd160" // deprecated upstream, but hash160 is what the chain uses

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

// Chain ids with a known address prefix.
const (
	MainnetChainID = 1 // "NULSd…"
	TestnetChainID = 2 // "tNULSe…"
)

const (
	magic         = "\x18NULS Signed Message:\n"
	asciiLetters  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	addressType   = 1  // a plain account, the only type the upstream library builds
	hashLen       = 23 // chain id (2) ‖ type (1) ‖ hash160 (20)
	sigLen        = 65
	electrumBase  = 27
	maxSigTextLen = 128 // base64 of 65 bytes is 88 characters
)

// Verifier checks NULS2 signatures. The zero value is ready to use.
type Verifier struct{}

// Register binds NULS2 to the NULS2 verifier. NULS (v1) stays unregistered.
func Register(r *chain.Registry) {
	r.Register(message.ChainNULS2, Verifier{})
}

// Digest returns the hash a NULS2 wallet signs for buf.
func Digest(buf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(magic))
	h.Write(appendVarint(nil, uint64(len(buf))))
	h.Write(buf)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// appendVarint appends n as a Bitcoin CompactSize integer.
func appendVarint(b []byte, n uint64) []byte {
	switch {
	case n < 0xfd:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(b, 0xfd), uint16(n))
	case n <= 0xffffffff:
		return binary.LittleEndian.AppendUint32(append(b, 0xfe), uint32(n))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xff), n)
}

// Verify checks that m.Signature is a valid recoverable signature of m's
// verification buffer by the key behind m.Sender.
func (Verifier) Verify(m *message.Message) error {
	chainID, err := senderChainID(m.Sender)
	if err != nil {
		return err
	}
	compact, err := decodeSignature(m.Signature)
	if err != nil {
		return err
	}
	digest := Digest(m.VerificationBuffer())
	pub, _, err := ecdsa.RecoverCompact(compact, digest[:])
	if err != nil {
		return chain.SignatureError("signature", "cannot recover a public key: %v", err)
	}
	addr, err := address(chainID, pub)
	if err != nil {
		return chain.SignatureError("sender", "%v", err)
	}
	if addr != m.Sender {
		return chain.SignatureError("signature", "signed by %s, not by the sender", addr)
	}
	return nil
}

// senderChainID reads the chain id from the sender's decoded hash, as the upstream
// library does: the prefix and the letter after it are skipped, not checked, since
// the rebuilt address is compared with the whole sender afterwards.
func senderChainID(sender string) (uint16, error) {
	if len(sender) > message.MaxSenderLength {
		return 0, chain.SignatureError("sender", "longer than %d bytes", message.MaxSenderLength)
	}
	var body string
	switch {
	case strings.HasPrefix(sender, "NULS") && len(sender) > len("NULS")+1:
		body = sender[len("NULS")+1:]
	case strings.HasPrefix(sender, "tNULS") && len(sender) > len("tNULS")+1:
		body = sender[len("tNULS")+1:]
	default:
		return 0, chain.SignatureError("sender", "want a NULS2 address starting with NULS or tNULS")
	}
	raw, err := base58.Decode(body)
	if err != nil {
		return 0, chain.SignatureError("sender", "not base58 after the prefix: %v", err)
	}
	if len(raw) != hashLen+1 {
		return 0, chain.SignatureError("sender", "decodes to %d bytes, want %d", len(raw), hashLen+1)
	}
	id := binary.LittleEndian.Uint16(raw[:2])
	if _, err := prefix(id); err != nil {
		return 0, chain.SignatureError("sender", "%v", err)
	}
	return id, nil
}

func prefix(chainID uint16) (string, error) {
	switch chainID {
	case MainnetChainID:
		return "NULS", nil
	case TestnetChainID:
		return "tNULS", nil
	}
	return "", fmt.Errorf("unsupported NULS chain id %d, want %d or %d", chainID, MainnetChainID, TestnetChainID)
}

// decodeSignature turns the base64 Electrum signature into decred's compact layout,
// [27+4+recid]‖r‖s. Like the upstream library, only 27..30 is accepted as the
// first byte: the +4 "compressed" flag is not part of NULS2 signatures.
func decodeSignature(s string) ([]byte, error) {
	if len(s) > maxSigTextLen {
		return nil, chain.SignatureError("signature", "%d characters, over the %d-character limit", len(s), maxSigTextLen)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, chain.SignatureError("signature", "not base64: %v", err)
	}
	if len(raw) != sigLen {
		return nil, chain.SignatureError("signature", "decodes to %d bytes, want %d", len(raw), sigLen)
	}
	if raw[0] < electrumBase || raw[0] > electrumBase+3 {
		return nil, chain.SignatureError("signature", "recovery byte %d, want 27 to 30", raw[0])
	}
	raw[0] += 4
	return raw, nil
}

// Address returns the NULS2 address of a public key (33-byte compressed or 65-byte
// uncompressed; the address always hashes the compressed form) on chain 1 or 2.
func Address(chainID uint16, pubKey []byte) (string, error) {
	pub, err := secp256k1.ParsePubKey(pubKey)
	if err != nil {
		return "", fmt.Errorf("nuls: public key: %w", err)
	}
	addr, err := address(chainID, pub)
	if err != nil {
		return "", fmt.Errorf("nuls: %w", err)
	}
	return addr, nil
}

func address(chainID uint16, pub *secp256k1.PublicKey) (string, error) {
	p, err := prefix(chainID)
	if err != nil {
		return "", err
	}
	sha := sha256.Sum256(pub.SerializeCompressed())
	rh := ripemd160.New()
	rh.Write(sha[:])
	h := make([]byte, 0, hashLen+1)
	h = binary.LittleEndian.AppendUint16(h, chainID)
	h = append(h, addressType)
	h = rh.Sum(h)
	var x byte
	for _, c := range h {
		x ^= c
	}
	h = append(h, x)
	return p + asciiLetters[len(p)-1:len(p)] + base58.Encode(h), nil
}
