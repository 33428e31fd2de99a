package substrate

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/ChainSafe/go-schnorrkel"
	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

const vectorFile = "dot.json"

// dot.json[0]: signed over the raw buffer.
const (
	rawSender   = "5CGNMKCscqN2QNcT7Jtuz23ab7JUxh8wTEtXhECZLJn5vCGX"
	rawItemHash = "bfbc94fae6336d52ab65a4d907d399a0c16222bd944b3815faa08ad0e039ca1d"
	rawSigHex   = "1ccefb257e89b4e3ecb7d71c8dc1d6e286290b9e32d2a11bf3f9d425c5790f4bff0b324dc774d20a13e38a340d1a48fada71fb0c68690c3adb8f0cc695b0eb83"
)

// Substrate's well-known dev account //Alice (`subkey inspect //Alice`).
const (
	aliceSeed      = "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a"
	alicePublic    = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
	aliceSubstrate = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
	alicePolkadot  = "15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5"
	aliceKusama    = "HNZata7iMYWmk5RvZRTiAsSDhV8366zq2YGb3tLH5Upf74F"
)

// loadVectors loads dot.json, which must hold the raw and the wrapped vector.
func loadVectors(tb testing.TB) []chaintest.Vector {
	tb.Helper()
	vs := chaintest.LoadVectors(tb, vectorFile)
	if len(vs) < 2 {
		tb.Fatal("too few vectors")
	}
	return vs
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		tb.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func key32(tb testing.TB, s string) [32]byte {
	tb.Helper()
	var k [32]byte
	if b := mustHex(tb, s); len(b) != 32 || copy(k[:], b) != 32 {
		tb.Fatalf("key %s is not 32 bytes", s)
	}
	return k
}

// rawMessage is dot.json[0] with the given sender and signature field.
func rawMessage(sender, signature string) *message.Message {
	return &message.Message{Chain: message.ChainDOT, Sender: sender, Type: message.TypeAggregate,
		ItemType: message.ItemInline, ItemHash: rawItemHash, Signature: signature}
}

// rawSS58 base58-encodes body followed by its correct SS58 checksum, to build
// addresses that only fail for their layout.
func rawSS58(body []byte) string {
	sum := ss58Checksum(body)
	return base58.Encode(append(slices.Clone(body), sum[:2]...))
}

func TestVectors(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	valid, _ := chaintest.RunVectors(t, loadVectors(t), r,
		func(t testing.TB, _ chaintest.Vector, _ *message.Message, err error) {
			if err != nil {
				chaintest.CheckRejection(t, err, "sender", "signature")
			}
		})
	if valid != 4 {
		t.Errorf("%d signature-valid vectors, want 4 (two valid, two hash mismatches)", valid)
	}
}

// TestVectorWrapping checks that dot.json[0] is signed over the raw buffer and
// dot.json[1] only over the <Bytes>-wrapped one, so both paths are exercised.
func TestVectorWrapping(t *testing.T) {
	vs := loadVectors(t)
	tests := []struct {
		index        int
		raw, wrapped bool
	}{
		{0, true, false},
		{1, false, true},
	}
	for _, tt := range tests {
		m := chaintest.DecodeMessage(t, vs[tt.index].Message)
		sig, err := parseSignature(m.Signature)
		if err != nil {
			t.Fatalf("vector %d: %v", tt.index, err)
		}
		_, key, err := DecodeSS58(m.Sender)
		if err != nil {
			t.Fatalf("vector %d: %v", tt.index, err)
		}
		pub, err := schnorrkel.NewPublicKey(key)
		if err != nil {
			t.Fatalf("vector %d: %v", tt.index, err)
		}
		buf := m.VerificationBuffer()
		wrapped := []byte(bytesOpen + string(buf) + bytesClose)
		if ok, _ := pub.Verify(sig, schnorrkel.NewSigningContext([]byte(signingContext), buf)); ok != tt.raw {
			t.Errorf("vector %d: raw verification %v, want %v", tt.index, ok, tt.raw)
		}
		if ok, _ := pub.Verify(sig, schnorrkel.NewSigningContext([]byte(signingContext), wrapped)); ok != tt.wrapped {
			t.Errorf("vector %d: wrapped verification %v, want %v", tt.index, ok, tt.wrapped)
		}
	}
}

func TestRegister(t *testing.T) {
	r := chain.NewRegistry()
	Register(r)
	if got, want := r.Chains(), []message.Chain{message.ChainDOT}; !slices.Equal(got, want) {
		t.Errorf("registered %v, want %v", got, want)
	}
}

func TestSignatureForms(t *testing.T) {
	sigBytes := mustHex(t, rawSigHex)
	withSig := func(b []byte) string { return `{"curve":"sr25519","data":"0x` + hex.EncodeToString(b) + `"}` }
	unmarked := slices.Clone(sigBytes)
	unmarked[63] &^= 0x80
	bigScalar := slices.Clone(sigBytes)
	copy(bigScalar[32:], mustHex(t, strings.Repeat("ff", 32)))
	badPoint := slices.Clone(sigBytes)
	copy(badPoint[:32], mustHex(t, strings.Repeat("ff", 32)))
	altered := slices.Clone(sigBytes)
	altered[40] ^= 1 // in s, which stays canonical

	_, key, err := DecodeSS58(rawSender)
	if err != nil {
		t.Fatal(err)
	}
	polkadotSender, err := EncodeSS58(0, key)
	if err != nil {
		t.Fatal(err)
	}
	wideSender, err := EncodeSS58(MaxFormat, key)
	if err != nil {
		t.Fatal(err)
	}
	badChecksum := []byte(rawSender)
	badChecksum[len(badChecksum)-1] = 'Y' // was X
	zeroKey, err := EncodeSS58(42, [32]byte{})
	if err != nil {
		t.Fatal(err)
	}
	notPoint, err := EncodeSS58(42, key32(t, strings.Repeat("ff", 32)))
	if err != nil {
		t.Fatal(err)
	}

	good := withSig(sigBytes)
	tests := []struct {
		name      string
		sender    string
		signature string
		field     string // "" when the signature must verify
	}{
		{"typescript compact", rawSender, good, ""},
		{"python spaced, no 0x", rawSender, `{"curve": "sr25519", "data": "` + rawSigHex + `"}`, ""},
		{"keys swapped, pretty", rawSender, "{\n \"data\" : \"0x" + rawSigHex + "\",\n \"curve\" : \"sr25519\"\n}", ""},
		{"curve absent", rawSender, `{"data":"0x` + rawSigHex + `"}`, ""},
		{"uppercase hex", rawSender, `{"data":"0x` + strings.ToUpper(rawSigHex) + `"}`, ""},
		{"extra fields", rawSender, `{"data":"0x` + rawSigHex + `","type":"sr25519","x":[null]}`, ""},

		{"not JSON", rawSender, `baba`, "signature"},
		{"bare hex", rawSender, "0x" + rawSigHex, "signature"},
		{"JSON string", rawSender, `"0x` + rawSigHex + `"`, "signature"},
		{"JSON null", rawSender, `null`, "signature"},
		{"JSON array", rawSender, `["sr25519","0x` + rawSigHex + `"]`, "signature"},
		{"trailing data", rawSender, good + `x`, "signature"},
		{"too long", rawSender, `{"data":"0x` + rawSigHex + `","pad":"` + strings.Repeat("x", message.MaxSignatureLength) + `"}`, "signature"},
		{"curve ed25519", rawSender, `{"curve":"ed25519","data":"0x` + rawSigHex + `"}`, "signature.curve"},
		{"curve ecdsa", rawSender, `{"curve":"ecdsa","data":"0x` + rawSigHex + `"}`, "signature.curve"},
		{"curve upper case", rawSender, `{"curve":"SR25519","data":"0x` + rawSigHex + `"}`, "signature.curve"},
		{"curve null", rawSender, `{"curve":null,"data":"0x` + rawSigHex + `"}`, "signature.curve"},
		{"curve number", rawSender, `{"curve":1,"data":"0x` + rawSigHex + `"}`, "signature.curve"},
		{"data missing", rawSender, `{"curve":"sr25519"}`, "signature.data"},
		{"data in other case", rawSender, `{"Data":"0x` + rawSigHex + `"}`, "signature.data"},
		{"data null", rawSender, `{"data":null}`, "signature.data"},
		{"data number", rawSender, `{"data":12}`, "signature.data"},
		{"data bytes array", rawSender, `{"data":[1,2,3]}`, "signature.data"},
		{"data empty", rawSender, `{"data":""}`, "signature.data"},
		{"data 0X prefix", rawSender, `{"data":"0X` + rawSigHex + `"}`, "signature.data"},
		{"data 63 bytes", rawSender, `{"data":"0x` + rawSigHex[2:] + `"}`, "signature.data"},
		{"data 65 bytes", rawSender, `{"data":"0x` + rawSigHex + `00"}`, "signature.data"},
		{"data odd length", rawSender, `{"data":"0x` + rawSigHex + `0"}`, "signature.data"},
		{"data non-hex", rawSender, `{"data":"0x` + rawSigHex[:100] + "zz" + rawSigHex[102:] + `"}`, "signature.data"},
		{"data with spaces", rawSender, `{"data":"0x` + rawSigHex[:64] + " " + rawSigHex[65:] + `"}`, "signature.data"},
		{"data huge", rawSender, `{"data":"0x` + strings.Repeat("ab", 4000) + `"}`, "signature.data"},
		{"not marked schnorrkel", rawSender, withSig(unmarked), "signature.data"},
		{"non-canonical scalar", rawSender, withSig(bigScalar), "signature.data"},
		{"R not a point", rawSender, withSig(badPoint), "signature.data"},
		{"sender bad checksum", string(badChecksum), good, "sender"},
		{"sender bad base58", "0" + rawSender[1:], good, "sender"},
		{"sender empty", "", good, "sender"},
		{"sender too long", rawSender + rawSender, good, "sender"},
		{"sender 31-byte key", rawSS58(append([]byte{42}, make([]byte, 31)...)), good, "sender"},
		{"sender 33-byte key", rawSS58(append([]byte{42}, make([]byte, 33)...)), good, "sender"},
		{"sender reserved format 46", rawSS58(append([]byte{46}, key[:]...)), good, "sender"},
		{"sender prefix byte 0x80", rawSS58(append([]byte{0x80}, key[:]...)), good, "sender"},
		{"sender hex public key", "0x" + hex.EncodeToString(key[:]), good, "sender"},
		{"sender identity key", zeroKey, good, "sender"},
		{"sender key not a point", notPoint, good, "sender"},
		{"sender another account", aliceSubstrate, good, "signature"},
		// The same key in another format is another sender text, and the sender is signed.
		{"sender in polkadot format", polkadotSender, good, "signature"},
		{"sender in a two-byte format", wideSender, good, "signature"},
		{"signature altered", rawSender, withSig(altered), "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chaintest.CheckVerdict(t, Verifier{}.Verify(rawMessage(tt.sender, tt.signature)), tt.field)
		})
	}
}

// TestChainIsSigned checks that the signature does not carry over to another chain code.
func TestChainIsSigned(t *testing.T) {
	m := rawMessage(rawSender, `{"data":"`+rawSigHex+`"}`)
	if err := (Verifier{}).Verify(m); err != nil {
		t.Fatalf("rejected: %v", err)
	}
	m.Chain = message.ChainSOL
	chaintest.CheckSignatureError(t, Verifier{}.Verify(m), "signature")
}

func benchmarkVector(b *testing.B, index int) {
	b.Helper()
	chaintest.BenchVerify(b, Verifier{}, chaintest.DecodeMessage(b, loadVectors(b)[index].Message))
}

// BenchmarkVerify verifies a signature over the raw buffer (one sr25519 check).
func BenchmarkVerify(b *testing.B) { benchmarkVector(b, 0) }

// BenchmarkVerifyWrapped verifies a <Bytes>-wrapped signature, which costs a
// failed raw check first.
func BenchmarkVerifyWrapped(b *testing.B) { benchmarkVector(b, 1) }
