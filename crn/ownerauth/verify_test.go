package ownerauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

func TestRoundTrip(t *testing.T) {
	path := "/control/machine/" + testVM + "/logs"
	for _, tc := range []struct {
		name         string
		wallet       message.Signer
		signDomain   string
		verifyDomain string
	}{
		{"ETH", ethWallet(t), testDomain, testDomain},
		{"SOL", solWallet(t), testDomain, testDomain},
		{"ETH on BASE signs as ETH", ethWallet(t).WithChain(message.ChainBASE), testDomain, testDomain},
		{"Eclipse signs as SOL", solWallet(t).WithChain(message.ChainES), testDomain, testDomain},
		{"ports and case ignored", ethWallet(t), "CRN.example.org:443", testDomain + ":4020"},
		{"IP and port", solWallet(t), "127.0.0.1:4020", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := SignRequest(tc.wallet, tc.signDomain, "get", path, testNow)
			if err != nil {
				t.Fatal(err)
			}
			// A client's clock may be ahead or behind by up to two minutes.
			for _, skew := range []time.Duration{0, MaxClockSkew, -MaxClockSkew} {
				got, err := Verify(request(http.MethodGet, path, h), tc.verifyDomain, testNow.Add(skew))
				if err != nil {
					t.Fatalf("skew %s: %v", skew, err)
				}
				if got != tc.wallet.Address() {
					t.Fatalf("address %q, want %q", got, tc.wallet.Address())
				}
			}
		})
	}
}

// pubKeyFields is a valid pubkey payload for wallet s and ephemeral key k.
func pubKeyFields(t testing.TB, s message.Signer, k *ecdsa.PrivateKey, chainName string) map[string]any {
	t.Helper()
	b, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"pubkey": map[string]any{"crv": "P-256", "kty": "EC",
			"x": base64.RawURLEncoding.EncodeToString(b[1:33]), "y": base64.RawURLEncoding.EncodeToString(b[33:])},
		"alg": "ECDSA", "domain": testDomain, "address": s.Address(),
		"expires": testNow.Add(time.Hour).Format(timeFormat), "chain": chainName,
	}
}

func opFields(method, path string) map[string]any {
	return map[string]any{"time": testNow.Format(timeFormat), "method": method, "path": path, "domain": testDomain}
}

func opHeader(t testing.TB, k *ecdsa.PrivateKey, payload []byte) string {
	t.Helper()
	sig, err := signES256(k, payload)
	if err != nil {
		t.Fatal(err)
	}
	return header(t, payload, hex.EncodeToString(sig))
}

func TestVerifyRejects(t *testing.T) {
	eth, sol := ethWallet(t), solWallet(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := "/control/machine/" + testVM + "/stop"
	validOp := opHeader(t, key, mustJSON(t, opFields("POST", path)))
	// custom builds headers from payload fields, signed properly by eth (or
	// sol) and key, so only the changed field is wrong.
	custom := func(s message.Signer, chainName string, editPK, editOp func(map[string]any)) http.Header {
		t.Helper()
		pk := pubKeyFields(t, s, key, chainName)
		if editPK != nil {
			editPK(pk)
		}
		pkJSON := mustJSON(t, pk)
		op := opFields("POST", path)
		if editOp != nil {
			editOp(op)
		}
		h := http.Header{}
		h.Set(HeaderSignedPubKey, header(t, pkJSON, rawWalletSig(t, s, walletChainOf(s), pkJSON)))
		h.Set(HeaderSignedOperation, opHeader(t, key, mustJSON(t, op)))
		return h
	}
	set := func(name, value string) func(http.Header) {
		return func(h http.Header) { h.Set(name, value) }
	}
	// editPayload re-encodes a header's payload after edit, keeping its signature.
	editPayload := func(name string, edit func([]byte) []byte) func(http.Header) {
		return func(h http.Header) {
			p, sig := decodeHeader(t, h.Get(name))
			h.Set(name, header(t, edit(p), sig))
		}
	}
	flipSig := func(name string) func(http.Header) {
		return func(h http.Header) {
			p, sig := decodeHeader(t, h.Get(name))
			b := []byte(sig)
			i := len(b) - 10
			b[i] = "01"[(b[i]-'0'+1)%2] // any other hex digit
			h.Set(name, header(t, p, string(b)))
		}
	}
	otherKeyOp := func(h http.Header) {
		other, err := SignRequest(eth, testDomain, "POST", path, testNow)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(HeaderSignedOperation, other.Get(HeaderSignedOperation))
	}
	big := strings.Repeat("a", MaxHeaderSize)
	// ETH wallet signing the hex text, SOL wallet signing the raw JSON: the
	// other chain's rule, which the node must refuse.
	pkJSON := mustJSON(t, pubKeyFields(t, eth, key, ChainETH))
	ethOverHex, _ := eth.Sign([]byte(hex.EncodeToString(pkJSON)))
	solPK := mustJSON(t, pubKeyFields(t, sol, key, ChainSOL))

	for _, tc := range []struct {
		name    string
		headers http.Header // nil: a valid ETH request
		mutate  func(http.Header)
		method  string // default POST
		path    string // default the stop route
		domain  string // default testDomain
		now     time.Time
		status  int
		reason  string
	}{
		{name: "no pubkey header", mutate: func(h http.Header) { h.Del(HeaderSignedPubKey) }, status: 400, reason: ReasonMissingPubKey},
		{name: "no operation header", mutate: func(h http.Header) { h.Del(HeaderSignedOperation) }, status: 400, reason: ReasonMissingOperation},
		{name: "pubkey not JSON", mutate: set(HeaderSignedPubKey, "{nope"), status: 400, reason: ReasonPubKeyFormat},
		{name: "pubkey a list", mutate: set(HeaderSignedPubKey, `["a"]`), status: 400, reason: ReasonPubKeyFormat},
		{name: "pubkey null", mutate: set(HeaderSignedPubKey, `null`), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey without signature", mutate: set(HeaderSignedPubKey, `{"payload":"7b7d"}`), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey payload a number", mutate: set(HeaderSignedPubKey, `{"payload":7,"signature":"00"}`), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey payload not hex", mutate: set(HeaderSignedPubKey, `{"payload":"zz","signature":"00"}`), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey payload odd hex", mutate: set(HeaderSignedPubKey, `{"payload":"7b7","signature":"00"}`), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey signature not hex", mutate: func(h http.Header) {
			p, _ := decodeHeader(t, h.Get(HeaderSignedPubKey))
			h.Set(HeaderSignedPubKey, header(t, p, "0xnothex"))
		}, status: 400, reason: ReasonPubKeyData},
		{name: "pubkey payload not JSON", mutate: editPayload(HeaderSignedPubKey, func([]byte) []byte { return []byte("not json") }), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey payload without address", headers: custom(eth, ChainETH, func(m map[string]any) { delete(m, "address") }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "expires a number", headers: custom(eth, ChainETH, func(m map[string]any) { m["expires"] = 1e12 }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "expires without zone", headers: custom(eth, ChainETH, func(m map[string]any) { m["expires"] = "2025-01-01T13:00:00" }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "expired", now: testNow.Add(time.Hour), status: 401, reason: ReasonTokenExpired},
		{name: "expired, +00:00 form", headers: custom(eth, ChainETH, func(m map[string]any) { m["expires"] = "2025-01-01T11:59:59.999+00:00" }, nil), status: 401, reason: ReasonTokenExpired},
		{name: "wallet signature altered", mutate: flipSig(HeaderSignedPubKey), status: 401, reason: ReasonInvalidSignature},
		{name: "wallet signature short", mutate: func(h http.Header) {
			p, _ := decodeHeader(t, h.Get(HeaderSignedPubKey))
			h.Set(HeaderSignedPubKey, header(t, p, "0x1234"))
		}, status: 401, reason: ReasonInvalidSignature},
		{name: "address swapped after signing", mutate: editPayload(HeaderSignedPubKey, func(p []byte) []byte {
			return []byte(strings.Replace(string(p), eth.Address(), "0x0000000000000000000000000000000000000001", 1))
		}), status: 401, reason: ReasonInvalidSignature},
		{name: "another wallet's address", headers: custom(eth, ChainETH, func(m map[string]any) { m["address"] = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23" }, nil), status: 401, reason: ReasonInvalidSignature},
		{name: "ETH wallet signed the hex text", headers: headers(header(t, pkJSON, ethOverHex), validOp), status: 401, reason: ReasonInvalidSignature},
		{name: "SOL wallet signed the raw JSON", headers: headers(header(t, solPK, solRawJSONSig(t, sol, solPK)), validOp), status: 401, reason: ReasonInvalidSignature},
		{name: "SOL address not base58", headers: custom(sol, ChainSOL, func(m map[string]any) { m["address"] = "0OIl" }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "chain AVAX", headers: custom(eth, ChainETH, func(m map[string]any) { m["chain"] = "AVAX" }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "chain null", headers: custom(eth, ChainETH, func(m map[string]any) { m["chain"] = nil }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "SOL wallet claiming ETH", headers: custom(sol, ChainSOL, func(m map[string]any) { m["chain"] = "ETH" }, nil), status: 401, reason: ReasonInvalidSignature},
		{name: "jwk not EC", headers: custom(eth, ChainETH, func(m map[string]any) { m["pubkey"].(map[string]any)["kty"] = "RSA" }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "jwk x not on curve", headers: custom(eth, ChainETH, func(m map[string]any) {
			m["pubkey"].(map[string]any)["x"] = base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		}, nil), status: 400, reason: ReasonPubKeyData},
		{name: "jwk y short", headers: custom(eth, ChainETH, func(m map[string]any) { m["pubkey"].(map[string]any)["y"] = "AAAA" }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey a string", headers: custom(eth, ChainETH, func(m map[string]any) { m["pubkey"] = "key" }, nil), status: 400, reason: ReasonPubKeyData},
		{name: "pubkey header oversized", mutate: set(HeaderSignedPubKey, `{"payload":"`+big+`","signature":"00"}`), status: 400, reason: ReasonPubKeyFormat},
		{name: "operation header oversized", mutate: set(HeaderSignedOperation, `{"payload":"`+big+`","signature":"00"}`), status: 400, reason: ReasonOperationFormat},
		{name: "operation not JSON", mutate: set(HeaderSignedOperation, "nope"), status: 400, reason: ReasonOperationFormat},
		{name: "operation payload not hex", mutate: set(HeaderSignedOperation, `{"payload":"xyz","signature":"00"}`), status: 400, reason: ReasonOperationFields},
		{name: "operation signature not hex", mutate: set(HeaderSignedOperation, `{"payload":"7b7d","signature":"0xg"}`), status: 400, reason: ReasonOperationFields},
		{name: "operation payload not JSON", mutate: editPayload(HeaderSignedOperation, func([]byte) []byte { return []byte("[1]") }), status: 400, reason: ReasonOperationFields},
		{name: "operation without path", headers: custom(eth, ChainETH, nil, func(m map[string]any) { delete(m, "path") }), status: 400, reason: ReasonOperationFields},
		{name: "operation method a number", headers: custom(eth, ChainETH, nil, func(m map[string]any) { m["method"] = 1 }), status: 400, reason: ReasonOperationFields},
		{name: "operation time malformed", headers: custom(eth, ChainETH, nil, func(m map[string]any) { m["time"] = "yesterday" }), status: 400, reason: ReasonOperationFields},
		{name: "operation too old", now: testNow.Add(MaxClockSkew + time.Second), status: 400, reason: ReasonOperationFields},
		{name: "operation in the future", now: testNow.Add(-MaxClockSkew - time.Second), status: 400, reason: ReasonOperationFields},
		{name: "wrong domain", domain: "other.example.org", status: 401, reason: ReasonInvalidDomain},
		{name: "node without domain", domain: "-", status: 401, reason: ReasonInvalidDomain},
		{name: "wrong path", path: "/control/machine/" + testVM + "/erase", status: 401, reason: ReasonInvalidPath},
		{name: "path differs in case", path: strings.ToUpper(path), status: 401, reason: ReasonInvalidPath},
		{name: "wrong method", method: http.MethodGet, status: 401, reason: ReasonInvalidMethod},
		{name: "operation signature altered", mutate: flipSig(HeaderSignedOperation), status: 401, reason: ReasonOperationSignature},
		{name: "operation signature short", mutate: func(h http.Header) {
			p, _ := decodeHeader(t, h.Get(HeaderSignedOperation))
			h.Set(HeaderSignedOperation, header(t, p, "abcd"))
		}, status: 401, reason: ReasonOperationSignature},
		{name: "operation signed by another ephemeral key", mutate: otherKeyOp, status: 401, reason: ReasonOperationSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.headers
			if h == nil {
				h = signedHeaders(t, eth)
			}
			h = h.Clone()
			if tc.mutate != nil {
				tc.mutate(h)
			}
			method, p, domain, now := "POST", path, testDomain, testNow
			if tc.method != "" {
				method = tc.method
			}
			if tc.path != "" {
				p = tc.path
			}
			if tc.domain == "-" {
				domain = ""
			} else if tc.domain != "" {
				domain = tc.domain
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			addr, err := Verify(request(method, p, h), domain, now)
			if err == nil {
				t.Fatalf("accepted, as %q", addr)
			}
			wantAuthError(t, err, tc.status, tc.reason)
		})
	}
}

// walletChainOf is the chain a test wallet signs as.
func walletChainOf(s message.Signer) string {
	c, _ := walletChain(s.Chain())
	return c
}

// solRawJSONSig is a SOL wallet's signature of the raw JSON (not its hex).
func solRawJSONSig(t testing.TB, s message.Signer, payload []byte) string {
	t.Helper()
	text, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return solSigHex(t, text)
}

func TestParseTime(t *testing.T) {
	want := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"2025-01-01T12:00:00Z", "2025-01-01T12:00:00.000Z", "2025-01-01T12:00:00.000000Z",
		"2025-01-01T12:00:00.000000000Z", "2025-01-01T12:00:00+00:00", "2025-01-01T13:00:00+01:00",
		"2025-01-01 12:00:00Z", "2025-01-01T12:00:00+0000",
	} {
		got, err := parseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2025-01-01T12:00:00", "2025-01-01", "12:00", "2025-13-01T12:00:00Z", strings.Repeat("9", 100)} {
		if _, err := parseTime(s); err == nil {
			t.Errorf("parseTime(%q) accepted", s)
		}
	}
}
