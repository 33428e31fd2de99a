package ownerauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/message"
)

// KeyLifetime is how long a signed ephemeral key is valid.
const KeyLifetime = time.Hour

// timeFormat is how timestamps are written: UTC, microseconds, "Z".
const timeFormat = "2006-01-02T15:04:05.000000Z"

// SignRequest returns the X-SignedPubKey and X-SignedOperation headers for one
// request to a compute node: a fresh ephemeral P-256 key, valid for KeyLifetime
// from now, signed by the wallet s, and the operation (method, path, domain,
// now) signed by that key. domain is the node's host name as the node knows it
// (a port is ignored by Verify); path is the URL path without the query. The
// wallet must be an EVM account (signing as ETH) or a Solana one (as SOL).
func SignRequest(s message.Signer, domain, method, path string, now time.Time) (http.Header, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ownerauth: generate ephemeral key: %w", err)
	}
	return signRequest(s, key, domain, method, path, now)
}

// jwk is the ephemeral public key, keys in jwcrypto's (sorted) order.
type jwk struct {
	Crv string `json:"crv"`
	Kty string `json:"kty"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// pubKeyPayload is what the wallet signs, fields in the SDKs' order.
type pubKeyPayload struct {
	Pubkey  jwk    `json:"pubkey"`
	Alg     string `json:"alg"`
	Domain  string `json:"domain"`
	Address string `json:"address"`
	Expires string `json:"expires"`
	Chain   string `json:"chain"`
}

// operationPayload is what the ephemeral key signs.
type operationPayload struct {
	Time   string `json:"time"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Domain string `json:"domain"`
}

// signedHeader is the value of both headers.
type signedHeader struct {
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

func signRequest(s message.Signer, key *ecdsa.PrivateKey, domain, method, path string, now time.Time) (http.Header, error) {
	if s == nil {
		return nil, errors.New("ownerauth: no wallet to sign with")
	}
	if domain == "" || strings.ContainsAny(domain, " \t\r\n/") {
		return nil, fmt.Errorf("ownerauth: %q is not a host name", domain)
	}
	if method == "" || strings.ContainsAny(method, " \t\r\n") {
		return nil, fmt.Errorf("ownerauth: %q is not an HTTP method", method)
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("ownerauth: %q is not a URL path (want /control/…, no query)", path)
	}
	chainName, err := walletChain(s.Chain())
	if err != nil {
		return nil, err
	}
	pubBytes, err := key.PublicKey.Bytes()
	if err != nil || len(pubBytes) != 65 {
		return nil, errors.New("ownerauth: ephemeral key is not a P-256 key")
	}
	pk, err := json.Marshal(pubKeyPayload{
		Pubkey: jwk{Crv: "P-256", Kty: "EC",
			X: base64.RawURLEncoding.EncodeToString(pubBytes[1:33]),
			Y: base64.RawURLEncoding.EncodeToString(pubBytes[33:])},
		Alg: "ECDSA", Domain: domain, Address: s.Address(),
		Expires: now.Add(KeyLifetime).UTC().Format(timeFormat), Chain: chainName,
	})
	if err != nil {
		return nil, fmt.Errorf("ownerauth: encode pubkey payload: %w", err)
	}
	walletSig, err := signWallet(s, chainName, pk)
	if err != nil {
		return nil, err
	}
	op, err := json.Marshal(operationPayload{
		Time: now.UTC().Format(timeFormat), Method: strings.ToUpper(method), Path: path, Domain: domain,
	})
	if err != nil {
		return nil, fmt.Errorf("ownerauth: encode operation payload: %w", err)
	}
	opSig, err := signES256(key, op)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for name, v := range map[string]signedHeader{
		HeaderSignedPubKey:    {Payload: hex.EncodeToString(pk), Signature: walletSig},
		HeaderSignedOperation: {Payload: hex.EncodeToString(op), Signature: hex.EncodeToString(opSig)},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("ownerauth: encode %s: %w", name, err)
		}
		h.Set(name, string(b))
	}
	return h, nil
}

// walletChain is the chain a compute node knows the wallet by: every EVM chain
// code signs as ETH (same key, same address), Solana and Eclipse as SOL.
func walletChain(c message.Chain) (string, error) {
	switch {
	case evm.IsEVMChain(c):
		return ChainETH, nil
	case c == message.ChainSOL || c == message.ChainES:
		return ChainSOL, nil
	}
	return "", fmt.Errorf("ownerauth: a %s wallet cannot sign for a compute node (ETH or SOL only)", c)
}

// signWallet signs the pubkey payload with the wallet and returns the header's
// signature text: "0x" + hex of r‖s‖v for ETH, hex of the ed25519 signature for
// SOL. It checks the result as a node would, so a signer of another kind fails
// here rather than at the node.
func signWallet(s message.Signer, chainName string, payload []byte) (string, error) {
	var raw []byte
	switch chainName {
	case ChainETH:
		// An EVM Signer's Sign is personal_sign of the buffer, as the node wants.
		text, err := s.Sign(payload)
		if err != nil {
			return "", fmt.Errorf("ownerauth: wallet signature: %w", err)
		}
		if raw, err = hex.DecodeString(strings.TrimPrefix(text, "0x")); err != nil {
			return "", fmt.Errorf("ownerauth: wallet signature %.20q… is not hex", text)
		}
	case ChainSOL:
		// SOL signs the hex text; Sign wraps the ed25519 signature in JSON.
		text, err := s.Sign([]byte(hex.EncodeToString(payload)))
		if err != nil {
			return "", fmt.Errorf("ownerauth: wallet signature: %w", err)
		}
		var w struct {
			Signature string `json:"signature"`
		}
		if err := json.Unmarshal([]byte(text), &w); err != nil || w.Signature == "" {
			return "", errors.New(`ownerauth: the SOL wallet's signature is not {"signature": "<base58>", …}`)
		}
		if raw, err = base58.Decode(w.Signature); err != nil {
			return "", errors.New("ownerauth: the SOL wallet's signature is not base58")
		}
	}
	if err := verifyWallet(chainName, s.Address(), payload, raw); err != nil {
		return "", fmt.Errorf("ownerauth: the wallet's own signature does not verify: %w", err)
	}
	if chainName == ChainETH {
		return "0x" + hex.EncodeToString(raw), nil
	}
	return hex.EncodeToString(raw), nil
}

// signES256 makes a JWS ES256 signature: SHA-256, raw r‖s, 32 bytes each.
func signES256(key *ecdsa.PrivateKey, payload []byte) ([]byte, error) {
	h := sha256.Sum256(payload)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		return nil, fmt.Errorf("ownerauth: sign operation: %w", err)
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}
