package ownerauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/chain/solana"
	"github.com/go-aleph/go-aleph/message"
)

const (
	testDomain = "crn.example.org"
	testVM     = "cbeab2921ea7f4f0e544d58e5b36fc328a0107d228933bff39e19826bf9cb1fe"
)

var testNow = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// goldenCase is one entry of testdata/golden.json (written by gen_golden.py).
type goldenCase struct {
	Chain           string `json:"chain"`
	Address         string `json:"address"`
	Domain          string `json:"domain"`
	Method          string `json:"method"`
	Path            string `json:"path"`
	Now             string `json:"now"`
	EphemeralKey    string `json:"ephemeral_key"`
	WalletKey       string `json:"wallet_key"`
	SignedPubKey    string `json:"X-SignedPubKey"`
	SignedOperation string `json:"X-SignedOperation"`
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("golden.json: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("golden.json has no cases")
	}
	return cases
}

func ethWallet(t testing.TB) *evm.Account {
	t.Helper()
	a, err := evm.AccountFromHex("9ebec765bebea24f8a2716a2509c0ff04980aeb413c4bb28ac9f22634c99cdb4")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func solWallet(t testing.TB) *solana.Account {
	t.Helper()
	a, err := solana.AccountFromHex("0b9bbc5a8a55e2ef21e68ca4e5eccd2b08bc6b3e2e1c3a2cb6a06ad0a0e88ef0")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func walletFor(t testing.TB, chainName, keyHex string) message.Signer {
	t.Helper()
	var s message.Signer
	var err error
	switch chainName {
	case ChainETH:
		s, err = evm.AccountFromHex(keyHex)
	case ChainSOL:
		s, err = solana.AccountFromHex(keyHex)
	default:
		t.Fatalf("no wallet for chain %q", chainName)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ephemeralKey(t testing.TB, keyHex string) *ecdsa.PrivateKey {
	t.Helper()
	d, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// request is a request to the node carrying h.
func request(method, path string, h http.Header) *http.Request {
	r := httptest.NewRequest(method, "http://127.0.0.1:4020"+path, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}

// signedHeaders signs h for a POST to the test VM's stop route.
func signedHeaders(t testing.TB, s message.Signer) http.Header {
	t.Helper()
	h, err := SignRequest(s, testDomain, http.MethodPost, "/control/machine/"+testVM+"/stop", testNow)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// rawWalletSig signs payload with s as chainName wants, without any check, and
// returns the header's signature text.
func rawWalletSig(t testing.TB, s message.Signer, chainName string, payload []byte) string {
	t.Helper()
	switch chainName {
	case ChainETH:
		sig, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	case ChainSOL:
		text, err := s.Sign([]byte(hex.EncodeToString(payload)))
		if err != nil {
			t.Fatal(err)
		}
		return solSigHex(t, text)
	}
	t.Fatalf("chain %q", chainName)
	return ""
}

// solSigHex turns a Solana Sign result ({"signature": base58, …}) into hex.
func solSigHex(t testing.TB, text string) string {
	t.Helper()
	var w struct{ Signature string }
	if err := json.Unmarshal([]byte(text), &w); err != nil {
		t.Fatal(err)
	}
	raw, err := base58.Decode(w.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(raw)
}

// header encodes a {"payload","signature"} header value.
func header(t testing.TB, payload []byte, sig string) string {
	t.Helper()
	b, err := json.Marshal(signedHeader{Payload: hex.EncodeToString(payload), Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decodeHeader splits a header value into its payload (decoded) and signature.
func decodeHeader(t testing.TB, v string) ([]byte, string) {
	t.Helper()
	var sh signedHeader
	if err := json.Unmarshal([]byte(v), &sh); err != nil {
		t.Fatal(err)
	}
	p, err := hex.DecodeString(sh.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p, sh.Signature
}

// headers makes the two headers from their values.
func headers(pubKey, operation string) http.Header {
	h := http.Header{}
	h.Set(HeaderSignedPubKey, pubKey)
	h.Set(HeaderSignedOperation, operation)
	return h
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantAuthError checks err is an *Error with the status and reason.
func wantAuthError(t testing.TB, err error, status int, reason string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want *Error %d %q", err, err, status, reason)
	}
	if ae.Status != status || ae.Reason != reason {
		t.Fatalf("got %d %q (%v), want %d %q", ae.Status, ae.Reason, ae, status, reason)
	}
}
