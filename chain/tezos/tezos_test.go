package tezos

import (
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

// TestVectors runs every entry of testdata/messages/tezos.json: tz2 raw, tz1 raw and
// tz1 micheline, with their negatives. Rejections must also name the right field.
func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) != 14 {
		t.Fatalf("%d vectors, the README lists 14", len(vs))
	}
	valid := 0
	for i, v := range vs {
		t.Run(v.Note[:min(len(v.Note), 40)], func(t *testing.T) {
			m := decodeMessage(t, v.Message)
			err := Verifier{}.Verify(m)
			if v.signatureValid() {
				if err != nil {
					t.Fatalf("vector %d (%s): %v", i, v.Note, err)
				}
				valid++
				return
			}
			switch {
			case strings.HasPrefix(v.Note, "negative: signature altered"):
				checkSignatureError(t, err, "signature.signature") // base58 checksum breaks
			case strings.HasPrefix(v.Note, "negative: signature bytes altered"):
				checkSignatureError(t, err, "signature")
			case strings.HasPrefix(v.Note, "negative: sender replaced"):
				checkSignatureError(t, err, "sender")
			default:
				if err == nil {
					t.Fatalf("vector %d (%s) accepted", i, v.Note)
				}
			}
		})
	}
	if valid != 5 { // 3 valid plus 2 hash-mismatch entries
		t.Errorf("%d entries verified, want 5", valid)
	}
}

func TestRegister(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	if got := r.Chains(); len(got) != 1 || got[0] != message.ChainTEZOS {
		t.Fatalf("registered %v, want [TEZOS]", got)
	}
	vs := loadVectors(t)
	for i, v := range vs {
		err := r.Verify(decodeMessage(t, v.Message))
		if (err == nil) != v.signatureValid() {
			t.Errorf("vector %d (%s): registry verify gave %v", i, v.Note, err)
		}
	}
}
