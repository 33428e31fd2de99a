package substrate

import (
	"testing"

	"github.com/ChainSafe/go-schnorrkel"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// FuzzVerify checks that no input panics, that every error is a code-1 error naming
// a field, and that an accepted signature really is the sender key's sr25519
// signature of the buffer, raw or <Bytes>-wrapped, and of that buffer only.
func FuzzVerify(f *testing.F) {
	chaintest.FuzzEnvelope(f, vectorFile, func(t *testing.T, m *message.Message) {
		if !chaintest.CheckVerify(t, Verifier{}, m, "sender", "signature") {
			return
		}
		// Accepted: check it again by hand.
		sender, signature := m.Sender, m.Signature
		sig, perr := parseSignature(signature)
		_, key, derr := DecodeSS58(sender)
		if perr != nil || derr != nil {
			t.Fatalf("accepted an undecodable signature or sender: %v, %v", perr, derr)
		}
		pub, kerr := schnorrkel.NewPublicKey(key)
		if kerr != nil {
			t.Fatalf("accepted a sender that is not a key: %v", kerr)
		}
		buf := m.VerificationBuffer()
		wrapped := []byte(bytesOpen + string(buf) + bytesClose)
		okRaw, _ := pub.Verify(sig, schnorrkel.NewSigningContext([]byte(signingContext), buf))
		okWrapped, _ := pub.Verify(sig, schnorrkel.NewSigningContext([]byte(signingContext), wrapped))
		if !okRaw && !okWrapped {
			t.Fatal("accepted a signature that schnorrkel rejects, raw and wrapped")
		}
	})
}
