package ownerauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/internal/ed25519strict"
)

// Bounds checked before any parsing. Real headers are under 1 KiB.
const (
	// MaxHeaderSize bounds each of the two header values.
	MaxHeaderSize = 8 << 10
	// maxTimeText bounds a timestamp before it is parsed.
	maxTimeText = 64
	// maxAddressText bounds the wallet address (an ETH address is 42, a SOL one at most 44).
	maxAddressText = 64
)

// MaxClockSkew is how far an operation's time may be from the node's clock.
const MaxClockSkew = 2 * time.Minute

// Chains a wallet may sign the ephemeral key with.
const (
	ChainETH = "ETH"
	ChainSOL = "SOL"
)

// Verify checks the X-SignedPubKey and X-SignedOperation headers of r as
// aleph-vm does and returns the wallet address that authorized the request, as
// written in the pubkey payload. domain is the node's public host name; the
// operation's domain must be the same host (ports are ignored on both sides,
// case too). The error is an *Error carrying the HTTP status to answer.
func Verify(r *http.Request, domain string, now time.Time) (string, error) {
	pk, err := verifyPubKey(r.Header.Get(HeaderSignedPubKey), now)
	if err != nil {
		return "", err
	}
	op, err := parseOperation(r.Header.Get(HeaderSignedOperation), now)
	if err != nil {
		return "", err
	}
	if domain == "" || !sameHost(op.domain, domain) {
		return "", unauthorized(ReasonInvalidDomain, "the operation is for %q, this node is %q", clip(op.domain), domain)
	}
	if op.path != r.URL.Path {
		return "", unauthorized(ReasonInvalidPath, "the operation is for %q, the request is for %q", clip(op.path), clip(r.URL.Path))
	}
	if op.method != r.Method {
		return "", unauthorized(ReasonInvalidMethod, "the operation is for %q, the request is %q", clip(op.method), r.Method)
	}
	if !verifyES256(pk.key, op.payload, op.signature) {
		return "", unauthorized(ReasonOperationSignature, "the operation's ES256 signature does not verify with the signed ephemeral key")
	}
	return pk.address, nil
}

// signedPubKey is a verified X-SignedPubKey.
type signedPubKey struct {
	address string
	key     *ecdsa.PublicKey
}

// verifyPubKey parses the X-SignedPubKey header, checks its expiry and the
// wallet's signature, and decodes the ephemeral key. Checks run in upstream's
// order, so the same bad header gets the same answer.
func verifyPubKey(header string, now time.Time) (*signedPubKey, error) {
	if header == "" {
		return nil, badRequest(ReasonMissingPubKey, "the request has no %s header", HeaderSignedPubKey)
	}
	payload, sig, err := parseSigned(header, ReasonPubKeyFormat, ReasonPubKeyData)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return nil, badRequest(ReasonPubKeyData, "the payload is not a JSON object")
	}
	address, err := stringField(fields, "address", ReasonPubKeyData)
	if err != nil {
		return nil, err
	}
	expiresText, err := stringField(fields, "expires", ReasonPubKeyData)
	if err != nil {
		return nil, err
	}
	chainName := ChainETH // upstream's default
	if _, ok := fields["chain"]; ok {
		if chainName, err = stringField(fields, "chain", ReasonPubKeyData); err != nil {
			return nil, err
		}
	}
	var jwk map[string]json.RawMessage
	if err := json.Unmarshal(fields["pubkey"], &jwk); err != nil || jwk == nil {
		return nil, badRequest(ReasonPubKeyData, "pubkey must be a JSON Web Key object")
	}
	if len(address) > maxAddressText {
		return nil, badRequest(ReasonPubKeyData, "address is %d characters, over %d", len(address), maxAddressText)
	}
	expires, err := parseTime(expiresText)
	if err != nil {
		return nil, badRequest(ReasonPubKeyData, "expires: %v", err)
	}
	if !expires.After(now) {
		return nil, unauthorized(ReasonTokenExpired, "the signed key expired at %s", expires.UTC().Format(time.RFC3339))
	}
	if err := verifyWallet(chainName, address, payload, sig); err != nil {
		return nil, err
	}
	key, err := parseJWK(jwk)
	if err != nil {
		return nil, badRequest(ReasonPubKeyData, "pubkey: %v", err)
	}
	return &signedPubKey{address: address, key: key}, nil
}

// verifyWallet checks the wallet's signature of the pubkey payload.
func verifyWallet(chainName, address string, payload, sig []byte) error {
	switch chainName {
	case ChainETH:
		// eth_account's encode_defunct(hexstr=…) signs the decoded bytes: the raw JSON.
		if len(sig) != evm.SignatureSize {
			return unauthorized(ReasonInvalidSignature, "an ETH signature is %d bytes, got %d", evm.SignatureSize, len(sig))
		}
		got, err := evm.RecoverAddress(payload, sig)
		if err != nil {
			return unauthorized(ReasonInvalidSignature, "%v", err)
		}
		if !strings.EqualFold(got, address) {
			return unauthorized(ReasonInvalidSignature, "signed by %s, not by %s", got, clip(address))
		}
		return nil
	case ChainSOL:
		pub, err := base58.Decode(address)
		if err != nil || len(pub) != 32 {
			return badRequest(ReasonPubKeyData, "address %q is not a base58 ed25519 public key", clip(address))
		}
		// Upstream verifies over payload.hex(): the lowercase hex text, not the JSON.
		if !ed25519strict.Verify(pub, []byte(hex.EncodeToString(payload)), sig) {
			return unauthorized(ReasonInvalidSignature, "the ed25519 signature does not verify for %s", address)
		}
		return nil
	}
	return badRequest(ReasonPubKeyData, "chain %q is not supported (ETH or SOL)", clip(chainName))
}

// operation is a parsed X-SignedOperation, not yet verified.
type operation struct {
	payload, signature   []byte
	method, path, domain string
}

func parseOperation(header string, now time.Time) (*operation, error) {
	if header == "" {
		return nil, badRequest(ReasonMissingOperation, "the request has no %s header", HeaderSignedOperation)
	}
	payload, sig, err := parseSigned(header, ReasonOperationFormat, ReasonOperationFields)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return nil, badRequest(ReasonOperationFields, "the payload is not a JSON object")
	}
	op := &operation{payload: payload, signature: sig}
	var timeText string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"time", &timeText}, {"method", &op.method}, {"domain", &op.domain}, {"path", &op.path}} {
		if *f.dst, err = stringField(fields, f.name, ReasonOperationFields); err != nil {
			return nil, err
		}
	}
	t, err := parseTime(timeText)
	if err != nil {
		return nil, badRequest(ReasonOperationFields, "time: %v", err)
	}
	// Upstream rejects a stale or future time as a malformed field (400), not 401.
	if t.Before(now.Add(-MaxClockSkew)) {
		return nil, badRequest(ReasonOperationFields, "time is too far in the past (%s, more than %s before the node's clock)", t.UTC().Format(time.RFC3339), MaxClockSkew)
	}
	if t.After(now.Add(MaxClockSkew)) {
		return nil, badRequest(ReasonOperationFields, "time is too far in the future (%s, more than %s after the node's clock)", t.UTC().Format(time.RFC3339), MaxClockSkew)
	}
	return op, nil
}

// parseSigned reads {"payload": hex, "signature": [0x]hex}, the shape of both
// headers; other keys are ignored (SDKs add "sender" and "content").
func parseSigned(header, formatReason, dataReason string) (payload, sig []byte, err error) {
	if len(header) > MaxHeaderSize {
		return nil, nil, badRequest(formatReason, "the header is %d bytes, over %d", len(header), MaxHeaderSize)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(header), &obj); err != nil {
		return nil, nil, badRequest(formatReason, "not JSON: %v", err)
	}
	if obj == nil {
		return nil, nil, badRequest(dataReason, "want a JSON object with payload and signature")
	}
	payloadHex, err := stringField(obj, "payload", dataReason)
	if err != nil {
		return nil, nil, err
	}
	sigHex, err := stringField(obj, "signature", dataReason)
	if err != nil {
		return nil, nil, err
	}
	if payload, err = hex.DecodeString(payloadHex); err != nil {
		return nil, nil, badRequest(dataReason, "payload is not hex")
	}
	if sig, err = hex.DecodeString(strings.TrimPrefix(sigHex, "0x")); err != nil {
		return nil, nil, badRequest(dataReason, "signature is not hex")
	}
	return payload, sig, nil
}

// stringField returns obj[name], which must be a JSON string.
func stringField(obj map[string]json.RawMessage, name, reason string) (string, error) {
	raw, ok := obj[name]
	if !ok {
		return "", badRequest(reason, "%s is missing", name)
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", badRequest(reason, "%s must be a string", name)
	}
	return s, nil
}

// timeLayouts are the ISO 8601 forms clients write: JavaScript's toISOString
// ("…T12:00:00.000Z"), Python's isoformat() + "Z" or with "+00:00". Go parses a
// fractional second after the seconds in any of them.
var timeLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05-0700",
}

// parseTime reads an ISO 8601 timestamp with a time zone. Upstream compares it
// with an aware datetime, so a naive one never worked there either.
func parseTime(s string) (time.Time, error) {
	if len(s) > maxTimeText {
		return time.Time{}, fmt.Errorf("%d characters, too long for a timestamp", len(s))
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time with a time zone, such as 2025-01-01T12:00:00.000000Z", s)
}

// parseJWK decodes an EC P-256 JSON Web Key; the point must be on the curve.
func parseJWK(jwk map[string]json.RawMessage) (*ecdsa.PublicKey, error) {
	get := func(name string) (string, error) {
		s, err := stringField(jwk, name, "")
		if err != nil {
			return "", fmt.Errorf("%s is missing or not a string", name)
		}
		return s, nil
	}
	var kty, crv, x, y string
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"kty", &kty}, {"crv", &crv}, {"x", &x}, {"y", &y}} {
		if *f.dst, err = get(f.name); err != nil {
			return nil, err
		}
	}
	if kty != "EC" || crv != "P-256" {
		return nil, fmt.Errorf("want kty EC and crv P-256, got %q and %q", clip(kty), clip(crv))
	}
	point := make([]byte, 1, 65)
	point[0] = 4 // uncompressed
	for _, c := range []struct{ name, text string }{{"x", x}, {"y", y}} {
		// jwcrypto tolerates padding; base64url of 32 bytes is 43 characters.
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.text, "="))
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%s is not 32 bytes of base64url", c.name)
		}
		point = append(point, b...)
	}
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("not a P-256 point: %v", err)
	}
	return key, nil
}

// verifyES256 checks a JWS ES256 signature: raw r‖s, 32 bytes each, over SHA-256.
func verifyES256(key *ecdsa.PublicKey, payload, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(payload)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(key, h[:], r, s)
}

// sameHost compares two host names, ignoring ports and case.
func sameHost(a, b string) bool {
	return strings.EqualFold(hostOnly(a), hostOnly(b))
}

func hostOnly(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
