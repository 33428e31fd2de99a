package avalanche

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

const vectorFile = "avax.json"

// evmTestKey is aleph-rs's EVM_TEST_KEY; avax.json's "sender replaced" vector uses
// its X-chain address.
const (
	evmTestKey     = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efbba0f2d1db744ce06"
	evmTestKeyAddr = "X-avax1ygx9unaum3td775zznq7shjmgrhlxfs0c0g575"
)

func TestVectors(t *testing.T) {
	// Every AVAX negative is a bad signature for this sender.
	chaintest.RunVectors(t, chaintest.LoadVectors(t, vectorFile), Verifier{},
		chaintest.RejectionNames(func(chaintest.Vector) string { return "signature" }))
}

func TestRegister(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	if got := r.Chains(); len(got) != 1 || got[0] != message.ChainAVAX {
		t.Fatalf("registered %v, want [AVAX]", got)
	}
	m := chaintest.ValidMessage(t, vectorFile, "")
	if err := r.Verify(m); err != nil {
		t.Fatalf("registry rejected the valid vector: %v", err)
	}
	m.Signature = ""
	chaintest.CheckSignatureError(t, r.Verify(m), "signature")
}

// cb58 builds the cb58 text of raw (r‖s‖recid) with a correct checksum.
func cb58(raw []byte) string { return EncodeSignature(raw) }

func rawSignature(t *testing.T, m *message.Message) []byte {
	t.Helper()
	b, err := base58.Decode(m.Signature)
	if err != nil || len(b) != 69 {
		t.Fatalf("vector signature: %d bytes, %v", len(b), err)
	}
	return b[:65]
}

func TestMalformed(t *testing.T) {
	base := chaintest.ValidMessage(t, vectorFile, "")
	raw := rawSignature(t, base)
	with := func(f func(b []byte)) string {
		b := bytes.Clone(raw)
		f(b)
		return cb58(b)
	}
	order := secp256k1.Params().N.Bytes()
	tests := []struct {
		name   string
		mutate func(m *message.Message)
		field  string
	}{
		{"empty signature", func(m *message.Message) { m.Signature = "" }, "signature"},
		{"not base58", func(m *message.Message) { m.Signature = "0OIl" + m.Signature[4:] }, "signature"},
		{"pyaleph baba", func(m *message.Message) { m.Signature = "baba" }, "signature"},
		{"too long", func(m *message.Message) { m.Signature = strings.Repeat("2", 500) }, "signature"},
		{"hex instead of cb58", func(m *message.Message) { m.Signature = "0x" + strings.Repeat("ab", 65) }, "signature"},
		{"64 bytes", func(m *message.Message) { m.Signature = cb58(raw[:64]) }, "signature"},
		{"66 bytes", func(m *message.Message) { m.Signature = cb58(append(bytes.Clone(raw), 0)) }, "signature"},
		{"no checksum", func(m *message.Message) { m.Signature = base58.Encode(raw) }, "signature"},
		{"checksum flipped", func(m *message.Message) {
			b, _ := base58.Decode(m.Signature)
			b[68] ^= 1
			m.Signature = base58.Encode(b)
		}, "signature"},
		{"recid 4", func(m *message.Message) { m.Signature = with(func(b []byte) { b[64] = 4 }) }, "signature"},
		{"recid 27 (Electrum order)", func(m *message.Message) { m.Signature = with(func(b []byte) { b[64] = 27 }) }, "signature"},
		{"r zero", func(m *message.Message) { m.Signature = with(func(b []byte) { clear(b[:32]) }) }, "signature"},
		{"s zero", func(m *message.Message) { m.Signature = with(func(b []byte) { clear(b[32:64]) }) }, "signature"},
		{"r is the group order", func(m *message.Message) {
			m.Signature = with(func(b []byte) { copy(b[:32], order) })
		}, "signature"},
		{"s is the group order", func(m *message.Message) {
			m.Signature = with(func(b []byte) { copy(b[32:64], order) })
		}, "signature"},
		{"other recid", func(m *message.Message) { m.Signature = with(func(b []byte) { b[64] ^= 1 }) }, "signature"},
		{"type changed", func(m *message.Message) { m.Type = message.TypeAggregate }, "signature"},
		{"item hash changed", func(m *message.Message) { m.ItemHash = strings.Repeat("0", 64) }, "signature"},
		{"other chain id", func(m *message.Message) { m.Sender = "P" + m.Sender[1:] }, "signature"},
		{"sender without dash", func(m *message.Message) { m.Sender = strings.Replace(m.Sender, "-", "", 1) }, "sender"},
		{"empty sender", func(m *message.Message) { m.Sender = "" }, "sender"},
		{"testnet hrp", func(m *message.Message) { m.Sender = "X-fuji1" + m.Sender[len("X-avax1"):] }, "sender"},
		{"uppercase address", func(m *message.Message) { m.Sender = strings.ToUpper(m.Sender) }, "sender"},
		{"C-chain EVM sender", func(m *message.Message) { m.Sender = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770" }, "sender"},
		{"sender too long", func(m *message.Message) { m.Sender = "X-avax1" + strings.Repeat("q", 300) }, "sender"},
		{"bad bech32 checksum", func(m *message.Message) { m.Sender = m.Sender[:len(m.Sender)-1] + "q" }, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := *base
			tt.mutate(&m)
			chaintest.CheckSignatureError(t, Verifier{}.Verify(&m), tt.field)
		})
	}
}

// TestHighS checks that the mirror signature (N-s, other parity) verifies, as with
// libsecp256k1's recovery, which does not require low S.
func TestHighS(t *testing.T) {
	m := chaintest.ValidMessage(t, vectorFile, "")
	raw := bytes.Clone(rawSignature(t, m))
	var s secp256k1.ModNScalar
	if s.SetByteSlice(raw[32:64]) {
		t.Fatal("vector s overflows")
	}
	if s.IsOverHalfOrder() {
		t.Fatal("vector s is already high")
	}
	s.Negate()
	sb := s.Bytes()
	copy(raw[32:64], sb[:])
	raw[64] ^= 1
	m.Signature = cb58(raw)
	if err := (Verifier{}).Verify(m); err != nil {
		t.Fatalf("high-S mirror rejected: %v", err)
	}
}

func TestDigestLayout(t *testing.T) {
	buf := []byte("AVAX\nX-avax1…\nPOST\nabc")
	want := sha256.Sum256(append(append([]byte("\x1aAvalanche Signed Message:\n"), 0, 0, 0, byte(len(buf))), buf...))
	if got := Digest(buf); got != want {
		t.Fatalf("digest %x, want %x", got, want)
	}
}

func TestAccountKnownKey(t *testing.T) {
	for _, in := range []string{evmTestKey, "0x" + evmTestKey} {
		a, err := AccountFromHex(in)
		if err != nil {
			t.Fatalf("AccountFromHex(%q): %v", in, err)
		}
		if got := a.Address(); got != evmTestKeyAddr {
			t.Errorf("address %s, want %s", got, evmTestKeyAddr)
		}
		if a.Chain() != message.ChainAVAX {
			t.Errorf("chain %s", a.Chain())
		}
		if got := len(a.PublicKey()); got != 33 {
			t.Errorf("public key of %d bytes", got)
		}
	}
}

func TestAccountRoundTrip(t *testing.T) {
	fixed, err := AccountFromHex(evmTestKey)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := NewAccount(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Account{fixed, fresh} {
		m := &message.Message{Chain: a.Chain(), Sender: a.Address(), Type: message.TypePost,
			ItemType: message.ItemInline, ItemHash: message.HashContent([]byte(`{"a":1}`))}
		sig, err := a.Sign(m.VerificationBuffer())
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		again, _ := a.Sign(m.VerificationBuffer())
		if sig != again {
			t.Errorf("signing is not deterministic: %s then %s", sig, again)
		}
		m.Signature = sig
		if err := (Verifier{}).Verify(m); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		raw, _ := base58.Decode(sig)
		var s secp256k1.ModNScalar
		s.SetByteSlice(raw[32:64])
		if s.IsOverHalfOrder() {
			t.Errorf("signature has a high S")
		}
		m.Type = message.TypeStore
		chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
	}
}

func TestAccountErrors(t *testing.T) {
	bad := []string{
		"",
		"0x",
		evmTestKey[:62],
		evmTestKey + "00",
		"zz" + evmTestKey[2:],
		strings.Repeat("0", 64),
		strings.Repeat("f", 64),
		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", // N
	}
	for _, in := range bad {
		if a, err := AccountFromHex(in); err == nil {
			t.Errorf("AccountFromHex(%q) = %s, want an error", in, a.Address())
		}
	}
	if _, err := NewAccount(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("NewAccount with a failing reader succeeded")
	}
	if _, err := NewAccount(nil); err == nil {
		t.Error("NewAccount(nil) succeeded")
	}
}

func FuzzVerify(f *testing.F) {
	chaintest.FuzzSigned(f, vectorFile, message.ChainAVAX, func(t *testing.T, m *message.Message) {
		chaintest.CheckVerify(t, Verifier{}, m)
	})
}

func BenchmarkVerify(b *testing.B) {
	chaintest.BenchVerify(b, Verifier{}, chaintest.ValidMessage(b, vectorFile, ""))
}

func BenchmarkSign(b *testing.B) {
	a, err := AccountFromHex(evmTestKey)
	if err != nil {
		b.Fatal(err)
	}
	buf := chaintest.ValidMessage(b, vectorFile, "").VerificationBuffer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Sign(buf); err != nil {
			b.Fatal(err)
		}
	}
}
