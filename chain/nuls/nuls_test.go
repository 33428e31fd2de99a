package nuls

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
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

const vectorFile = "nuls2.json"

// evmTestKey is aleph-rs's EVM_TEST_KEY; nuls2.json's "sender replaced" vector uses
// its chain-1 address.
const (
	evmTestKey     = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efbba0f2d1db744ce06"
	evmTestKeyAddr = "NULSd6HgVxn7c38qk4EQTYduX3Yrm4nXMDFNA"
	evmTestPubKey  = "02203a1f00236c671537e6d0506a76550cb0fa2986f51a52341d8f8fadb1dafd56"
)

func TestVectors(t *testing.T) {
	// The altered signature still decodes and recovers some other key; the
	// replaced sender is well formed: both fail on the recovered address.
	chaintest.RunVectors(t, chaintest.LoadVectors(t, vectorFile), Verifier{},
		chaintest.RejectionNames(func(chaintest.Vector) string { return "signature" }))
}

func TestRegister(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	if got := r.Chains(); len(got) != 1 || got[0] != message.ChainNULS2 {
		t.Fatalf("registered %v, want [NULS2]", got)
	}
	m := chaintest.ValidMessage(t, vectorFile, "")
	if err := r.Verify(m); err != nil {
		t.Fatalf("registry rejected the valid vector: %v", err)
	}
	// Legacy NULS is deliberately unsupported: the registry answers code 0.
	m.Chain = message.ChainNULS
	err := r.Verify(m)
	if message.CodeOf(err) != message.CodeInvalidFormat || message.FieldOf(err) != "chain" {
		t.Fatalf("NULS message: got %v, want a code-0 error on chain", err)
	}
}

func rawSignature(t *testing.T, m *message.Message) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(b) != 65 {
		t.Fatalf("vector signature: %d bytes, %v", len(b), err)
	}
	return b
}

// nulsAddress builds "<prefix><letter>" + base58(hash ‖ xor) from a raw 23-byte hash.
func nulsAddress(prefix string, h []byte) string {
	var x byte
	for _, c := range h {
		x ^= c
	}
	return prefix + asciiLetters[len(prefix)-1:len(prefix)] + base58.Encode(append(bytes.Clone(h), x))
}

func TestMalformed(t *testing.T) {
	base := chaintest.ValidMessage(t, vectorFile, "")
	raw := rawSignature(t, base)
	with := func(f func(b []byte)) string {
		b := bytes.Clone(raw)
		f(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	order := secp256k1.Params().N.Bytes()
	senderHash := func(chainID uint16) []byte {
		h := binary.LittleEndian.AppendUint16(nil, chainID)
		h = append(h, 1)
		return append(h, bytes.Repeat([]byte{7}, 20)...)
	}
	tests := []struct {
		name   string
		mutate func(m *message.Message)
		field  string
	}{
		{"empty signature", func(m *message.Message) { m.Signature = "" }, "signature"},
		{"not base64", func(m *message.Message) { m.Signature = "!!!!" + m.Signature[4:] }, "signature"},
		{"url-safe alphabet", func(m *message.Message) {
			m.Signature = base64.URLEncoding.EncodeToString(append([]byte{28}, bytes.Repeat([]byte{0xff}, 64)...))
		}, "signature"},
		{"missing padding", func(m *message.Message) { m.Signature = strings.TrimRight(m.Signature, "=") }, "signature"},
		{"too long", func(m *message.Message) { m.Signature = strings.Repeat("A", 400) }, "signature"},
		{"hex", func(m *message.Message) { m.Signature = hex.EncodeToString(raw) }, "signature"},
		{"64 bytes", func(m *message.Message) { m.Signature = base64.StdEncoding.EncodeToString(raw[:64]) }, "signature"},
		{"66 bytes", func(m *message.Message) {
			m.Signature = base64.StdEncoding.EncodeToString(append(bytes.Clone(raw), 0))
		}, "signature"},
		{"recovery byte 31 (compressed flag)", func(m *message.Message) { m.Signature = with(func(b []byte) { b[0] += 4 }) }, "signature"},
		{"recovery byte 26", func(m *message.Message) { m.Signature = with(func(b []byte) { b[0] = 26 }) }, "signature"},
		{"recovery byte 0 (coincurve order)", func(m *message.Message) { m.Signature = with(func(b []byte) { b[0] = 0 }) }, "signature"},
		{"r zero", func(m *message.Message) { m.Signature = with(func(b []byte) { clear(b[1:33]) }) }, "signature"},
		{"s is the group order", func(m *message.Message) { m.Signature = with(func(b []byte) { copy(b[33:], order) }) }, "signature"},
		{"other recid", func(m *message.Message) { m.Signature = with(func(b []byte) { b[0] ^= 1 }) }, "signature"},
		{"type changed", func(m *message.Message) { m.Type = message.TypeStore }, "signature"},
		{"item hash changed", func(m *message.Message) { m.ItemHash = strings.Repeat("f", 64) }, "signature"},
		{"empty sender", func(m *message.Message) { m.Sender = "" }, "sender"},
		{"prefix only", func(m *message.Message) { m.Sender = "NULSd" }, "sender"},
		{"unknown prefix", func(m *message.Message) { m.Sender = "ABCDd" + m.Sender[5:] }, "sender"},
		{"EVM sender", func(m *message.Message) { m.Sender = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770" }, "sender"},
		{"not base58", func(m *message.Message) { m.Sender = "NULSd0OIl" + m.Sender[9:] }, "sender"},
		{"body too short", func(m *message.Message) { m.Sender = m.Sender[:20] }, "sender"},
		{"sender too long", func(m *message.Message) { m.Sender = "NULSd" + strings.Repeat("z", 300) }, "sender"},
		{"unsupported chain id", func(m *message.Message) { m.Sender = nulsAddress("NULS", senderHash(3)) }, "sender"},
		{"chain id 0", func(m *message.Message) { m.Sender = nulsAddress("NULS", senderHash(0)) }, "sender"},
		{"wrong letter", func(m *message.Message) { m.Sender = "NULSe" + m.Sender[5:] }, "signature"},
		{"testnet prefix on a chain-1 hash", func(m *message.Message) { m.Sender = "tNULSe" + m.Sender[5:] }, "signature"},
		{"well-formed testnet sender", func(m *message.Message) { m.Sender = nulsAddress("tNULS", senderHash(2)) }, "signature"},
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
	raw := rawSignature(t, m)
	var s secp256k1.ModNScalar
	if s.SetByteSlice(raw[33:]) || s.IsOverHalfOrder() {
		t.Fatal("vector s is not low")
	}
	s.Negate()
	sb := s.Bytes()
	copy(raw[33:], sb[:])
	raw[0] = 27 + ((raw[0] - 27) ^ 1)
	m.Signature = base64.StdEncoding.EncodeToString(raw)
	if err := (Verifier{}).Verify(m); err != nil {
		t.Fatalf("high-S mirror rejected: %v", err)
	}
}

func TestVarint(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "00"},
		{252, "fc"},
		{253, "fdfd00"},
		{0xffff, "fdffff"},
		{0x10000, "fe00000100"},
		{0xffffffff, "feffffffff"},
		{0x100000000, "ff0000000001000000"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(appendVarint(nil, tt.n)); got != tt.want {
			t.Errorf("varint(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}

func TestDigestLayout(t *testing.T) {
	short := []byte("NULS2\nNULSd…\nPOST\nabc")
	long := bytes.Repeat([]byte("x"), 300)
	tests := []struct {
		buf    []byte
		prefix []byte
	}{
		{short, []byte{byte(len(short))}},
		{long, []byte{0xfd, 0x2c, 0x01}},
	}
	for _, tt := range tests {
		in := append(append([]byte("\x18NULS Signed Message:\n"), tt.prefix...), tt.buf...)
		if got, want := Digest(tt.buf), sha256.Sum256(in); got != want {
			t.Errorf("digest of %d bytes: %x, want %x", len(tt.buf), got, want)
		}
	}
}

func TestAddress(t *testing.T) {
	pub, _ := hex.DecodeString(evmTestPubKey)
	parsed, err := secp256k1.ParsePubKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		chainID uint16
		key     []byte
		want    string // "" means an error
	}{
		{"mainnet", MainnetChainID, pub, evmTestKeyAddr},
		{"uncompressed key", MainnetChainID, parsed.SerializeUncompressed(), evmTestKeyAddr},
		{"testnet", TestnetChainID, pub, "tNULSe"},
		{"chain 3", 3, pub, ""},
		{"short key", MainnetChainID, pub[:32], ""},
		{"not on the curve", MainnetChainID, append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Address(tt.chainID, tt.key)
			switch {
			case tt.want == "" && err == nil:
				t.Fatalf("got %s, want an error", got)
			case tt.want == "":
			case err != nil:
				t.Fatalf("error: %v", err)
			case !strings.HasPrefix(got, tt.want) || (len(tt.want) > 6 && got != tt.want):
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
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
		if got := hex.EncodeToString(a.PublicKey()); got != evmTestPubKey {
			t.Errorf("public key %s, want %s", got, evmTestPubKey)
		}
		if a.Chain() != message.ChainNULS2 {
			t.Errorf("chain %s", a.Chain())
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
		if again, _ := a.Sign(m.VerificationBuffer()); sig != again {
			t.Errorf("signing is not deterministic: %s then %s", sig, again)
		}
		m.Signature = sig
		if err := (Verifier{}).Verify(m); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		raw, _ := base64.StdEncoding.DecodeString(sig)
		if raw[0] < 27 || raw[0] > 30 {
			t.Errorf("recovery byte %d, want 27 to 30", raw[0])
		}
		m.Type = message.TypeStore
		chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
	}
}

func TestAccountErrors(t *testing.T) {
	bad := []string{
		"",
		evmTestKey[:62],
		evmTestKey + "00",
		"zz" + evmTestKey[2:],
		strings.Repeat("0", 64),
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
	chaintest.FuzzSigned(f, vectorFile, message.ChainNULS2, func(t *testing.T, m *message.Message) {
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
