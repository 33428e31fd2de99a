package evm

import (
	"encoding/hex"
	"testing"

	"github.com/go-aleph/go-aleph/internal/chaintest"
)

// BenchmarkVerify is one full message verification: buffer, EIP-191 hash,
// public-key recovery, address and comparison. Run with -cpu 1 for per-core rates.
func BenchmarkVerify(b *testing.B) {
	chaintest.BenchVerify(b, Verifier{}, chaintest.ValidMessage(b, vectorFile, "ETH POST, real signature"))
}

// BenchmarkRecover is the public-key recovery alone (decred, pure Go).
func BenchmarkRecover(b *testing.B) {
	hash, rs, recid := benchSignature(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := recoverPublicKey(&hash, &rs, recid); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign is one deterministic EIP-191 signature of a verification buffer.
func BenchmarkSign(b *testing.B) {
	a := mustAccount(b, testKeyHex)
	m := chaintest.ValidMessage(b, vectorFile, "ETH POST signed with aleph-rs EVM_TEST_KEY")
	buf := m.VerificationBuffer()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Sign(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSignature(b *testing.B) (hash [32]byte, rs [64]byte, recid byte) {
	b.Helper()
	m := chaintest.ValidMessage(b, vectorFile, "ETH POST, real signature")
	sig, err := hex.DecodeString(m.Signature[2:])
	if err != nil {
		b.Fatal(err)
	}
	copy(rs[:], sig)
	return HashMessage(m.VerificationBuffer()), rs, sig[64] - 27
}
