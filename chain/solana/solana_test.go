package solana

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

const vectorFile = "../../testdata/messages/sol.json"

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

type vector struct {
	Origin  string          `json:"origin"`
	Valid   bool            `json:"valid"`
	Note    string          `json:"note"`
	Message json.RawMessage `json:"message"`
}

// signatureValid reports whether the vector's signature should verify: hash
// mismatches are rejected by the hash check elsewhere, not by the signature.
func (v vector) signatureValid() bool {
	return v.Valid || strings.HasPrefix(v.Note, "hash mismatch")
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	data, err := os.ReadFile(vectorFile)
	if err != nil {
		tb.Fatalf("read vectors: %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		tb.Fatalf("decode vectors: %v", err)
	}
	if len(vs) == 0 {
		tb.Fatal("no vectors")
	}
	return vs
}

func decodeMessage(tb testing.TB, raw json.RawMessage) *message.Message {
	tb.Helper()
	var m message.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("decode message: %v", err)
	}
	return &m
}

// rfcMessage is the valid §3.6(f) message with the given signature field.
func rfcMessage(signature string) *message.Message {
	return &message.Message{Chain: message.ChainSOL, Sender: rfcAddress, Type: message.TypePost,
		ItemType: message.ItemInline, ItemHash: rfcItemHash, Signature: signature}
}

// checkSignatureError fails unless err is a code-1 error naming field.
func checkSignatureError(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want an error naming %q", field)
	}
	if got := message.CodeOf(err); got != message.CodeInvalidSignature {
		t.Errorf("code %d, want %d (err: %v)", got, message.CodeInvalidSignature, err)
	}
	if !errors.Is(err, message.ErrInvalidSignature) {
		t.Errorf("error %v is not ErrInvalidSignature", err)
	}
	if got := message.FieldOf(err); got != field {
		t.Errorf("field %q, want %q (err: %v)", got, field, err)
	}
}

func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	r := chain.NewRegistry()
	Register(r)
	valid := 0
	for i, v := range vs {
		m := decodeMessage(t, v.Message)
		err := r.Verify(m)
		if v.signatureValid() {
			valid++
			if err != nil {
				t.Errorf("vector %d (%s): rejected: %v", i, v.Note, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("vector %d (%s): accepted", i, v.Note)
			continue
		}
		if c := message.CodeOf(err); c != message.CodeInvalidSignature {
			t.Errorf("vector %d (%s): code %d, want 1: %v", i, v.Note, c, err)
		}
		if f := message.FieldOf(err); f != "sender" && !strings.HasPrefix(f, "signature") {
			t.Errorf("vector %d (%s): field %q, want sender or signature…", i, v.Note, f)
		}
	}
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
	checkSignatureError(t, Verifier{}.Verify(m), "signature")
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
			err := Verifier{}.Verify(m)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			checkSignatureError(t, err, tt.field)
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	vs := loadVectors(b)
	m := decodeMessage(b, vs[1].Message) // Python-form signature of the §3.6(f) POST
	v := Verifier{}
	if err := v.Verify(m); err != nil {
		b.Fatalf("vector rejected: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(m); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"short", "short"},
		{strings.Repeat("a", 100), strings.Repeat("a", 100)},
		{strings.Repeat("a", 101), strings.Repeat("a", 100) + "…"},
		{strings.Repeat("a", 99) + "é…", strings.Repeat("a", 99) + "…"}, // é would be cut in half
	}
	for _, tt := range tests {
		if got := clip(tt.in); got != tt.want {
			t.Errorf("clip(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
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
	checkSignatureError(t, Verifier{}.Verify(m), "signature")
}
