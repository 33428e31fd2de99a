package solana

import (
	"crypto/ed25519"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// FuzzVerify checks that no input panics, that every error is a code-1 error naming
// a field, and that an accepted signature really is the sender's ed25519 signature
// of the buffer, and of that buffer only.
func FuzzVerify(f *testing.F) {
	chaintest.FuzzEnvelope(f, vectorFile, func(t *testing.T, m *message.Message) {
		if !chaintest.CheckVerify(t, Verifier{}, m, "sender", "signature") {
			return
		}
		// Accepted: check it again by hand.
		sender, signature := m.Sender, m.Signature
		sf, perr := parseSignature(signature)
		if perr != nil {
			t.Fatalf("accepted a signature that does not parse: %v", perr)
		}
		if sf.publicKey != sender {
			t.Fatalf("accepted publicKey %q for sender %q", sf.publicKey, sender)
		}
		pub, derr := base58.Decode(sender)
		raw, serr := base58.Decode(sf.signature)
		if derr != nil || serr != nil || len(pub) != ed25519.PublicKeySize || len(raw) != ed25519.SignatureSize {
			t.Fatalf("accepted undecodable key or signature: %v, %v", derr, serr)
		}
		if !ed25519.Verify(pub, m.VerificationBuffer(), raw) {
			t.Fatal("accepted a signature that ed25519.Verify rejects")
		}
	})
}
