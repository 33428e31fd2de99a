// Package solana verifies and makes the ed25519 signatures of Solana (SOL) and
// Eclipse (ES) messages.
//
// The envelope's signature field is JSON text:
//
//	{"signature": "<base58 64-byte ed25519 signature>", "publicKey": "<base58 32-byte key>", "version": 1}
//
// with "version" optional. The public key must be the sender, character for
// character, and the signature covers the raw verification buffer with no prefix.
// Python clients write the object with spaces and publicKey first, TypeScript
// compactly with signature first, and API answers may nest it as an object; all of
// them are parsed, whatever the key order and spacing.
package solana

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/ed25519strict"
	"github.com/go-aleph/go-aleph/message"
)

// Longest base58 texts of the decoded sizes; checked before decoding because base58
// decoding is quadratic in the input length.
const (
	maxPublicKeyText = 44 // base58 of 32 bytes
	maxSignatureText = 88 // base58 of 64 bytes
)

// Verifier checks SOL and ES signatures.
type Verifier struct{}

// Verify checks m's signature over its verification buffer and that the signing
// key is m's sender.
func (Verifier) Verify(m *message.Message) error {
	return VerifySignature(m.VerificationBuffer(), m.Sender, m.Signature)
}

// Register binds SOL and ES to the ed25519 verifier.
func Register(r *chain.Registry) {
	r.Register(message.ChainSOL, Verifier{})
	r.Register(message.ChainES, Verifier{})
}

// VerifySignature checks that signature, the JSON text of an envelope's signature
// field, is sender's ed25519 signature of buf. Errors are code-1 *message.Error
// values naming "signature", one of its sub-fields, or "sender".
func VerifySignature(buf []byte, sender, signature string) error {
	sig, err := parseSignature(signature)
	if err != nil {
		return err
	}
	// Compared as text, before decoding, as pyaleph does: another spelling of the
	// same key is not the sender.
	if sig.publicKey != sender {
		return chain.SignatureError("sender", "sender %q is not the signature's publicKey %q",
			chain.Clip(sender), chain.Clip(sig.publicKey))
	}
	pub, err := decodeBase58(sig.publicKey, ed25519.PublicKeySize, maxPublicKeyText)
	if err != nil {
		return chain.SignatureError("signature.publicKey", "%v", err)
	}
	raw, err := decodeBase58(sig.signature, ed25519.SignatureSize, maxSignatureText)
	if err != nil {
		return chain.SignatureError("signature.signature", "%v", err)
	}
	if !ed25519strict.Verify(pub, buf, raw) {
		return chain.SignatureError("signature", "ed25519 signature does not verify for %s", chain.Clip(sender))
	}
	return nil
}

// signatureFields is the parsed signature object, still as text.
type signatureFields struct {
	signature string
	publicKey string
}

// parseSignature reads the signature JSON. Keys are matched exactly (encoding/json
// would match them case-insensitively into a struct); a repeated key keeps its last
// value, as Python's json.loads does.
func parseSignature(text string) (signatureFields, error) {
	var sf signatureFields
	if len(text) > message.MaxSignatureLength {
		return sf, chain.SignatureError("signature", "longer than %d bytes", message.MaxSignatureLength)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &obj); err != nil || obj == nil {
		return sf, chain.SignatureError("signature", "not a JSON object with signature and publicKey: %q", chain.Clip(text))
	}
	var err error
	if sf.signature, err = stringField(obj, "signature"); err != nil {
		return sf, err
	}
	if sf.publicKey, err = stringField(obj, "publicKey"); err != nil {
		return sf, err
	}
	if raw, ok := obj["version"]; ok && !isOne(raw) {
		return sf, chain.SignatureError("signature.version", "unsupported version %s, only 1 is known", chain.Clip(string(raw)))
	}
	return sf, nil
}

// stringField returns obj[key] as a string; absent, null and non-string values are
// errors naming "signature.<key>".
func stringField(obj map[string]json.RawMessage, key string) (string, error) {
	raw, ok := obj[key]
	if !ok {
		return "", chain.SignatureError("signature."+key, "missing")
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", chain.SignatureError("signature."+key, "must be a string, got %s", chain.Clip(string(raw)))
	}
	return s, nil
}

// isOne reports whether raw is a JSON number equal to 1. pyaleph compares with
// Python's ==, so 1.0 and 1e0 pass too; strings, booleans and null do not.
func isOne(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return false
	}
	var f float64
	return json.Unmarshal(raw, &f) == nil && f == 1
}

// decodeBase58 decodes s, which must give exactly size bytes.
func decodeBase58(s string, size, maxText int) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("empty")
	}
	if len(s) > maxText {
		return nil, fmt.Errorf("%d characters, too long for %d bytes of base58", len(s), size)
	}
	b, err := base58.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("invalid base58 %q: %w", chain.Clip(s), err)
	}
	if len(b) != size {
		return nil, fmt.Errorf("base58 %q decodes to %d bytes, want %d", chain.Clip(s), len(b), size)
	}
	return b, nil
}
