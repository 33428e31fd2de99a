package ownerauth

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/chain/solana"
	"github.com/go-aleph/go-aleph/message"
)

// TestGoldenVerify checks headers made without go-aleph (testdata/gen_golden.py:
// Python's cryptography and a pure-Python keccak, following aleph-vm) verify.
func TestGoldenVerify(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.Chain, func(t *testing.T) {
			now, err := time.Parse(time.RFC3339, g.Now)
			if err != nil {
				t.Fatal(err)
			}
			r := request(g.Method, g.Path, headers(g.SignedPubKey, g.SignedOperation))
			got, err := Verify(r, g.Domain, now)
			if err != nil {
				t.Fatal(err)
			}
			if got != g.Address {
				t.Fatalf("address %q, want %q", got, g.Address)
			}
			// One more second past the key's hour: expired.
			if _, err := Verify(r, g.Domain, now.Add(time.Hour)); err == nil {
				t.Fatal("accepted after the key expired")
			}
		})
	}
}

// TestGoldenBytes pins SignRequest's byte format to the hand-made headers: same
// keys and clock give the same payloads, and the same SOL wallet signature
// (ed25519 is deterministic; ETH's and ES256's Python signatures are randomized).
func TestGoldenBytes(t *testing.T) {
	for _, g := range loadGolden(t) {
		t.Run(g.Chain, func(t *testing.T) {
			now, err := time.Parse(time.RFC3339, g.Now)
			if err != nil {
				t.Fatal(err)
			}
			wallet := walletFor(t, g.Chain, g.WalletKey)
			if wallet.Address() != g.Address {
				t.Fatalf("wallet address %q, golden %q", wallet.Address(), g.Address)
			}
			h, err := signRequest(wallet, ephemeralKey(t, g.EphemeralKey), g.Domain, g.Method, g.Path, now)
			if err != nil {
				t.Fatal(err)
			}
			gotPK, gotPKSig := decodeHeader(t, h.Get(HeaderSignedPubKey))
			wantPK, wantPKSig := decodeHeader(t, g.SignedPubKey)
			if !bytes.Equal(gotPK, wantPK) {
				t.Fatalf("pubkey payload\n got %s\nwant %s", gotPK, wantPK)
			}
			if g.Chain == ChainSOL && (gotPKSig != wantPKSig || h.Get(HeaderSignedPubKey) != g.SignedPubKey) {
				t.Fatalf("X-SignedPubKey\n got %s\nwant %s", h.Get(HeaderSignedPubKey), g.SignedPubKey)
			}
			gotOp, _ := decodeHeader(t, h.Get(HeaderSignedOperation))
			wantOp, _ := decodeHeader(t, g.SignedOperation)
			if !bytes.Equal(gotOp, wantOp) {
				t.Fatalf("operation payload\n got %s\nwant %s", gotOp, wantOp)
			}
			// Our operation header with the golden pubkey header, and the reverse:
			// the same ephemeral key, so both pairs verify.
			for _, pair := range [][2]string{
				{g.SignedPubKey, h.Get(HeaderSignedOperation)},
				{h.Get(HeaderSignedPubKey), g.SignedOperation},
			} {
				if _, err := Verify(request(g.Method, g.Path, headers(pair[0], pair[1])), g.Domain, now); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestSignRequestErrors(t *testing.T) {
	eth := ethWallet(t)
	path := "/control/machine/" + testVM + "/stop"
	for _, tc := range []struct {
		name                 string
		wallet               message.Signer
		domain, method, path string
	}{
		{"no wallet", nil, testDomain, "POST", path},
		{"NULS wallet", eth.WithChain(message.ChainNULS), testDomain, "POST", path},
		{"TEZOS wallet", (&solana.Account{}).WithChain(message.ChainTEZOS), testDomain, "POST", path},
		{"empty domain", eth, "", "POST", path},
		{"domain with a path", eth, "crn.example.org/x", "POST", path},
		{"empty method", eth, testDomain, "", path},
		{"relative path", eth, testDomain, "POST", "control/machine"},
		{"path with query", eth, testDomain, "POST", path + "?a=b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := SignRequest(tc.wallet, tc.domain, tc.method, tc.path, testNow); err == nil {
				t.Fatalf("signed: %v", h)
			}
		})
	}
}

// TestSignRequestBadSigner: a signer whose Sign is not what the node checks is
// caught before anything is sent.
func TestSignRequestBadSigner(t *testing.T) {
	other, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	liar := addressLiar{Signer: other, address: ethWallet(t).Address()}
	if _, err := SignRequest(liar, testDomain, "GET", "/control/machine/"+testVM+"/logs", testNow); err == nil {
		t.Fatal("signed with a key that is not the address's")
	}
	h, err := SignRequest(ethWallet(t), testDomain, http.MethodGet, "/x", testNow)
	if err != nil || h.Get(HeaderSignedPubKey) == "" || h.Get(HeaderSignedOperation) == "" {
		t.Fatalf("headers %v, %v", h, err)
	}
}

// addressLiar claims an address that is not its key's.
type addressLiar struct {
	message.Signer
	address string
}

func (a addressLiar) Address() string { return a.address }
