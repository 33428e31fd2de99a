package solana

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

const vectorFile = "sol.json"

// The clients.md §3.6(f) vector: RFC 8032 test-1 seed signing a SOL POST.
const (
	rfcSeedHex   = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfcPubHex    = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	rfcAddress   = "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z"
	rfcExport    = "49W385L4rePHy6PAaQUovbD2aacgN4HsKXSMeUzRg4fmwXszN91JuMFrQRj3vMDpZuRF3ZknQBuRBoWQJEfXstMw"
	rfcItemHash  = "2d6ed06d1b40f1e9a09fdaed49bb07661cfcea6685dc9e879d0845842b4b51a5"
	rfcSignature = "5Xsk2AdNXpDFovjYrmgzWsMKxonEvCGWV1zLBcGbtpTMtiGiQvsB1GsPwjqdgen9CBupxWNAYiC6U8ksoh6FiXo4"
	// Another well-formed address (the pyaleph test key), for mismatch cases.
	otherAddress = "AzfsDdCQp8uqzR4ProJ7yyLGKNp9iXHt92rEoiAHG4Pw"
)

// rfcMessage is the valid §3.6(f) message with the given signature field.
func rfcMessage(signature string) *message.Message {
	return &message.Message{Chain: message.ChainSOL, Sender: rfcAddress, Type: message.TypePost,
		ItemType: message.ItemInline, ItemHash: rfcItemHash, Signature: signature}
}

func TestVectors(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	valid, _ := chaintest.RunVectors(t, chaintest.LoadVectors(t, vectorFile), r,
		func(t testing.TB, _ chaintest.Vector, _ *message.Message, err error) {
			if err != nil {
				chaintest.CheckRejection(t, err, "sender", "signature")
			}
		})
	// Two valid vectors and their two hash-mismatch twins.
	if valid != 4 {
		t.Errorf("%d signature-valid vectors, want 4", valid)
	}
}

func TestRegister(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	want := []message.Chain{message.ChainES, message.ChainSOL}
	if got := r.Chains(); !slices.Equal(got, want) {
		t.Errorf("registered %v, want %v", got, want)
	}
}

// TestChainIsSigned checks that a SOL signature does not carry over to ES.
func TestChainIsSigned(t *testing.T) {
	m := rfcMessage(`{"signature":"` + rfcSignature + `","publicKey":"` + rfcAddress + `"}`)
	if err := (Verifier{}).Verify(m); err != nil {
		t.Fatalf("SOL message rejected: %v", err)
	}
	m.Chain = message.ChainES
	chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
}

func TestSignatureForms(t *testing.T) {
	sig := rfcSignature
	key31 := base58.Encode(bytes.Repeat([]byte{7}, 31))
	sig63 := base58.Encode(bytes.Repeat([]byte{7}, 63))
	sig65 := base58.Encode(bytes.Repeat([]byte{7}, 65))
	tests := []struct {
		name      string
		sender    string
		signature string
		field     string // "" when the signature must verify
	}{
		{"typescript compact", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `"}`, ""},
		{"python spaced", rfcAddress, `{"publicKey": "` + rfcAddress + `", "signature": "` + sig + `"}`, ""},
		{"pretty printed", rfcAddress, "{\n  \"publicKey\" : \"" + rfcAddress + "\",\n\t\"signature\":\"" + sig + "\"\n}\n", ""},
		{"version 1", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","version":1}`, ""},
		{"version 1.0", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","version":1.0}`, ""},
		{"extra fields", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","x":[1,{"y":null}]}`, ""},
		{"escaped key text", rfcAddress, `{"signature":"` + sig + `","publicKey":"\u0046Ven3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z"}`, ""},
		{"repeated key keeps the last", rfcAddress, `{"signature":"bad","publicKey":"` + rfcAddress + `","signature":"` + sig + `"}`, ""},

		{"not JSON", rfcAddress, `{{{{{`, "signature"},
		{"bare base58 signature", rfcAddress, sig, "signature"},
		{"JSON string", rfcAddress, `"` + sig + `"`, "signature"},
		{"JSON array", rfcAddress, `["` + sig + `","` + rfcAddress + `"]`, "signature"},
		{"JSON null", rfcAddress, `null`, "signature"},
		{"trailing data", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `"} {}`, "signature"},
		{"too long", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","pad":"` + strings.Repeat("x", message.MaxSignatureLength) + `"}`, "signature"},
		{"missing signature", rfcAddress, `{"publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"null signature", rfcAddress, `{"signature":null,"publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"numeric signature", rfcAddress, `{"signature":12,"publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"missing publicKey", rfcAddress, `{"signature":"` + sig + `"}`, "signature.publicKey"},
		{"publicKey in other case", rfcAddress, `{"signature":"` + sig + `","PublicKey":"` + rfcAddress + `"}`, "signature.publicKey"},
		{"publicKey object", rfcAddress, `{"signature":"` + sig + `","publicKey":{"k":"` + rfcAddress + `"}}`, "signature.publicKey"},
		{"version 2", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","version":2}`, "signature.version"},
		{"version string", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","version":"1"}`, "signature.version"},
		{"version null", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","version":null}`, "signature.version"},
		{"version true", rfcAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `","version":true}`, "signature.version"},
		{"publicKey is not the sender", otherAddress, `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `"}`, "sender"},
		{"sender with a space", rfcAddress + " ", `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `"}`, "sender"},
		{"publicKey bad base58", "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96O", `{"signature":"` + sig + `","publicKey":"FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96O"}`, "signature.publicKey"},
		{"publicKey 31 bytes", key31, `{"signature":"` + sig + `","publicKey":"` + key31 + `"}`, "signature.publicKey"},
		{"publicKey too long", rfcAddress + "1", `{"signature":"` + sig + `","publicKey":"` + rfcAddress + `1"}`, "signature.publicKey"},
		{"publicKey empty", "", `{"signature":"` + sig + `","publicKey":""}`, "signature.publicKey"},
		{"signature bad base58", rfcAddress, `{"signature":"` + sig[:40] + "0" + sig[41:] + `","publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"signature 63 bytes", rfcAddress, `{"signature":"` + sig63 + `","publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"signature 65 bytes", rfcAddress, `{"signature":"` + sig65 + `","publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"signature 89 characters", rfcAddress, `{"signature":"` + sig + `2","publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"signature empty", rfcAddress, `{"signature":"","publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"signature huge", rfcAddress, `{"signature":"` + strings.Repeat("z", 4000) + `","publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"signature with a space", rfcAddress, `{"signature":"` + sig + ` ","publicKey":"` + rfcAddress + `"}`, "signature.signature"},
		{"signature of something else", rfcAddress, `{"signature":"` + sig[:20] + "A" + sig[21:] + `","publicKey":"` + rfcAddress + `"}`, "signature"},
		{"zero signature", rfcAddress, `{"signature":"` + strings.Repeat("1", 64) + `","publicKey":"` + rfcAddress + `"}`, "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := rfcMessage(tt.signature)
			m.Sender = tt.sender
			chaintest.CheckVerdict(t, Verifier{}.Verify(m), tt.field)
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	vs := chaintest.LoadVectors(b, vectorFile)
	// Python-form signature of the §3.6(f) POST.
	chaintest.BenchVerify(b, Verifier{}, chaintest.DecodeMessage(b, vs[1].Message))
}

// TestSmallOrderKeyForgery: the identity point as public key with R = identity and
// S = 0 passes crypto/ed25519 for any buffer. PyNaCl (libsodium) refuses it, and so
// must we, or anyone could post as that address.
func TestSmallOrderKeyForgery(t *testing.T) {
	identity := append([]byte{1}, make([]byte, 31)...)
	sig := append(slices.Clone(identity), make([]byte, 32)...)
	sender := base58.Encode(identity)
	m := &message.Message{Chain: message.ChainSOL, Sender: sender, Type: message.TypePost,
		ItemType: message.ItemInline, ItemHash: rfcItemHash}
	if !ed25519.Verify(identity, m.VerificationBuffer(), sig) {
		t.Fatal("premise: crypto/ed25519 should accept this forgery")
	}
	m.Signature = `{"signature":"` + base58.Encode(sig) + `","publicKey":"` + sender + `"}`
	chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
}
