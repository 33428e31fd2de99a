// Package tezos verifies and produces TEZOS message signatures.
//
// The signature field is JSON text: {"signature": base58check edsig…/spsig1…/p2sig…
// or generic sig…, "publicKey": edpk…/sppk…/p2pk…, "signingType": "raw" or
// "micheline", "dAppUrl": string}. The sender must be the public key's hash
// (tz1 ed25519, tz2 secp256k1, tz3 P-256). The signed bytes are the verification
// buffer (raw, what the Python SDK signs) or its micheline wrapping (what web
// wallets sign, see MichelinePayload); either way the curve signs blake2b-256 of them.
//
// Base58check and the prefix table are implemented here: there is no Tezos library
// among the project's dependencies.
package tezos

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/blake2b"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/ed25519strict"
	"github.com/go-aleph/go-aleph/message"
)

// Signing types of the signature object.
const (
	SigningRaw       = "raw"
	SigningMicheline = "micheline"
)

// DefaultDAppURL is the dApp URL of micheline payloads when the signature omits dAppUrl.
const DefaultDAppURL = "aleph.im"

// Register binds TEZOS to the verifier.
func Register(r *chain.Registry) {
	r.Register(message.ChainTEZOS, Verifier{})
}

// Verifier checks TEZOS signatures. The zero value is ready to use.
type Verifier struct{}

// Verify checks that m's signature object verifies over m's verification buffer (or
// its micheline payload) and that the public key hashes to m.Sender. Every error is
// an *message.Error with code 1 naming the field: "signature" (not a JSON object, or
// the curve check fails), "signature.signature", "signature.publicKey",
// "signature.signingType", "signature.dAppUrl", "sender", or "time" (a micheline
// signature over a time out of range).
func (Verifier) Verify(m *message.Message) error {
	if m == nil {
		return chain.SignatureError("", "no message")
	}
	if len(m.Signature) > message.MaxSignatureLength {
		return chain.SignatureError("signature", "longer than %d bytes", message.MaxSignatureLength)
	}
	obj, err := parseSignatureObject(m.Signature)
	if err != nil {
		return err
	}
	pk, err := parsePublicKey(obj.publicKey)
	if err != nil {
		return chain.SignatureError("signature.publicKey", "%v", err)
	}
	if addr := pk.address(); m.Sender != addr {
		return chain.SignatureError("sender", "%q is not %s, the address of signature.publicKey",
			truncate(m.Sender, 80), addr)
	}
	enc, sig, err := decode(obj.signature, kindSignature)
	if err != nil {
		return chain.SignatureError("signature.signature", "%v", err)
	}
	if enc.curve != curveGeneric && enc.curve != pk.curve {
		return chain.SignatureError("signature.signature", "%s signature for a %s public key", enc.curve, pk.curve)
	}
	payload := m.VerificationBuffer()
	if obj.signingType == SigningMicheline {
		if payload, err = MichelinePayload(payload, m.Time, obj.dAppURL); err != nil {
			return chain.SignatureError("time", "micheline payload: %v", err)
		}
	}
	digest := blake2b.Sum256(payload)
	if !pk.verify(digest[:], sig) {
		return chain.SignatureError("signature", "%s signature does not verify for %s (%s signing)",
			pk.curve, pk.address(), obj.signingType)
	}
	return nil
}

// signatureObject is the parsed signature field, defaults applied.
type signatureObject struct {
	signature   string
	publicKey   string
	signingType string
	dAppURL     string
}

// parseSignatureObject decodes the signature JSON. Like pyaleph it ignores unknown
// keys and lets the last of duplicate keys win; unlike Python it never throws, and
// every bad member is reported under its own name.
func parseSignatureObject(text string) (*signatureObject, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &fields); err != nil || fields == nil {
		return nil, chain.SignatureError("signature", "not a JSON object")
	}
	obj := &signatureObject{signingType: SigningRaw, dAppURL: DefaultDAppURL}
	var err error
	if obj.signature, err = stringMember(fields, "signature", true); err != nil {
		return nil, err
	}
	if obj.publicKey, err = stringMember(fields, "publicKey", true); err != nil {
		return nil, err
	}
	if _, ok := fields["signingType"]; ok {
		if obj.signingType, err = stringMember(fields, "signingType", false); err != nil {
			return nil, err
		}
		if obj.signingType != SigningRaw && obj.signingType != SigningMicheline {
			return nil, chain.SignatureError("signature.signingType", "must be %q or %q, got %q",
				SigningRaw, SigningMicheline, truncate(obj.signingType, 40))
		}
	}
	if _, ok := fields["dAppUrl"]; ok {
		if obj.dAppURL, err = stringMember(fields, "dAppUrl", false); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

// stringMember returns the string member key of fields; null and other JSON types
// are errors, and so is absence when required.
func stringMember(fields map[string]json.RawMessage, key string, required bool) (string, error) {
	field := "signature." + key
	raw, ok := fields[key]
	if !ok {
		if required {
			return "", chain.SignatureError(field, "missing")
		}
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", chain.SignatureError(field, "must be a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", chain.SignatureError(field, "must be a string")
	}
	return s, nil
}

// publicKey is a decoded Tezos public key; exactly one of the key fields is set.
type publicKey struct {
	curve curve
	raw   []byte // the encoded key bytes (32 for ed25519, 33 compressed otherwise)
	ed    ed25519.PublicKey
	sp    *secp256k1.PublicKey
	p2    *ecdsa.PublicKey
}

// parsePublicKey decodes an edpk/sppk/p2pk key and checks that the point is valid.
// Secret keys are refused, though pytezos would derive a public key from them.
func parsePublicKey(s string) (*publicKey, error) {
	enc, raw, err := decode(s, kindPublicKey)
	if err != nil {
		return nil, err
	}
	pk := &publicKey{curve: enc.curve, raw: raw}
	switch enc.curve {
	case curveEd25519:
		pk.ed = ed25519.PublicKey(raw)
	case curveSecp256k1:
		if pk.sp, err = secp256k1.ParsePubKey(raw); err != nil {
			return nil, fmt.Errorf("invalid secp256k1 point: %w", err)
		}
	case curveP256:
		if pk.p2, err = parseP256(raw); err != nil {
			return nil, err
		}
	}
	return pk, nil
}

// parseP256 decodes a compressed P-256 point. The standard library parses only the
// uncompressed form, so the point is decompressed and re-encoded first.
func parseP256(raw []byte) (*ecdsa.PublicKey, error) {
	x, y := elliptic.UnmarshalCompressed(elliptic.P256(), raw)
	if x == nil {
		return nil, fmt.Errorf("invalid compressed p256 point")
	}
	u := make([]byte, 65)
	u[0] = 4
	x.FillBytes(u[1:33])
	y.FillBytes(u[33:])
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), u)
	if err != nil {
		return nil, fmt.Errorf("invalid p256 point: %w", err)
	}
	return pub, nil
}

// address returns the key's tz1/tz2/tz3 address: blake2b-160 of the encoded key.
func (pk *publicKey) address() string {
	return addressOf(pk.curve, pk.raw)
}

func addressOf(c curve, raw []byte) string {
	h, _ := blake2b.New(20, nil) // 20 is a valid size and there is no key: never fails
	h.Write(raw)
	return lookup(kindAddress, c, 20).encode(h.Sum(nil))
}

// verify checks the 64-byte signature sig of digest.
func (pk *publicKey) verify(digest, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	switch pk.curve {
	case curveEd25519:
		return ed25519strict.Verify(pk.ed, digest, sig)
	case curveSecp256k1:
		var r, s secp256k1.ModNScalar
		if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) {
			return false // r or s ≥ n: libsecp256k1's compact parser refuses it
		}
		// libsecp256k1, which pytezos verifies with, accepts only low-S signatures.
		if s.IsOverHalfOrder() {
			return false
		}
		return secpecdsa.NewSignature(&r, &s).Verify(digest, pk.sp)
	case curveP256:
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pk.p2, digest, r, s)
	}
	return false
}

// AddressFromPublicKey returns the tz1/tz2/tz3 address of an edpk/sppk/p2pk key.
func AddressFromPublicKey(encoded string) (string, error) {
	pk, err := parsePublicKey(encoded)
	if err != nil {
		return "", fmt.Errorf("tezos public key: %w", err)
	}
	return pk.address(), nil
}
