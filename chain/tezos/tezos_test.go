package tezos

import (
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// TestVectors runs every entry of testdata/messages/tezos.json: tz2 raw, tz1 raw and
// tz1 micheline, with their negatives. Rejections must also name the right field.
func TestVectors(t *testing.T) {
	vs := chaintest.LoadVectors(t, vectorFile)
	if len(vs) != 14 {
		t.Fatalf("%d vectors, the README lists 14", len(vs))
	}
	valid, _ := chaintest.RunVectors(t, vs, Verifier{}, chaintest.RejectionNames(func(v chaintest.Vector) string {
		switch {
		case strings.HasPrefix(v.Note, "negative: signature altered"):
			return "signature.signature" // base58 checksum breaks
		case strings.HasPrefix(v.Note, "negative: signature bytes altered"):
			return "signature"
		case strings.HasPrefix(v.Note, "negative: sender replaced"):
			return "sender"
		}
		return ""
	}))
	if valid != 5 { // 3 valid plus 2 hash-mismatch entries
		t.Errorf("%d signature-valid entries, want 5", valid)
	}
}

func TestRegister(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	if got := r.Chains(); len(got) != 1 || got[0] != message.ChainTEZOS {
		t.Fatalf("registered %v, want [TEZOS]", got)
	}
	chaintest.RunVectors(t, chaintest.LoadVectors(t, vectorFile), r, nil)
}
