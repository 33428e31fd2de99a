package tezos

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/blake2b"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// testMessage builds an unsigned storage message from sender.
func testMessage(sender string) *message.Message {
	return &message.Message{
		Chain:    message.ChainTEZOS,
		Sender:   sender,
		Type:     message.TypePost,
		Time:     message.TimeFromSeconds(1663944079.029),
		ItemType: message.ItemStorage,
		ItemHash: "72b2722b95582419cfa71f631ff6c6afc56344dc6a4609e772877621813040b7",
	}
}

// signatureJSON builds a signature object; signingType is omitted when empty.
func signatureJSON(tb testing.TB, sig, pk, signingType string) string {
	tb.Helper()
	f := map[string]any{"signature": sig, "publicKey": pk}
	if signingType != "" {
		f["signingType"] = signingType
	}
	return encodeFields(tb, f)
}

// signedPayload returns what m's signature covers under signingType.
func signedPayload(tb testing.TB, m *message.Message, signingType string) []byte {
	tb.Helper()
	if signingType != SigningMicheline {
		return m.VerificationBuffer()
	}
	p, err := MichelinePayload(m.VerificationBuffer(), m.Time, DefaultDAppURL)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestAccountRoundTrip(t *testing.T) {
	a, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	var _ message.Signer = a
	if a.Chain() != message.ChainTEZOS || !strings.HasPrefix(a.Address(), "tz1") || len(a.Address()) != 36 {
		t.Fatalf("chain %s address %s", a.Chain(), a.Address())
	}
	m := testMessage(a.Address())
	if m.Signature, err = a.Sign(m.VerificationBuffer()); err != nil {
		t.Fatal(err)
	}
	if err := (Verifier{}).Verify(m); err != nil {
		t.Fatalf("own signature rejected: %v", err)
	}
	// Compact JSON, signature first, the Python SDK's two members only.
	var f map[string]string
	if err := json.Unmarshal([]byte(m.Signature), &f); err != nil || len(f) != 2 {
		t.Fatalf("signature %s: %v", m.Signature, err)
	}
	want := `{"signature":"` + f["signature"] + `","publicKey":"` + a.PublicKey() + `"}`
	if m.Signature != want || !strings.HasPrefix(f["signature"], "edsig") {
		t.Fatalf("signature %s, want the shape %s", m.Signature, want)
	}
	// ed25519 is deterministic.
	if again, _ := a.Sign(m.VerificationBuffer()); again != m.Signature {
		t.Fatal("signing twice gave two signatures")
	}
	// Another sender, or another account, must not verify.
	b, _ := NewAccount(nil)
	m.Sender = b.Address()
	chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "sender")
}

func TestAccountFromSecretKey(t *testing.T) {
	// Flextesa sandbox accounts, published with their keys.
	tests := []struct {
		edsk, edpk, tz1 string
	}{
		{"edsk3QoqBuvdamxouPhin7swCvkQNgq4jP5KZPbwWNnwdZpSpJiEbq", "edpkvGfYw3LyB1UcCahKQk4rF2tvbMUk8GFiTuMjL75uGXrpvKXhjn", "tz1VSUr8wwNhLAzempoch5d6hLRiTh8Cjcjb"},
		{"edsk3RFfvaFaxbHx8BMtEW1rKQcPtDML3LXjNqMNLCzC3wLC1bWbAt", "edpkurPsQ8eUApnLUJ9ZPDvu98E8VNj4KtJa1aZr16Cr5ow5VHKnz4", "tz1aSkwEot3L2kmUvcoxzjMomb9mvBNuzFK6"},
	}
	long := lookup(kindSecretKey, curveEd25519, 64)
	for _, tt := range tests {
		t.Run(tt.tz1, func(t *testing.T) {
			a, err := AccountFromSecretKey(tt.edsk)
			if err != nil {
				t.Fatal(err)
			}
			if a.PublicKey() != tt.edpk || a.Address() != tt.tz1 || a.SecretKey() != tt.edsk {
				t.Fatalf("got %s %s %s", a.PublicKey(), a.Address(), a.SecretKey())
			}
			// The 98-character form: seed ‖ public key.
			full := long.encode(append(a.priv.Seed(), a.pub...))
			if len(full) != 98 || !strings.HasPrefix(full, "edsk") {
				t.Fatalf("long form %s", full)
			}
			b, err := AccountFromSecretKey(full)
			if err != nil || b.Address() != tt.tz1 {
				t.Fatalf("long form: %v, %v", b, err)
			}
			other := append(a.priv.Seed(), bytes.Repeat([]byte{1}, 32)...)
			if _, err := AccountFromSecretKey(long.encode(other)); err == nil {
				t.Fatal("long form with a foreign public half accepted")
			}
		})
	}
	for _, bad := range []string{"", "edsk", "edpkvGfYw3LyB1UcCahKQk4rF2tvbMUk8GFiTuMjL75uGXrpvKXhjn",
		"edsk3QoqBuvdamxouPhin7swCvkQNgq4jP5KZPbwWNnwdZpSpJiEbr"} {
		if _, err := AccountFromSecretKey(bad); err == nil {
			t.Errorf("secret key %q accepted", bad)
		}
	}
}

func TestAccountFromSeed(t *testing.T) {
	// RFC 8032 test 1, the ed25519 key of testdata/primitives.json.
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	a, err := AccountFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(a.pub); got != "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a" {
		t.Fatalf("public key %s", got)
	}
	if addr, err := AddressFromPublicKey(a.PublicKey()); err != nil || addr != a.Address() {
		t.Fatalf("address %s, %v; account says %s", addr, err, a.Address())
	}
	if _, err := AccountFromSeed(seed[:31]); err == nil {
		t.Fatal("31-byte seed accepted")
	}
	if _, err := NewAccount(bytes.NewReader(seed[:10])); err == nil {
		t.Fatal("short entropy accepted")
	}
	b, err := NewAccount(bytes.NewReader(seed))
	if err != nil || b.Address() != a.Address() {
		t.Fatalf("NewAccount from the seed: %v, %v", b, err)
	}
}

// TestTz2RoundTrip signs with a fresh secp256k1 key (RFC 6979, low-S) under both
// the spsig1 and the generic prefix, raw and micheline.
func TestTz2RoundTrip(t *testing.T) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.PubKey().SerializeCompressed()
	sppk := lookup(kindPublicKey, curveSecp256k1, 33).encode(pub)
	addr, err := AddressFromPublicKey(sppk)
	if err != nil || !strings.HasPrefix(addr, "tz2") {
		t.Fatalf("address %s, %v", addr, err)
	}
	for _, signingType := range []string{"", SigningMicheline} {
		m := testMessage(addr)
		digest := blake2b.Sum256(signedPayload(t, m, signingType))
		sig := secpecdsa.Sign(priv, digest[:])
		r, s := sig.R(), sig.S()
		rb, sb := r.Bytes(), s.Bytes()
		raw := append(rb[:], sb[:]...)
		for _, c := range []curve{curveSecp256k1, curveGeneric} {
			m.Signature = signatureJSON(t, lookup(kindSignature, c, 64).encode(raw), sppk, signingType)
			if err := (Verifier{}).Verify(m); err != nil {
				t.Errorf("%s %q: %v", c, signingType, err)
			}
		}
		m.ItemHash = strings.Repeat("1", 64)
		chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
	}
}

// TestTz3RoundTrip signs with a fresh P-256 key under the p2sig and generic
// prefixes. pytezos verifies P-256 with fastecdsa, which accepts high S, so (r, n-s)
// must verify too.
func TestTz3RoundTrip(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	pub := append([]byte{2 | u[64]&1}, u[1:33]...)
	p2pk := lookup(kindPublicKey, curveP256, 33).encode(pub)
	addr, err := AddressFromPublicKey(p2pk)
	if err != nil || !strings.HasPrefix(addr, "tz3") {
		t.Fatalf("address %s, %v", addr, err)
	}
	n := elliptic.P256().Params().N
	for _, signingType := range []string{"", SigningMicheline} {
		m := testMessage(addr)
		digest := blake2b.Sum256(signedPayload(t, m, signingType))
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		for _, sv := range []*big.Int{s, new(big.Int).Sub(n, s)} {
			raw := make([]byte, 64)
			r.FillBytes(raw[:32])
			sv.FillBytes(raw[32:])
			for _, c := range []curve{curveP256, curveGeneric} {
				m.Signature = signatureJSON(t, lookup(kindSignature, c, 64).encode(raw), p2pk, signingType)
				if err := (Verifier{}).Verify(m); err != nil {
					t.Errorf("%s %q: %v", c, signingType, err)
				}
			}
		}
		// A p2sig with an ed25519 key is a curve mismatch; with its own key, a
		// changed buffer fails.
		m.Type = message.TypeStore
		chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
		edpk := lookup(kindPublicKey, curveEd25519, 32).encode(make([]byte, ed25519.PublicKeySize))
		m.Sender = addressOf(curveEd25519, make([]byte, 32))
		m.Signature = signatureJSON(t, lookup(kindSignature, curveP256, 64).encode(make([]byte, 64)), edpk, signingType)
		chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature.signature")
	}
}
