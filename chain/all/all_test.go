package all

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/chain/avalanche"
	"github.com/go-aleph/go-aleph/chain/cosmos"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/chain/nuls"
	"github.com/go-aleph/go-aleph/chain/solana"
	"github.com/go-aleph/go-aleph/chain/substrate"
	"github.com/go-aleph/go-aleph/chain/tezos"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// accept runs the full acceptance path a node applies to an incoming message:
// envelope and content rules (with the inline hash), then the signature.
func accept(data []byte) error {
	m, err := message.Parse(data)
	if err != nil {
		return err
	}
	return NewRegistry().Verify(m)
}

// TestVectors checks that every signed vector in testdata/messages is accepted
// exactly when it is marked valid.
func TestVectors(t *testing.T) {
	files := chaintest.VectorFiles(t)
	if len(files) != 7 {
		t.Fatalf("want 7 vector files, got %d (%v)", len(files), files)
	}
	total, valid := 0, 0
	for _, f := range files {
		for i, v := range chaintest.LoadVectors(t, f) {
			total++
			err := accept(v.Message)
			switch {
			case v.Valid && err != nil:
				t.Errorf("%s[%d] (%s): rejected: %v", f, i, v.Note, err)
			case !v.Valid && err == nil:
				t.Errorf("%s[%d] (%s): accepted, want rejected", f, i, v.Note)
			case !v.Valid:
				code := message.CodeOf(err)
				if code != message.CodeInvalidFormat && code != message.CodeInvalidSignature {
					t.Errorf("%s[%d]: rejected with code %d: %v", f, i, code, err)
				}
				if message.FieldOf(err) == "" {
					t.Errorf("%s[%d]: error %q names no field", f, i, err)
				}
			default:
				valid++
			}
		}
	}
	// The counts in testdata/README.md: 99 entries, 21 valid.
	if total != 99 || valid != 21 {
		t.Errorf("%d vectors with %d valid, want 99 with 21", total, valid)
	}
}

func TestUnsupportedChains(t *testing.T) {
	r := NewRegistry()
	for _, c := range []message.Chain{message.ChainAURORA, message.ChainSTT, message.ChainNULS, "BTC"} {
		err := r.Verify(&message.Message{Chain: c, Sender: "x", Type: message.TypePost, ItemHash: "h", Signature: "s"})
		if message.CodeOf(err) != message.CodeInvalidFormat || !errors.Is(err, message.ErrUnsupportedChain) {
			t.Errorf("%s: err = %v, want code 0 unsupported chain", c, err)
		}
	}
	for _, c := range message.Chains {
		switch c {
		case message.ChainAURORA, message.ChainSTT, message.ChainNULS:
			continue
		}
		if !contains(r.Chains(), c) {
			t.Errorf("chain %s has no verifier", c)
		}
	}
	err := r.Verify(&message.Message{Chain: message.ChainETH, Sender: "x", Type: message.TypePost, ItemHash: "h"})
	if message.CodeOf(err) != message.CodeInvalidSignature || message.FieldOf(err) != "signature" {
		t.Errorf("missing signature: %v", err)
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestSignersRoundTrip builds, signs, serializes, parses and verifies a message with
// every signer, as a client and a node would, and checks that tampering is caught.
func TestSignersRoundTrip(t *testing.T) {
	signers := []message.Signer{
		must[*evm.Account](t)(evm.NewAccount(rand.Reader)),
		must[*evm.Account](t)(evm.NewAccount(rand.Reader)).WithChain(message.ChainBASE),
		must[*solana.Account](t)(solana.NewAccount(rand.Reader)),
		must[*solana.Account](t)(solana.NewAccount(rand.Reader)).WithChain(message.ChainES),
		must[*substrate.Account](t)(substrate.NewAccount(rand.Reader)),
		must[*cosmos.Account](t)(cosmos.NewAccount(rand.Reader)),
		must[*tezos.Account](t)(tezos.NewAccount(rand.Reader)),
		must[*avalanche.Account](t)(avalanche.NewAccount(rand.Reader)),
		must[*nuls.Account](t)(nuls.NewAccount(rand.Reader)),
	}
	reg := NewRegistry()
	for _, s := range signers {
		t.Run(string(s.Chain()), func(t *testing.T) {
			b := &message.Builder{Signer: s, Now: func() time.Time { return time.Unix(1700000000, 500_000_000) }}
			built, err := b.Build(context.Background(), message.TypePost,
				&message.PostContent{Type: "test", Content: json.RawMessage(`{"body":"héllo <&>"}`)}, "TEST")
			if err != nil {
				t.Fatal(err)
			}
			wire, _ := json.Marshal(built.Message)
			if err := accept(wire); err != nil {
				t.Fatalf("own message rejected: %v\n%s", err, wire)
			}
			m, _ := message.Parse(wire)
			// Tampering with any signed field breaks the signature.
			for _, tamper := range []func(*message.Message){
				func(m *message.Message) { m.Type = message.TypeAggregate },
				func(m *message.Message) { m.ItemHash = strings.Repeat("0", 64) },
				func(m *message.Message) {
					other := signers[(indexOf(signers, s)+2)%len(signers)]
					m.Sender = other.Address()
				},
			} {
				c := *m
				tamper(&c)
				if err := reg.Verify(&c); err == nil {
					t.Errorf("tampered message verified: %+v", c)
				}
			}
		})
	}
}

func indexOf(s []message.Signer, v message.Signer) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestDevAccountsDeterministic(t *testing.T) {
	a, err := DevAccounts(2)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DevAccounts(2)
	if len(a) != 4 {
		t.Fatalf("%d accounts, want 4", len(a))
	}
	for i := range a {
		if a[i].Address != b[i].Address || a[i].Secret != b[i].Secret || a[i].Address == "" {
			t.Errorf("account %d not deterministic: %+v vs %+v", i, a[i], b[i])
		}
	}
	// The printed secret must import back to the same address.
	e, err := evm.AccountFromHex(a[0].Secret)
	if err != nil || e.Address() != a[0].Address {
		t.Errorf("eth dev secret does not import: %v", err)
	}
	s, err := solana.AccountFromBase58(a[2].Secret)
	if err != nil || s.Address() != a[2].Address {
		t.Errorf("sol dev secret does not import: %v", err)
	}
}
