package solana

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// checkRFCAccount fails unless a is the RFC 8032 test-1 key signing for SOL.
func checkRFCAccount(t *testing.T, a *Account) {
	t.Helper()
	if got := a.Address(); got != rfcAddress {
		t.Errorf("address %s, want %s", got, rfcAddress)
	}
	if got := hex.EncodeToString(a.PublicKey()); got != rfcPubHex {
		t.Errorf("public key %s, want %s", got, rfcPubHex)
	}
	if got := a.ExportBase58(); got != rfcExport {
		t.Errorf("export %s, want %s", got, rfcExport)
	}
	if got := a.Chain(); got != message.ChainSOL {
		t.Errorf("chain %s, want SOL", got)
	}
}

func TestAccountConstructors(t *testing.T) {
	seed := mustHex(t, rfcSeedHex)
	tests := []struct {
		name string
		make func() (*Account, error)
	}{
		{"seed", func() (*Account, error) { return AccountFromSeed(seed) }},
		{"hex", func() (*Account, error) { return AccountFromHex(rfcSeedHex) }},
		{"0x hex", func() (*Account, error) { return AccountFromHex("0x" + rfcSeedHex) }},
		{"upper hex", func() (*Account, error) { return AccountFromHex(strings.ToUpper(rfcSeedHex)) }},
		{"phantom export", func() (*Account, error) { return AccountFromBase58(rfcExport) }},
		{"base58 seed", func() (*Account, error) { return AccountFromBase58(base58.Encode(seed)) }},
		{"reader", func() (*Account, error) { return NewAccount(bytes.NewReader(seed)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.make()
			if err != nil {
				t.Fatal(err)
			}
			checkRFCAccount(t, a)
		})
	}
}

func TestAccountConstructorErrors(t *testing.T) {
	seed := mustHex(t, rfcSeedHex)
	otherPub := mustHex(t, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c") // RFC 8032 test 2
	mismatched := base58.Encode(append(bytes.Clone(seed), otherPub...))
	secretHex := "zz" + rfcSeedHex[2:]
	tests := []struct {
		name string
		make func() (*Account, error)
	}{
		{"seed 31 bytes", func() (*Account, error) { return AccountFromSeed(seed[:31]) }},
		{"seed 64 bytes", func() (*Account, error) { return AccountFromSeed(append(bytes.Clone(seed), seed...)) }},
		{"seed nil", func() (*Account, error) { return AccountFromSeed(nil) }},
		{"hex short", func() (*Account, error) { return AccountFromHex(rfcSeedHex[2:]) }},
		{"hex long", func() (*Account, error) { return AccountFromHex(rfcSeedHex + "00") }},
		{"hex non-hex digit", func() (*Account, error) { return AccountFromHex(secretHex) }},
		{"hex empty", func() (*Account, error) { return AccountFromHex("") }},
		{"base58 mismatched public half", func() (*Account, error) { return AccountFromBase58(mismatched) }},
		{"base58 33 bytes", func() (*Account, error) { return AccountFromBase58(base58.Encode(append(bytes.Clone(seed), 1))) }},
		{"base58 bad character", func() (*Account, error) { return AccountFromBase58("0" + rfcExport[1:]) }},
		{"base58 empty", func() (*Account, error) { return AccountFromBase58("") }},
		{"base58 huge", func() (*Account, error) { return AccountFromBase58(strings.Repeat("2", 10000)) }},
		{"short reader", func() (*Account, error) { return NewAccount(bytes.NewReader(seed[:10])) }},
		{"failing reader", func() (*Account, error) { return NewAccount(iotest.ErrReader(iotest.ErrTimeout)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.make()
			if err == nil {
				t.Fatalf("accepted, got address %s", a.Address())
			}
			if strings.Contains(err.Error(), secretHex) || strings.Contains(err.Error(), rfcSeedHex[2:]) {
				t.Errorf("error repeats the secret: %v", err)
			}
		})
	}
}

// TestSignVector reproduces the clients.md §3.6(f) signature byte for byte.
func TestSignVector(t *testing.T) {
	a, err := AccountFromHex(rfcSeedHex)
	if err != nil {
		t.Fatal(err)
	}
	buf := message.VerificationBuffer(message.ChainSOL, rfcAddress, message.TypePost, rfcItemHash)
	got, err := a.Sign(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"signature":"` + rfcSignature + `","publicKey":"` + rfcAddress + `"}`
	if got != want {
		t.Errorf("signature field\n got %s\nwant %s", got, want)
	}
	if err := VerifySignature(buf, rfcAddress, got); err != nil {
		t.Errorf("own signature rejected: %v", err)
	}
}

func TestSignRoundTrip(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	sol, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	es := sol.WithChain(message.ChainES)
	if sol.Chain() != message.ChainSOL || es.Chain() != message.ChainES {
		t.Fatalf("chains %s and %s, want SOL and ES", sol.Chain(), es.Chain())
	}
	if es.Address() != sol.Address() {
		t.Errorf("WithChain changed the address")
	}
	for _, a := range []*Account{sol, es} {
		t.Run(string(a.Chain()), func(t *testing.T) {
			m := &message.Message{Chain: a.Chain(), Sender: a.Address(), Type: message.TypeAggregate,
				ItemType: message.ItemStorage, ItemHash: strings.Repeat("ab", 32)}
			sig, err := a.Sign(m.VerificationBuffer())
			if err != nil {
				t.Fatal(err)
			}
			m.Signature = sig
			if err := r.Verify(m); err != nil {
				t.Fatalf("round trip rejected: %v", err)
			}
			m.Type = message.TypePost
			chaintest.CheckSignatureError(t, r.Verify(m), "signature")
		})
	}
}

func TestSignOtherChain(t *testing.T) {
	a, err := AccountFromHex(rfcSeedHex)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := a.WithChain(message.ChainETH).Sign([]byte("x")); err == nil {
		t.Errorf("signed for ETH: %s", sig)
	}
}

func BenchmarkSign(b *testing.B) {
	a, err := NewAccount(nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := message.VerificationBuffer(message.ChainSOL, a.Address(), message.TypePost, rfcItemHash)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Sign(buf); err != nil {
			b.Fatal(err)
		}
	}
}
