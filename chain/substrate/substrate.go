// Package substrate verifies and makes the sr25519 signatures of Substrate (DOT)
// messages, and encodes and decodes SS58 addresses.
//
// The envelope's signature field is JSON text:
//
//	{"curve": "sr25519", "data": "0x<64-byte signature in hex>"}
//
// where "curve" defaults to sr25519 and the 0x is optional (the Python SDK leaves it
// out, the TypeScript SDK writes it). The public key is the SS58-decoded sender, in
// any network format. The signature is a schnorrkel signature with signing context
// "substrate" over the raw verification buffer or, failing that, over
// "<Bytes>" + buffer + "</Bytes>", the wrapping the polkadot.js extension's signRaw
// adds; substrate-interface's Keypair.verify, which pyaleph uses, tries both.
package substrate

import (
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/ChainSafe/go-schnorrkel"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

// CurveSR25519 is the only curve DOT signatures use.
const CurveSR25519 = "sr25519"

// signingContext is the schnorrkel context of substrate's sr25519 signatures.
const signingContext = "substrate"

// The polkadot.js extension wraps raw payloads in these before signing.
const (
	bytesOpen  = "<Bytes>"
	bytesClose = "</Bytes>"
)

// Verifier checks DOT signatures.
type Verifier struct{}

// Verify checks m's signature over its verification buffer (raw or
// <Bytes>-wrapped) with the key of m's SS58 sender.
func (Verifier) Verify(m *message.Message) error {
	return VerifySignature(m.VerificationBuffer(), m.Sender, m.Signature)
}

// Register binds DOT to the sr25519 verifier.
func Register(r *chain.Registry) {
	r.Register(message.ChainDOT, Verifier{})
}

// VerifySignature checks that signature, the JSON text of an envelope's signature
// field, is an sr25519 signature of buf, raw or <Bytes>-wrapped, by the key of the
// SS58 address sender. Errors are code-1 *message.Error values naming "signature",
// one of its sub-fields, or "sender".
func VerifySignature(buf []byte, sender, signature string) error {
	sig, err := parseSignature(signature)
	if err != nil {
		return err
	}
	_, key, err := DecodeSS58(sender)
	if err != nil {
		return chain.SignatureError("sender", "%q: %v", chain.Clip(sender), err)
	}
	pub, err := schnorrkel.NewPublicKey(key)
	if err != nil {
		return chain.SignatureError("sender", "key of %s is not a ristretto255 point: %v", chain.Clip(sender), err)
	}
	ok, err := pub.Verify(sig, schnorrkel.NewSigningContext([]byte(signingContext), buf))
	if err != nil {
		// Only the identity key errors; no signature can be checked against it.
		return chain.SignatureError("sender", "key of %s cannot verify: %v", chain.Clip(sender), err)
	}
	if !ok {
		wrapped := make([]byte, 0, len(bytesOpen)+len(buf)+len(bytesClose))
		wrapped = append(wrapped, bytesOpen...)
		wrapped = append(wrapped, buf...)
		wrapped = append(wrapped, bytesClose...)
		ok, _ = pub.Verify(sig, schnorrkel.NewSigningContext([]byte(signingContext), wrapped))
	}
	if !ok {
		return chain.SignatureError("signature", "sr25519 signature does not verify for %s, raw or <Bytes>-wrapped", chain.Clip(sender))
	}
	return nil
}

// parseSignature reads the signature JSON and decodes its data. Keys are matched
// exactly (encoding/json would match them case-insensitively into a struct); a
// repeated key keeps its last value, as Python's json.loads does.
func parseSignature(text string) (*schnorrkel.Signature, error) {
	if len(text) > message.MaxSignatureLength {
		return nil, chain.SignatureError("signature", "longer than %d bytes", message.MaxSignatureLength)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &obj); err != nil || obj == nil {
		return nil, chain.SignatureError("signature", "not a JSON object with curve and data: %q", chain.Clip(text))
	}
	if raw, ok := obj["curve"]; ok {
		var curve string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &curve) != nil || curve != CurveSR25519 {
			return nil, chain.SignatureError("signature.curve", "unsupported curve %s, only %q", chain.Clip(string(raw)), CurveSR25519)
		}
	}
	raw, ok := obj["data"]
	if !ok {
		return nil, chain.SignatureError("signature.data", "missing")
	}
	var data string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &data) != nil {
		return nil, chain.SignatureError("signature.data", "must be a hex string, got %s", chain.Clip(string(raw)))
	}
	// Only a lowercase 0x is a prefix, as in substrate-interface.
	hexSig := strings.TrimPrefix(data, "0x")
	if len(hexSig) != 2*schnorrkel.SignatureSize {
		return nil, chain.SignatureError("signature.data", "%d hex digits, want %d", len(hexSig), 2*schnorrkel.SignatureSize)
	}
	var b [schnorrkel.SignatureSize]byte
	if _, err := hex.Decode(b[:], []byte(hexSig)); err != nil {
		return nil, chain.SignatureError("signature.data", "invalid hex %q: %v", chain.Clip(data), err)
	}
	sig := new(schnorrkel.Signature)
	if err := sig.Decode(b); err != nil {
		return nil, chain.SignatureError("signature.data", "not an sr25519 signature: %v", err)
	}
	return sig, nil
}
