package evm

import (
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// FuzzVerify feeds arbitrary envelopes to the verifier. It must never panic,
// every rejection must be a code-1 error naming a field, and every acceptance must
// hold up independently: the signature decodes, the key it recovers has the
// sender's address, plain ECDSA verification with that key succeeds, and
// verifying again gives the same answer.
func FuzzVerify(f *testing.F) {
	chaintest.FuzzEnvelope(f, vectorFile, func(t *testing.T, m *message.Message) {
		if chaintest.CheckVerify(t, Verifier{}, m) {
			checkAccepted(t, m)
		}
	})
}

// checkAccepted re-derives an accepted verification by another route.
func checkAccepted(t *testing.T, m *message.Message) {
	t.Helper()
	want, err := parseAddress(m.Sender)
	if err != nil {
		t.Fatalf("accepted a malformed sender %q: %v", m.Sender, err)
	}
	sig, err := decodeSignature(m.Signature)
	if err != nil {
		t.Fatalf("accepted an undecodable signature %q: %v", m.Signature, err)
	}
	recid, err := recoveryID(sig[64])
	if err != nil {
		t.Fatalf("accepted a bad v: %v", err)
	}
	buf := m.VerificationBuffer()
	hash := HashMessage(buf)
	xy, err := recoverPublicKey(&hash, (*[64]byte)(sig[:64]), recid)
	if err != nil {
		t.Fatalf("accepted, but recovery fails: %v", err)
	}
	if got := pubkeyAddress(&xy); got != want {
		t.Fatalf("accepted, but the recovered key is %s, not the sender %s", checksumHex(&got), m.Sender)
	}
	pub, err := secp256k1.ParsePubKey(append([]byte{4}, xy[:]...))
	if err != nil {
		t.Fatalf("recovered key does not parse: %v", err)
	}
	var r, s secp256k1.ModNScalar
	r.SetByteSlice(sig[:32])
	s.SetByteSlice(sig[32:64])
	if !ecdsa.NewSignature(&r, &s).Verify(hash[:], pub) {
		t.Fatal("accepted, but ECDSA verification with the recovered key fails")
	}
	addr, err := RecoverAddress(buf, sig[:])
	if err != nil || addr != checksumHex(&want) {
		t.Fatalf("RecoverAddress = %s, %v; want %s", addr, err, checksumHex(&want))
	}
}
