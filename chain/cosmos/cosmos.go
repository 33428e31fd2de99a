// Package cosmos verifies and signs Aleph messages from Cosmos SDK keys (chain code
// CSDK).
//
// The signature is the JSON text a CosmJS amino signer returns:
//
//	{"signature": base64(r‖s), "pub_key": {"type": "tendermint/PubKeySecp256k1",
//	 "value": base64(33-byte compressed key)}, "account_number": "0", "sequence": "0"}
//
// The key must hash to the sender, bech32(hrp, ripemd160(sha256(key))) with the hrp
// taken from the sender (the text before its first '1'). The signed bytes are an
// ADR-036 style amino sign doc wrapping the verification buffer, serialised as
// Python's json.dumps(doc, sort_keys=True, separators=(",", ":")) does, and the
// signature is plain ECDSA over its sha256. As with pyaleph (python-ecdsa), high-S
// signatures are accepted.
package cosmos

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/ripemd160" // deprecated upstream, but hash160 is what the chain uses

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

const (
	// PubKeyType is the only key type accepted in the signature's pub_key.
	PubKeyType = "tendermint/PubKeySecp256k1"
	// DefaultHRP is the human-readable part of the addresses accounts produce.
	DefaultHRP = "cosmos"
	// SignDocChainID is the chain_id of the off-chain sign doc.
	SignDocChainID = "signed-message-v1"

	pubKeyLen = 33
	sigLen    = 64
)

// Verifier checks CSDK signatures. The zero value is ready to use.
type Verifier struct{}

// Register binds CSDK to the Cosmos verifier.
func Register(r *chain.Registry) {
	r.Register(message.ChainCSDK, Verifier{})
}

// Verify checks that m.Signature holds a secp256k1 key belonging to m.Sender and a
// valid signature by it of the amino sign doc of m's verification buffer.
func (Verifier) Verify(m *message.Message) error {
	hrp, err := senderHRP(m.Sender)
	if err != nil {
		return err
	}
	pub, pubBytes, sig, err := parseSignature(m.Signature)
	if err != nil {
		return err
	}
	addr, err := address(hrp, pubBytes)
	if err != nil {
		return chain.SignatureError("sender", "cannot encode an address with human-readable part %q: %v", hrp, err)
	}
	if addr != m.Sender {
		return chain.SignatureError("sender", "the public key belongs to %s, not to the sender", addr)
	}
	if field := invalidUTF8Field(m); field != "" {
		return chain.SignatureError(field, "not valid UTF-8, so no sign doc can hold it")
	}
	doc := SignDoc(m.VerificationBuffer(), m.Sender)
	digest := sha256.Sum256(doc)
	if !sig.Verify(digest[:], pub) {
		return chain.SignatureError("signature.signature", "does not verify for the sign doc")
	}
	return nil
}

// senderHRP returns the text before the first '1', as pyaleph splits it (bech32
// itself splits at the last '1'; the rebuilt address must match either way).
func senderHRP(sender string) (string, error) {
	if len(sender) > message.MaxSenderLength {
		return "", chain.SignatureError("sender", "longer than %d bytes", message.MaxSenderLength)
	}
	hrp, _, ok := strings.Cut(sender, "1")
	if !ok {
		return "", chain.SignatureError("sender", "not a bech32 address: no '1' separator")
	}
	return hrp, nil
}

// parseSignature decodes the JSON signature object. Keys are matched exactly (as
// Python does; encoding/json struct tags would also match other letter cases), and
// account_number and sequence are ignored: the sign doc always uses "0".
func parseSignature(text string) (*secp256k1.PublicKey, []byte, *ecdsa.Signature, error) {
	if len(text) > message.MaxSignatureLength {
		return nil, nil, nil, chain.SignatureError("signature", "longer than %d bytes", message.MaxSignatureLength)
	}
	obj, err := object([]byte(text), "signature")
	if err != nil {
		return nil, nil, nil, err
	}
	pkRaw, ok := obj["pub_key"]
	if !ok {
		return nil, nil, nil, chain.SignatureError("signature.pub_key", "missing")
	}
	pk, err := object(pkRaw, "signature.pub_key")
	if err != nil {
		return nil, nil, nil, err
	}
	typ, err := stringField(pk, "type", "signature.pub_key.type")
	if err != nil {
		return nil, nil, nil, err
	}
	if typ != PubKeyType {
		return nil, nil, nil, chain.SignatureError("signature.pub_key.type", "unsupported key type %q, want %q", truncate(typ, 64), PubKeyType)
	}
	value, err := stringField(pk, "value", "signature.pub_key.value")
	if err != nil {
		return nil, nil, nil, err
	}
	pubBytes, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, nil, nil, chain.SignatureError("signature.pub_key.value", "not base64: %v", err)
	}
	if len(pubBytes) != pubKeyLen {
		return nil, nil, nil, chain.SignatureError("signature.pub_key.value", "decodes to %d bytes, want a %d-byte compressed key", len(pubBytes), pubKeyLen)
	}
	pub, err := secp256k1.ParsePubKey(pubBytes)
	if err != nil {
		return nil, nil, nil, chain.SignatureError("signature.pub_key.value", "not a secp256k1 key: %v", err)
	}
	sigText, err := stringField(obj, "signature", "signature.signature")
	if err != nil {
		return nil, nil, nil, err
	}
	sigBytes, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return nil, nil, nil, chain.SignatureError("signature.signature", "not base64: %v", err)
	}
	if len(sigBytes) != sigLen {
		return nil, nil, nil, chain.SignatureError("signature.signature", "decodes to %d bytes, want %d (r‖s)", len(sigBytes), sigLen)
	}
	// decred's Verify takes any S in [1, N-1], high or low; only the range is checked here.
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(sigBytes[:32]) || r.IsZero() {
		return nil, nil, nil, chain.SignatureError("signature.signature", "r is not in [1, N-1]")
	}
	if s.SetByteSlice(sigBytes[32:]) || s.IsZero() {
		return nil, nil, nil, chain.SignatureError("signature.signature", "s is not in [1, N-1]")
	}
	return pub, pubBytes, ecdsa.NewSignature(&r, &s), nil
}

// object decodes a JSON object with exact key matching; for duplicate keys the last
// wins, as in Python.
func object(raw []byte, field string) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, chain.SignatureError(field, "not a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, chain.SignatureError(field, "invalid JSON: %v", err)
	}
	return obj, nil
}

func stringField(obj map[string]json.RawMessage, key, field string) (string, error) {
	raw, ok := obj[key]
	if !ok {
		return "", chain.SignatureError(field, "missing")
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", chain.SignatureError(field, "not a JSON string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", chain.SignatureError(field, "invalid JSON string: %v", err)
	}
	return s, nil
}

func invalidUTF8Field(m *message.Message) string {
	switch {
	case !utf8.ValidString(string(m.Chain)):
		return "chain"
	case !utf8.ValidString(m.Sender):
		return "sender"
	case !utf8.ValidString(string(m.Type)):
		return "type"
	case !utf8.ValidString(m.ItemHash):
		return "item_hash"
	}
	return ""
}

// address returns bech32(hrp, ripemd160(sha256(pubKey))).
func address(hrp string, pubKey []byte) (string, error) {
	sha := sha256.Sum256(pubKey)
	rh := ripemd160.New()
	rh.Write(sha[:])
	conv, err := bech32.ConvertBits(rh.Sum(nil), 8, 5, true)
	if err != nil {
		return "", err
	}
	return bech32.Encode(hrp, conv)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
