package substrate

import (
	"strings"
	"testing"

	"github.com/ChainSafe/go-schnorrkel"

	"github.com/go-aleph/go-aleph/message"
)

// FuzzVerify checks that no input panics, that every error is a code-1 error naming
// a field, and that an accepted signature really is the sender key's sr25519
// signature of the buffer, raw or <Bytes>-wrapped, and of that buffer only.
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
		if err := (Verifier{}).Verify(m); err != nil {
			t.Fatalf("second verification disagrees: %v", err)
		}
		m.ItemHash += "0"
		if err := (Verifier{}).Verify(m); err == nil {
			t.Fatal("the signature also verifies for another item_hash")
		}
	})
}
