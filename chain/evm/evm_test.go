package evm

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

const vectorFile = "eth.json"

func newRegistry(t testing.TB) *chain.Registry {
	t.Helper()
	r := chain.NewRegistry()
	Register(r)
	return r
}

func TestVectors(t *testing.T) {
	r := newRegistry(t)
	vs := chaintest.LoadVectors(t, vectorFile)
	valid, invalid := chaintest.RunVectors(t, vs, r, func(t testing.TB, v chaintest.Vector, m *message.Message, err error) {
		// The data must be what the notes say, or this test proves nothing.
		if m.ItemType == message.ItemInline {
			hashOK := message.HashContent([]byte(m.ItemContent)) == m.ItemHash
			if hashOK == strings.HasPrefix(v.Note, "hash mismatch") {
				t.Fatalf("content hash check gives %v, inconsistent with note %q", hashOK, v.Note)
			}
		}
		if err != nil {
			return
		}
		sig, derr := hex.DecodeString(strings.TrimPrefix(m.Signature, "0x"))
		if derr != nil {
			t.Fatal(derr)
		}
		addr, rerr := RecoverAddress(m.VerificationBuffer(), sig)
		if rerr != nil || !strings.EqualFold(addr, m.Sender) {
			t.Errorf("RecoverAddress = %s, %v; want %s", addr, rerr, m.Sender)
		}
	})
	t.Logf("%d vectors: %d signature-valid, %d invalid", len(vs), valid, invalid)
}

// setV returns sig with its recovery byte replaced.
func setV(t *testing.T, sig string, v byte) string {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(sig, "0x"))
	if err != nil || len(b) != SignatureSize {
		t.Fatalf("bad base signature %q", sig)
	}
	b[64] = v
	return "0x" + hex.EncodeToString(b)
}

// highS returns the same signature with s replaced by n-s and the parity flipped,
// which still recovers the same key.
func highS(t *testing.T, sig string) string {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(sig, "0x"))
	if err != nil || len(b) != SignatureSize {
		t.Fatalf("bad base signature %q", sig)
	}
	var s secp256k1.ModNScalar
	s.SetByteSlice(b[32:64])
	if s.IsOverHalfOrder() {
		t.Fatal("base signature already has a high S")
	}
	s.Negate()
	s.PutBytesUnchecked(b[32:64])
	b[64] = 55 - b[64] // 27 <-> 28
	return "0x" + hex.EncodeToString(b)
}

// TestSignatureForms checks the accepted spellings of a valid signature and
// sender, and near-misses that must fail.
func TestSignatureForms(t *testing.T) {
	base := *chaintest.ValidMessage(t, vectorFile, "ETH POST, real signature") // v = 0x1c (recovery id 1)
	lower := *chaintest.ValidMessage(t, vectorFile, "ETH POST whose sender is the all-lowercase")
	tests := []struct {
		name   string
		edit   func(m *message.Message)
		ok     bool
		field  string
		origin message.Message
	}{
		{"as signed", func(*message.Message) {}, true, "", base},
		{"v=1", func(m *message.Message) { m.Signature = setV(t, m.Signature, 1) }, true, "", base},
		{"v=0 (wrong parity)", func(m *message.Message) { m.Signature = setV(t, m.Signature, 0) }, false, "signature", base},
		{"v=27 (wrong parity)", func(m *message.Message) { m.Signature = setV(t, m.Signature, 27) }, false, "signature", base},
		{"EIP-155 v=38 (chain 1, parity 1)", func(m *message.Message) { m.Signature = setV(t, m.Signature, 38) }, true, "", base},
		{"EIP-155 v=255 (parity 0)", func(m *message.Message) { m.Signature = setV(t, m.Signature, 255) }, false, "signature", base},
		{"v=2", func(m *message.Message) { m.Signature = setV(t, m.Signature, 2) }, false, "signature", base},
		{"v=29", func(m *message.Message) { m.Signature = setV(t, m.Signature, 29) }, false, "signature", base},
		{"v=34", func(m *message.Message) { m.Signature = setV(t, m.Signature, 34) }, false, "signature", base},
		{"no 0x prefix", func(m *message.Message) { m.Signature = strings.TrimPrefix(m.Signature, "0x") }, true, "", base},
		{"0X prefix", func(m *message.Message) { m.Signature = "0X" + m.Signature[2:] }, true, "", base},
		{"uppercase hex", func(m *message.Message) { m.Signature = "0x" + strings.ToUpper(m.Signature[2:]) }, true, "", base},
		{"high S (eth_account accepts it)", func(m *message.Message) { m.Signature = highS(t, m.Signature) }, true, "", base},
		{"lowercase sender signed as lowercase", func(*message.Message) {}, true, "", lower},
		{"lowercase sender, buffer signed mixed-case", func(m *message.Message) { m.Sender = strings.ToLower(m.Sender) }, false, "signature", base},
		{"checksummed sender, buffer signed lowercase", func(m *message.Message) { m.Sender = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770" }, false, "signature", lower},
		{"wrong chain code in buffer", func(m *message.Message) { m.Chain = message.ChainARB }, false, "signature", base},
		{"wrong type in buffer", func(m *message.Message) { m.Type = message.TypeStore }, false, "signature", base},
		{"item_hash not UTF-8", func(m *message.Message) { m.ItemHash = "\xff" + m.ItemHash[1:] }, false, "item_hash", base},
		{"channel and time are not signed", func(m *message.Message) { m.Channel = "OTHER"; m.Time = message.Time{} }, true, "", base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.origin
			tc.edit(&m)
			err := Verifier{}.Verify(&m)
			if tc.ok {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			chaintest.CheckSignatureError(t, err, tc.field)
		})
	}
}

func TestMalformedSignature(t *testing.T) {
	base := *chaintest.ValidMessage(t, vectorFile, "ETH POST, real signature")
	good := base.Signature[2:]
	tests := []struct{ name, sig string }{
		{"empty", ""},
		{"0x only", "0x"},
		{"odd hex", "0x" + good[:129]},
		{"odd hex, one digit", "0x1"},
		{"64 bytes", "0x" + good[:128]},
		{"66 bytes", "0x" + good + "00"},
		{"v=5", "0x" + good[:128] + "05"},
		{"non-hex", "0x" + good[:10] + "zz" + good[12:]},
		{"non-hex, ascii", strings.Repeat("g", 130)},
		{"spaces", "0x" + strings.Repeat(" ", 130)},
		{"huge", "0x" + strings.Repeat("ab", 1<<16)},
		{"pyaleph 'baba'", "baba"},
		{"r zero", "0x" + strings.Repeat("0", 64) + good[64:]},
		{"s zero", "0x" + good[:64] + strings.Repeat("0", 64) + good[128:]},
		{"r over order", "0x" + strings.Repeat("f", 64) + good[64:]},
		{"s over order", "0x" + good[:64] + strings.Repeat("f", 64) + good[128:]},
		{"double prefix", "0x0x" + good[:128]},
		{"multibyte", "0x" + strings.Repeat("é", 65)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			m.Signature = tc.sig
			chaintest.CheckSignatureError(t, Verifier{}.Verify(&m), "signature")
		})
	}
}

func TestMalformedSender(t *testing.T) {
	base := *chaintest.ValidMessage(t, vectorFile, "ETH POST, real signature")
	hex40 := strings.ToLower(base.Sender[2:])
	tests := []struct{ name, sender string }{
		{"empty", ""},
		{"0x only", "0x"},
		{"short", "0x" + hex40[:39]},
		{"long", "0x" + hex40 + "0"},
		{"no prefix", hex40},
		{"no prefix, 42 digits", "00" + hex40},
		{"bad prefix", "1x" + hex40},
		{"non-hex digit", "0x" + hex40[:39] + "g"},
		{"space", " 0x" + hex40[:39]},
		{"multibyte", "0x" + strings.Repeat("é", 20)},
		{"other chain's address", "X-avax14x5a42stua94l2vxjcag6c9ftd8ea0y8fltdwv"},
		{"huge", "0x" + strings.Repeat("a", 100000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			m.Sender = tc.sender
			chaintest.CheckSignatureError(t, Verifier{}.Verify(&m), "sender")
		})
	}
}

func TestRegister(t *testing.T) {
	r := newRegistry(t)
	got := r.Chains()
	if len(got) != len(message.EVMChains) {
		t.Fatalf("registered %d chains, want %d: %v", len(got), len(message.EVMChains), got)
	}
	for _, c := range message.EVMChains {
		if !IsEVMChain(c) {
			t.Errorf("IsEVMChain(%s) = false", c)
		}
	}
	for _, c := range []message.Chain{message.ChainSOL, message.ChainAVAX, message.ChainAURORA, "eth", ""} {
		if IsEVMChain(c) {
			t.Errorf("IsEVMChain(%q) = true", c)
		}
	}
	// A non-EVM chain is not dispatched here: the registry reports it as code 0.
	m := *chaintest.ValidMessage(t, vectorFile, "ETH POST, real signature")
	m.Chain = message.ChainSOL
	if err := r.Verify(&m); message.CodeOf(err) != message.CodeInvalidFormat {
		t.Errorf("SOL message: %v, want a code-0 error", err)
	}
}

func TestHashMessage(t *testing.T) {
	tests := []struct{ text, hash string }{
		// primitives.json eip191_personal_sign.
		{"I♥SF", "1476abb745d423bf09273f1afd887d951181d25adc66c4834a70491911b7f750"},
		{"SomeBuffer", "1616e4a3e98dbcb4fd3b727c3aebb15ea7cb270f8f8da8c4860fe873fe12202a"},
	}
	for _, tc := range tests {
		h := HashMessage([]byte(tc.text))
		if got := hex.EncodeToString(h[:]); got != tc.hash {
			t.Errorf("HashMessage(%q) = %s, want %s", tc.text, got, tc.hash)
		}
	}
}

func TestChecksumAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		// EIP-55 specification examples.
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
		{"0xFB6916095CA1DF60BB79CE92CE3EA74C37C5D359", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"},
		{"0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb", "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"},
		{"0xD1220A0CF47C7B9BE7A2E6BA89F429762E7B9ADB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"},
		// primitives.json evm_key, and a pyaleph sender.
		{"0x85e1365de7394f86d71d9f2e707fbce2b5383770", "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770"},
		{"0XA07B1214BAE0D5CCAA25449C3149C0AC83658874", "0xA07B1214bAe0D5ccAA25449C3149c0aC83658874"},
	}
	for _, tc := range tests {
		got, err := ChecksumAddress(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ChecksumAddress(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
		if !IsAddress(tc.in) {
			t.Errorf("IsAddress(%s) = false", tc.in)
		}
	}
	for _, bad := range []string{"", "0x", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg"} {
		if _, err := ChecksumAddress(bad); err == nil {
			t.Errorf("ChecksumAddress(%q) accepted", bad)
		}
		if IsAddress(bad) {
			t.Errorf("IsAddress(%q) = true", bad)
		}
	}
}

func TestRecoverAddress(t *testing.T) {
	m := chaintest.ValidMessage(t, vectorFile, "ETH POST, real signature")
	sig, err := hex.DecodeString(m.Signature[2:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := RecoverAddress(m.VerificationBuffer(), sig)
	if err != nil || got != m.Sender {
		t.Fatalf("RecoverAddress = %s, %v; want %s", got, err, m.Sender)
	}
	for _, n := range []int{0, 64, 66} {
		b := make([]byte, n)
		copy(b, sig)
		_, err := RecoverAddress(m.VerificationBuffer(), b)
		chaintest.CheckSignatureError(t, err, "signature")
	}
}

// TestVerifyFunc covers the package-level helper used without a message.
func TestVerifyFunc(t *testing.T) {
	// primitives.json: sign_raw("SomeBuffer") with the evm_key.
	const (
		addr = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770"
		sig  = "0xc7f47edc7612ea2dfee82c088cc220894a41d90b89f3b3662275280abf373ccc125c6dc590d801bdd7eb0c36c1d4f26d8cd4071d563a40c18d47a19f6998fdd51b"
	)
	if err := Verify([]byte("SomeBuffer"), addr, sig); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := Verify([]byte("SomeBuffer"), strings.ToLower(addr), sig); err != nil {
		t.Errorf("Verify with lowercase address: %v", err)
	}
	chaintest.CheckSignatureError(t, Verify([]byte("SomeBuffeR"), addr, sig), "signature")
	chaintest.CheckSignatureError(t, Verify([]byte("SomeBuffer"), addr[:41], sig), "sender")
}
