package tezos

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// Vector indexes in testdata/messages/tezos.json.
const (
	vecTz2Raw       = 0
	vecTz1Raw       = 1
	vecTz1Micheline = 2
)

// mustDecode decodes a value the test knows is well formed.
func mustDecode(tb testing.TB, s string, k kind) (*encoding, []byte) {
	tb.Helper()
	enc, payload, err := decode(s, k)
	if err != nil {
		tb.Fatalf("decode %s: %v", s, err)
	}
	return enc, payload
}

// TestVerifyMalformed alters one vector at a time and checks the rejection and the
// field it names.
func TestVerifyMalformed(t *testing.T) {
	tz2 := vectorMessage(t, vecTz2Raw)
	tz2Fields := signatureFields(t, tz2)
	tz1Fields := signatureFields(t, vectorMessage(t, vecTz1Raw))
	edpk := tz1Fields["publicKey"].(string)
	sppk := tz2Fields["publicKey"].(string)
	spsig := tz2Fields["signature"].(string)
	sigEnc, sigRaw := mustDecode(t, tz1Fields["signature"].(string), kindSignature)
	pkEnc, pkRaw := mustDecode(t, edpk, kindPublicKey)
	edsig := lookup(kindSignature, curveEd25519, 64).encode(sigRaw) // same bytes, specific prefix
	edpkBadChecksum := []byte(edpk)
	edpkBadChecksum[len(edpk)-1] ^= 1

	// Changes to the signature object of the tz1 raw vector.
	set := func(k string, v any) func(map[string]any) { return func(f map[string]any) { f[k] = v } }
	del := func(k string) func(map[string]any) { return func(f map[string]any) { delete(f, k) } }
	objectTests := []struct {
		name   string
		change func(map[string]any)
		field  string // "" means the altered vector must still verify
	}{
		{"control", func(map[string]any) {}, ""},
		{"explicit raw", set("signingType", "raw"), ""},
		{"dAppUrl ignored for raw", set("dAppUrl", "https://example.org"), ""},
		{"unknown member ignored", set("extra", []int{1}), ""},
		{"specific edsig prefix", set("signature", edsig), ""},
		{"signature missing", del("signature"), "signature.signature"},
		{"signature null", set("signature", nil), "signature.signature"},
		{"signature number", set("signature", 5), "signature.signature"},
		{"signature empty", set("signature", ""), "signature.signature"},
		{"signature bad base58", set("signature", "sig0OIl"), "signature.signature"},
		{"signature unknown prefix", set("signature", edpk), "signature.signature"},
		{"signature wrong length", set("signature", sigEnc.encode(sigRaw[:63])), "signature.signature"},
		{"signature too long", set("signature", strings.Repeat("s", 1000)), "signature.signature"},
		{"signature curve mismatch", set("signature", spsig), "signature.signature"},
		{"publicKey missing", del("publicKey"), "signature.publicKey"},
		{"publicKey null", set("publicKey", nil), "signature.publicKey"},
		{"publicKey object", set("publicKey", map[string]string{"a": "b"}), "signature.publicKey"},
		{"publicKey bad checksum", set("publicKey", string(edpkBadChecksum)), "signature.publicKey"},
		{"publicKey unknown prefix", set("publicKey", "tz1SmGHzna3YhKropa3WudVq72jhTPDBn4r5"), "signature.publicKey"},
		{"publicKey wrong length", set("publicKey", pkEnc.encode(pkRaw[:31])), "signature.publicKey"},
		{"publicKey secret key", set("publicKey", "edsk3QoqBuvdamxouPhin7swCvkQNgq4jP5KZPbwWNnwdZpSpJiEbq"), "signature.publicKey"},
		{"publicKey invalid secp256k1 point", set("publicKey", lookup(kindPublicKey, curveSecp256k1, 33).encode(append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...))), "signature.publicKey"},
		{"publicKey invalid p256 point", set("publicKey", lookup(kindPublicKey, curveP256, 33).encode(append([]byte{5}, make([]byte, 32)...))), "signature.publicKey"},
		{"publicKey of another key type", set("publicKey", sppk), "sender"},
		{"signingType unknown", set("signingType", "json"), "signature.signingType"},
		{"signingType upper case", set("signingType", "RAW"), "signature.signingType"},
		{"signingType null", set("signingType", nil), "signature.signingType"},
		{"signingType number", set("signingType", 1), "signature.signingType"},
		{"signingType micheline over a raw signature", set("signingType", "micheline"), "signature"},
		{"dAppUrl null", set("dAppUrl", nil), "signature.dAppUrl"},
		{"dAppUrl number", set("dAppUrl", 1), "signature.dAppUrl"},
	}
	for _, tt := range objectTests {
		t.Run(tt.name, func(t *testing.T) {
			m := vectorMessage(t, vecTz1Raw)
			f := signatureFields(t, m)
			tt.change(f)
			m.Signature = encodeFields(t, f)
			chaintest.CheckVerdict(t, Verifier{}.Verify(m), tt.field)
		})
	}

	// Changes to the envelope or to the signature text as a whole.
	envelopeTests := []struct {
		name   string
		vector int
		change func(m *message.Message)
		field  string
	}{
		{"not JSON", vecTz1Raw, func(m *message.Message) { m.Signature = "edsig" }, "signature"},
		{"JSON string", vecTz1Raw, func(m *message.Message) { m.Signature = `"siggLSTX"` }, "signature"},
		{"JSON array", vecTz1Raw, func(m *message.Message) { m.Signature = `[]` }, "signature"},
		{"JSON null", vecTz1Raw, func(m *message.Message) { m.Signature = `null` }, "signature"},
		{"trailing data", vecTz1Raw, func(m *message.Message) { m.Signature += "x" }, "signature"},
		{"empty", vecTz1Raw, func(m *message.Message) { m.Signature = "" }, "signature"},
		{"over the size limit", vecTz1Raw, func(m *message.Message) {
			m.Signature = `{"x":"` + strings.Repeat("a", message.MaxSignatureLength) + `"}`
		}, "signature"},
		{"tz1 sender with a tz2 key", vecTz2Raw, func(m *message.Message) { m.Sender = "tz1SmGHzna3YhKropa3WudVq72jhTPDBn4r5" }, "sender"},
		{"tz2 sender with a tz1 key", vecTz1Raw, func(m *message.Message) { m.Sender = "tz2M3NQJ982QV1YwvGL77drZCY55tfBzWm3x" }, "sender"},
		{"lower-case sender", vecTz1Raw, func(m *message.Message) { m.Sender = strings.ToLower(m.Sender) }, "sender"},
		{"empty sender", vecTz1Raw, func(m *message.Message) { m.Sender = "" }, "sender"},
		{"other type", vecTz1Raw, func(m *message.Message) { m.Type = message.TypeStore }, "signature"},
		{"other item_hash", vecTz1Raw, func(m *message.Message) { m.ItemHash = strings.Repeat("0", 64) }, "signature"},
		{"other chain", vecTz1Raw, func(m *message.Message) { m.Chain = message.ChainETH }, "signature"},
		{"micheline time a millisecond later", vecTz1Micheline, func(m *message.Message) {
			m.Time = parseTime(t, "1663944079.030")
		}, "signature"},
		{"micheline time out of range", vecTz1Micheline, func(m *message.Message) { m.Time = parseTime(t, "-1") }, "time"},
		{"micheline with another dAppUrl", vecTz1Micheline, func(m *message.Message) {
			f := signatureFields(t, m)
			f["dAppUrl"] = "https://aleph.im"
			m.Signature = encodeFields(t, f)
		}, "signature"},
		{"micheline signature read as raw", vecTz1Micheline, func(m *message.Message) {
			f := signatureFields(t, m)
			delete(f, "signingType")
			m.Signature = encodeFields(t, f)
		}, "signature"},
	}
	for _, tt := range envelopeTests {
		t.Run(tt.name, func(t *testing.T) {
			m := vectorMessage(t, tt.vector)
			tt.change(m)
			chaintest.CheckSignatureError(t, Verifier{}.Verify(m), tt.field)
		})
	}
}

// TestVerifyUnsignedFields checks what the signature does not cover: channel never,
// and time only for raw signing, or within the same millisecond for micheline.
func TestVerifyUnsignedFields(t *testing.T) {
	tests := []struct {
		name   string
		vector int
		change func(m *message.Message)
	}{
		{"raw: channel", vecTz1Raw, func(m *message.Message) { m.Channel = "OTHER" }},
		{"raw: time", vecTz1Raw, func(m *message.Message) { m.Time = parseTime(t, "1") }},
		{"raw: item_content", vecTz1Raw, func(m *message.Message) { m.ItemContent = "{}" }},
		{"micheline: time within the millisecond", vecTz1Micheline, func(m *message.Message) {
			m.Time = parseTime(t, "1663944079.0299")
		}},
		{"micheline: same time, other text", vecTz1Micheline, func(m *message.Message) {
			m.Time = parseTime(t, "1.663944079029e9")
		}},
		{"micheline: explicit default dAppUrl", vecTz1Micheline, func(m *message.Message) {
			f := signatureFields(t, m)
			f["dAppUrl"] = DefaultDAppURL
			m.Signature = encodeFields(t, f)
		}},
		{"signature object with spaces", vecTz1Raw, func(m *message.Message) {
			f := signatureFields(t, m)
			m.Signature = "  {\"publicKey\" : \"" + f["publicKey"].(string) + "\",\n \"signature\": \"" + f["signature"].(string) + "\"}  "
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := vectorMessage(t, tt.vector)
			tt.change(m)
			if err := (Verifier{}).Verify(m); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

// TestVerifySecp256k1HighS checks the malleability rule: pytezos verifies tz2 with
// libsecp256k1, which accepts only low-S signatures, so (r, n-s) of a valid
// signature is rejected although plain ECDSA would accept it.
func TestVerifySecp256k1HighS(t *testing.T) {
	m := vectorMessage(t, vecTz2Raw)
	f := signatureFields(t, m)
	enc, raw := mustDecode(t, f["signature"].(string), kindSignature)
	var s secp256k1.ModNScalar
	if s.SetByteSlice(raw[32:]) {
		t.Fatal("vector s overflows")
	}
	if s.IsOverHalfOrder() {
		t.Fatal("vector s is already high")
	}
	s.Negate()
	high := append([]byte(nil), raw[:32]...)
	sb := s.Bytes()
	high = append(high, sb[:]...)
	f["signature"] = enc.encode(high)
	m.Signature = encodeFields(t, f)
	chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")

	// r or s ≥ n, zero r: refused without panicking.
	n := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41}
	for name, sig := range map[string][]byte{
		"r = n":  append(append([]byte(nil), n...), raw[32:]...),
		"s = n":  append(append([]byte(nil), raw[:32]...), n...),
		"r = 0":  append(make([]byte, 32), raw[32:]...),
		"zeroes": make([]byte, 64),
	} {
		f["signature"] = enc.encode(sig)
		m.Signature = encodeFields(t, f)
		t.Run(name, func(t *testing.T) { chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature") })
	}
}

func TestAddressFromPublicKey(t *testing.T) {
	vs := chaintest.LoadVectors(t, vectorFile)
	for _, i := range []int{vecTz2Raw, vecTz1Raw, vecTz1Micheline} {
		m := chaintest.DecodeMessage(t, vs[i].Message)
		got, err := AddressFromPublicKey(signatureFields(t, m)["publicKey"].(string))
		if err != nil || got != m.Sender {
			t.Errorf("vector %d: address %q, %v; want %s", i, got, err, m.Sender)
		}
	}
	if _, err := AddressFromPublicKey("edpk"); err == nil {
		t.Error("truncated key accepted")
	}
}

// TestVerifySmallOrderKey: with the identity as public key, R = identity and S = 0
// pass crypto/ed25519 for any message; the verifier must refuse them, as libsodium
// (and so pyaleph) does.
func TestVerifySmallOrderKey(t *testing.T) {
	identity := append([]byte{1}, make([]byte, 31)...)
	sig := append(slices.Clone(identity), make([]byte, 32)...)
	m := testMessage(addressOf(curveEd25519, identity))
	if !ed25519.Verify(identity, m.VerificationBuffer(), sig) {
		t.Fatal("premise: crypto/ed25519 should accept this forgery")
	}
	m.Signature = signatureJSON(t, lookup(kindSignature, curveEd25519, 64).encode(sig),
		lookup(kindPublicKey, curveEd25519, 32).encode(identity), "")
	chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
}
