package substrate

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// Substrate's development phrase and its root key (`subkey inspect "<phrase>"`,
// no derivation path).
const (
	devPhrase  = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
	devSeed    = "fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e"
	devPublic  = "46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a"
	devAddress = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV"
)

func TestAccountKeys(t *testing.T) {
	tests := []struct {
		name    string
		make    func() (*Account, error)
		public  string
		address string
	}{
		{"alice seed", func() (*Account, error) { return AccountFromSeed(aliceSeed) }, alicePublic, aliceSubstrate},
		{"alice seed without 0x", func() (*Account, error) { return AccountFromSeed(aliceSeed[2:]) }, alicePublic, aliceSubstrate},
		{"dev seed", func() (*Account, error) { return AccountFromSeed(devSeed) }, devPublic, devAddress},
		{"dev phrase", func() (*Account, error) { return AccountFromMnemonic(devPhrase, "") }, devPublic, devAddress},
		{"dev phrase, extra spaces", func() (*Account, error) {
			return AccountFromMnemonic("  "+strings.ReplaceAll(devPhrase, " ", "  ")+"\n", "")
		}, devPublic, devAddress},
		{"reader", func() (*Account, error) { return NewAccount(bytes.NewReader(mustHex(t, aliceSeed))) }, alicePublic, aliceSubstrate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.make()
			if err != nil {
				t.Fatal(err)
			}
			if pub := a.PublicKey(); hex.EncodeToString(pub[:]) != tt.public {
				t.Errorf("public key %x, want %s", pub, tt.public)
			}
			if a.Address() != tt.address {
				t.Errorf("address %s, want %s", a.Address(), tt.address)
			}
			if a.Format() != DefaultFormat || a.Chain() != message.ChainDOT {
				t.Errorf("format %d chain %s, want 42 DOT", a.Format(), a.Chain())
			}
		})
	}
}

// TestMnemonicPassword checks that the password changes the key (it salts PBKDF2).
func TestMnemonicPassword(t *testing.T) {
	a, err := AccountFromMnemonic(devPhrase, "password")
	if err != nil {
		t.Fatal(err)
	}
	if a.Address() == devAddress {
		t.Error("the password did not change the key")
	}
}

func TestWithFormat(t *testing.T) {
	a, err := AccountFromSeed(aliceSeed)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format  uint16
		address string
	}{
		{0, alicePolkadot},
		{2, aliceKusama},
		{42, aliceSubstrate},
	}
	for _, tt := range tests {
		b, err := a.WithFormat(tt.format)
		if err != nil {
			t.Fatalf("format %d: %v", tt.format, err)
		}
		if b.Address() != tt.address || b.Format() != tt.format {
			t.Errorf("format %d: address %s (format %d), want %s", tt.format, b.Address(), b.Format(), tt.address)
		}
	}
	if a.Address() != aliceSubstrate {
		t.Errorf("WithFormat changed the original account to %s", a.Address())
	}
	for _, f := range []uint16{46, 47, MaxFormat + 1} {
		if _, err := a.WithFormat(f); err == nil {
			t.Errorf("format %d accepted", f)
		}
	}
}

func TestAccountErrors(t *testing.T) {
	badHex := "0xzz" + aliceSeed[4:]
	tests := []struct {
		name string
		make func() (*Account, error)
	}{
		{"seed short", func() (*Account, error) { return AccountFromSeed(aliceSeed[:64]) }},
		{"seed long", func() (*Account, error) { return AccountFromSeed(aliceSeed + "00") }},
		{"seed non-hex", func() (*Account, error) { return AccountFromSeed(badHex) }},
		{"seed empty", func() (*Account, error) { return AccountFromSeed("") }},
		{"seed derivation path", func() (*Account, error) { return AccountFromSeed("//Alice") }},
		{"mnemonic unknown word", func() (*Account, error) {
			return AccountFromMnemonic(strings.Replace(devPhrase, "bottom", "bottomx", 1), "")
		}},
		{"mnemonic bad checksum", func() (*Account, error) {
			return AccountFromMnemonic(strings.Replace(devPhrase, "walk", "wall", 1), "")
		}},
		{"mnemonic 11 words", func() (*Account, error) {
			return AccountFromMnemonic(devPhrase[:strings.LastIndex(devPhrase, " ")], "")
		}},
		{"mnemonic empty", func() (*Account, error) { return AccountFromMnemonic("", "") }},
		{"mnemonic huge", func() (*Account, error) { return AccountFromMnemonic(strings.Repeat("walk ", 100000), "") }},
		{"short reader", func() (*Account, error) { return NewAccount(bytes.NewReader(make([]byte, 31))) }},
		{"failing reader", func() (*Account, error) { return NewAccount(iotest.ErrReader(iotest.ErrTimeout)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.make()
			if err == nil {
				t.Fatalf("accepted, address %s", a.Address())
			}
			if strings.Contains(err.Error(), badHex) || strings.Contains(err.Error(), "bottomx") {
				t.Errorf("error repeats the secret: %v", err)
			}
		})
	}
}

// TestSignRoundTrip signs with fresh random keys in several formats: sr25519 is
// randomized, so there is no fixed signature to compare with.
func TestSignRoundTrip(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	base, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []uint16{0, 2, 42, 64, MaxFormat} {
		a, err := base.WithFormat(f)
		if err != nil {
			t.Fatal(err)
		}
		m := &message.Message{Chain: a.Chain(), Sender: a.Address(), Type: message.TypePost,
			ItemType: message.ItemStorage, ItemHash: strings.Repeat("cd", 32)}
		sig, err := a.Sign(m.VerificationBuffer())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sig, `{"curve":"sr25519","data":"0x`) || len(sig) != len(`{"curve":"sr25519","data":"0x"}`)+128 {
			t.Errorf("format %d: signature field %s is not the TypeScript form", f, sig)
		}
		m.Signature = sig
		if err := r.Verify(m); err != nil {
			t.Errorf("format %d: round trip rejected: %v", f, err)
		}
		m.ItemHash = strings.Repeat("dc", 32)
		chaintest.CheckSignatureError(t, r.Verify(m), "signature")
	}
}

func TestSignIsRandomized(t *testing.T) {
	a, err := AccountFromSeed(aliceSeed)
	if err != nil {
		t.Fatal(err)
	}
	buf := message.VerificationBuffer(message.ChainDOT, a.Address(), message.TypePost, strings.Repeat("ab", 32))
	s1, err1 := a.Sign(buf)
	s2, err2 := a.Sign(buf)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if s1 == s2 {
		t.Error("two signatures are equal; sr25519 nonces should be random")
	}
	for _, s := range []string{s1, s2} {
		if err := VerifySignature(buf, a.Address(), s); err != nil {
			t.Errorf("signature rejected: %v", err)
		}
	}
}

// TestWrappedSignature signs as the polkadot.js extension does, over
// "<Bytes>" + buffer + "</Bytes>", and checks that the plain buffer verifies.
func TestWrappedSignature(t *testing.T) {
	a, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := message.VerificationBuffer(message.ChainDOT, a.Address(), message.TypePost, strings.Repeat("ef", 32))
	tests := []struct {
		name   string
		signed string
		ok     bool
	}{
		{"wrapped", bytesOpen + string(buf) + bytesClose, true},
		{"raw", string(buf), true},
		{"open tag only", bytesOpen + string(buf), false},
		{"wrapped twice", bytesOpen + bytesOpen + string(buf) + bytesClose + bytesClose, false},
		{"other buffer wrapped", bytesOpen + string(buf) + "x" + bytesClose, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := a.sign([]byte(tt.signed))
			if err != nil {
				t.Fatal(err)
			}
			field := `{"curve":"sr25519","data":"` + hex.EncodeToString(sig[:]) + `"}`
			err = VerifySignature(buf, a.Address(), field)
			if tt.ok && err != nil {
				t.Errorf("rejected: %v", err)
			}
			if !tt.ok {
				chaintest.CheckSignatureError(t, err, "signature")
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	a, err := NewAccount(nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := message.VerificationBuffer(message.ChainDOT, a.Address(), message.TypePost, strings.Repeat("ab", 32))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Sign(buf); err != nil {
			b.Fatal(err)
		}
	}
}
