package tezos

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

func BenchmarkVerify(b *testing.B) {
	cases := []struct {
		name string
		m    func(b *testing.B) *message.Message
	}{
		{"ed25519-raw", func(b *testing.B) *message.Message { return vectorMessage(b, vecTz1Raw) }},
		{"ed25519-micheline", func(b *testing.B) *message.Message { return vectorMessage(b, vecTz1Micheline) }},
		{"secp256k1-raw", func(b *testing.B) *message.Message { return vectorMessage(b, vecTz2Raw) }},
		{"p256-raw", p256Message},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { chaintest.BenchVerify(b, Verifier{}, c.m(b)) })
	}
}

// p256Message returns a message signed raw by a fresh tz3 key.
func p256Message(b *testing.B) *message.Message {
	b.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	u, err := priv.PublicKey.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	pub := append([]byte{2 | u[64]&1}, u[1:33]...)
	m := testMessage(addressOf(curveP256, pub))
	digest := blake2b.Sum256(m.VerificationBuffer())
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	m.Signature = signatureJSON(b, lookup(kindSignature, curveP256, 64).encode(raw),
		lookup(kindPublicKey, curveP256, 33).encode(pub), "")
	return m
}

func BenchmarkSign(b *testing.B) {
	a, err := NewAccount(nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := testMessage(a.Address()).VerificationBuffer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Sign(buf); err != nil {
			b.Fatal(err)
		}
	}
}
