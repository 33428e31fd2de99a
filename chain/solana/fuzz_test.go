package solana

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/message"
)

// FuzzVerify checks that no input panics, that every error is a code-1 error naming
// a field, and that an accepted signature really is the sender's ed25519 signature
// of the buffer, and of that buffer only.
func FuzzVerify(f *testing.F) {
	for _, v := range loadVectors(f) {
		var m message.Message
		if err := m.UnmarshalJSON(v.Message); err != nil {
			f.Fatalf("decode vector: %v", err)
		}
		f.Add(string(m.Chain), m.Sender, string(m.Type), m.ItemHash, m.Signature)
	}
	f.Fuzz(func(t *testing.T, chainCode, sender, typ, itemHash, signature string) {
		m := &message.Message{Chain: message.Chain(chainCode), Sender: sender, Type: message.Type(typ),
			ItemHash: itemHash, Signature: signature}
		err := Verifier{}.Verify(m)
		if err != nil {
			if message.CodeOf(err) != message.CodeInvalidSignature {
				t.Fatalf("code %d, want 1: %v", message.CodeOf(err), err)
			}
			if f := message.FieldOf(err); f != "sender" && !strings.HasPrefix(f, "signature") {
				t.Fatalf("error names field %q: %v", f, err)
			}
			return
		}
		// Accepted: check it again by hand.
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
		if err := (Verifier{}).Verify(m); err != nil {
			t.Fatalf("second verification disagrees: %v", err)
		}
		m.ItemHash += "0"
		if err := (Verifier{}).Verify(m); err == nil {
			t.Fatal("the signature also verifies for another item_hash")
		}
	})
}
