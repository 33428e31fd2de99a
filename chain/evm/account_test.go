package evm

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// Keys of the test vectors (primitives.json evm_key, clients.md §3.6).
const (
	testKeyHex  = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efbba0f2d1db744ce06"
	testAddress = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770"
	testPubKey  = "0x02203a1f00236c671537e6d0506a76550cb0fa2986f51a52341d8f8fadb1dafd56"
	testPhrase  = "indoor dish desk flag debris potato excuse depart ticket judge file exit"
)

func mustAccount(t testing.TB, privHex string) *Account {
	t.Helper()
	a, err := AccountFromHex(privHex)
	if err != nil {
		t.Fatalf("AccountFromHex: %v", err)
	}
	return a
}

func mustSign(t testing.TB, sign func([]byte) (string, error), buf []byte) string {
	t.Helper()
	sig, err := sign(buf)
	if err != nil {
		t.Fatalf("signing %q: %v", buf, err)
	}
	return sig
}

// TestSignTextPrimitives reproduces primitives.json eip191_personal_sign exactly.
func TestSignTextPrimitives(t *testing.T) {
	data, err := os.ReadFile("../../testdata/primitives.json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		EIP191 []struct {
			PrivateKey string `json:"private_key"`
			Text       string `json:"text"`
			Signature  string `json:"signature"`
		} `json:"eip191_personal_sign"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.EIP191) < 2 {
		t.Fatalf("%d eip191 vectors, want at least 2", len(p.EIP191))
	}
	for _, v := range p.EIP191 {
		a := mustAccount(t, v.PrivateKey)
		if got := mustSign(t, a.SignText, []byte(v.Text)); got != v.Signature {
			t.Errorf("SignText(%q) = %s, want %s", v.Text, got, v.Signature)
		}
		if err := Verify([]byte(v.Text), a.Address(), v.Signature); err != nil {
			t.Errorf("Verify(%q): %v", v.Text, err)
		}
	}
}

// TestSignDocumentedVectors checks the vectors quoted in the brief, independent of
// the JSON files.
func TestSignDocumentedVectors(t *testing.T) {
	tests := []struct {
		name, key, text, want string
	}{
		{"eth_account docs", "b25c7db31feed9122727bf0939dc769a96564b2de4c4726d035b36ecf1e5b364", "I♥SF",
			"0xe6ca9bba58c88611fad66a6ce8f996908195593807c4b38bd528d2cff09d4eb33e5bfbbf4d3e39b1a2fd816a7680c19ebebaf3a141b239934ad43cb33fcec8ce1c"},
		{"sign_raw SomeBuffer", testKeyHex, "SomeBuffer",
			"0xc7f47edc7612ea2dfee82c088cc220894a41d90b89f3b3662275280abf373ccc125c6dc590d801bdd7eb0c36c1d4f26d8cd4071d563a40c18d47a19f6998fdd51b"},
		{"§3.6(f) ETH POST", testKeyHex, "ETH\n" + testAddress + "\nPOST\n1e6752c957d86bd22b16668fd2ddc0231af431e8879d22bbcf23d19c5cd676e3",
			"0x921e6e8823cee08ea44dc7c484f0c3c2bb0fe590742062dbf646ef1cf3a2a6bd5aafd7dee128f3526822cc671ce00333ecf0adfb68c3334a7596e0d407d843bc1c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mustAccount(t, tc.key)
			if got := mustSign(t, a.Sign, []byte(tc.text)); got != tc.want {
				t.Errorf("Sign = %s\nwant   %s", got, tc.want)
			}
		})
	}
}

// TestSignMessageVector re-signs the derived ETH POST of eth.json and gets its
// signature back byte for byte.
func TestSignMessageVector(t *testing.T) {
	a := mustAccount(t, testKeyHex)
	for _, note := range []string{"ETH POST signed with aleph-rs EVM_TEST_KEY", "ETH POST whose sender is the all-lowercase"} {
		m := chaintest.ValidMessage(t, vectorFile, note)
		if got := mustSign(t, a.Sign, m.VerificationBuffer()); got != m.Signature {
			t.Errorf("%s: Sign = %s, want %s", note, got, m.Signature)
		}
	}
}

func TestAccountKeys(t *testing.T) {
	for _, in := range []string{testKeyHex, "0x" + testKeyHex, "0X" + strings.ToUpper(testKeyHex), "  " + testKeyHex + "\n"} {
		a := mustAccount(t, in)
		if a.Address() != testAddress {
			t.Errorf("%q: Address = %s, want %s", in, a.Address(), testAddress)
		}
		if a.PublicKeyCompressedHex() != testPubKey {
			t.Errorf("%q: PublicKeyCompressedHex = %s, want %s", in, a.PublicKeyCompressedHex(), testPubKey)
		}
		if a.PrivateKeyHex() != "0x"+testKeyHex {
			t.Errorf("%q: PrivateKeyHex = %s", in, a.PrivateKeyHex())
		}
		if a.Chain() != message.ChainETH {
			t.Errorf("%q: Chain = %s, want ETH", in, a.Chain())
		}
	}
}

func TestAccountFromHexErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"0x only", "0x"},
		{"short", testKeyHex[:62]},
		{"odd", testKeyHex[:63]},
		{"long", testKeyHex + "00"},
		{"non-hex", "zz" + testKeyHex[2:]},
		{"zero", strings.Repeat("0", 64)},
		{"curve order", "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"},
		{"max", strings.Repeat("f", 64)},
		{"huge", strings.Repeat("a", 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := AccountFromHex(tc.in)
			if err == nil {
				t.Fatalf("accepted, address %s", a.Address())
			}
			// Key material must never leak into errors.
			if len(tc.in) >= 16 && strings.Contains(err.Error(), tc.in[:16]) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
	// One below the order is the largest valid key.
	if _, err := AccountFromHex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140"); err != nil {
		t.Errorf("n-1 rejected: %v", err)
	}
}

func TestAccountFromMnemonic(t *testing.T) {
	const pub = "0x0226cc24348fbe0c2912fbb0aa4408e089bb0ae488a88ac46bb13290629a737646"
	tests := []struct {
		name, phrase, passphrase, path, pub string
	}{
		{"aleph-sdk-python vector", testPhrase, "", "", pub},
		{"explicit default path", testPhrase, "", "m/44'/60'/0'/0/0", pub},
		{"h marks hardened", testPhrase, "", "m/44h/60H/0h/0/0", pub},
		{"extra white space", "  indoor dish\tdesk flag debris potato excuse depart ticket judge file   exit\n", "", "", pub},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a *Account
			var err error
			if tc.path == "" {
				a, err = AccountFromMnemonic(tc.phrase, tc.passphrase)
			} else {
				a, err = AccountFromMnemonicPath(tc.phrase, tc.passphrase, tc.path)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.PublicKeyCompressedHex(); got != tc.pub {
				t.Errorf("public key %s, want %s", got, tc.pub)
			}
		})
	}

	// Other indexes, and a passphrase, give other keys, all distinct.
	seen := map[string]string{}
	for _, p := range []struct{ pass, path string }{
		{"", "m/44'/60'/0'/0/0"}, {"", "m/44'/60'/0'/0/1"}, {"", "m/44'/60'/0'/0/3"},
		{"", "m/44'/60'/1'/0/0"}, {"", "m"}, {"TREZOR", "m/44'/60'/0'/0/0"},
	} {
		a, err := AccountFromMnemonicPath(testPhrase, p.pass, p.path)
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		if prev, dup := seen[a.Address()]; dup {
			t.Errorf("%+v gives the same address as %s", p, prev)
		}
		seen[a.Address()] = p.pass + " " + p.path
	}
}

func TestAccountFromMnemonicErrors(t *testing.T) {
	tests := []struct{ name, phrase, passphrase, path string }{
		{"empty", "", "", DefaultDerivationPath},
		{"bad checksum", strings.Replace(testPhrase, "exit", "exact", 1), "", DefaultDerivationPath},
		{"unknown word", strings.Replace(testPhrase, "indoor", "indoors", 1), "", DefaultDerivationPath},
		{"11 words", testPhrase[strings.IndexByte(testPhrase, ' ')+1:], "", DefaultDerivationPath},
		{"uppercase", strings.ToUpper(testPhrase), "", DefaultDerivationPath},
		{"huge", strings.Repeat("abandon ", 1000), "", DefaultDerivationPath},
		{"non-ASCII passphrase", testPhrase, "pässword", DefaultDerivationPath},
		{"huge passphrase", testPhrase, strings.Repeat("p", 5000), DefaultDerivationPath},
		{"bad path", testPhrase, "", "44'/60'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a, err := AccountFromMnemonicPath(tc.phrase, tc.passphrase, tc.path); err == nil {
				t.Fatalf("accepted, address %s", a.Address())
			}
		})
	}
}

func TestNewAccount(t *testing.T) {
	// A fixed reader gives a fixed key: the first 32 bytes are the key when in range.
	a, err := NewAccount(bytes.NewReader(bytes.Repeat([]byte{0x11}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "0x" + strings.Repeat("11", 32); a.PrivateKeyHex() != want {
		t.Errorf("PrivateKeyHex = %s, want %s", a.PrivateKeyHex(), want)
	}
	if _, err := NewAccount(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("short reader accepted")
	}
	b, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Address() == c.Address() {
		t.Error("two random accounts share an address")
	}
}

// TestSignRoundTrip signs messages for several EVM chain codes and verifies them
// through the registry; each signature is bound to its chain code.
func TestSignRoundTrip(t *testing.T) {
	r := newRegistry(t)
	eth, err := NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	var s message.Signer = eth // Account is a message.Signer
	_ = s
	chains := []message.Chain{message.ChainETH, message.ChainARB, message.ChainBASE, message.ChainBSC, message.ChainPOL, message.ChainZORA, message.ChainETHERLINK}
	for _, c := range chains {
		t.Run(string(c), func(t *testing.T) {
			a := eth.WithChain(c)
			if a.Chain() != c || a.Address() != eth.Address() {
				t.Fatalf("WithChain: chain %s address %s", a.Chain(), a.Address())
			}
			m := message.Message{Chain: a.Chain(), Sender: a.Address(), Type: message.TypeAggregate,
				ItemType: message.ItemStorage, ItemHash: strings.Repeat("ab", 32)}
			m.Signature = mustSign(t, a.Sign, m.VerificationBuffer())
			if len(m.Signature) != 132 || m.Signature != strings.ToLower(m.Signature) {
				t.Errorf("signature %q is not 0x + 130 lowercase hex", m.Signature)
			}
			if v := m.Signature[130:]; v != "1b" && v != "1c" {
				t.Errorf("v = %s, want 1b or 1c", v)
			}
			if err := r.Verify(&m); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// The same signature under another chain code fails.
			other := m
			other.Chain = message.ChainETH
			if c == message.ChainETH {
				other.Chain = message.ChainOP
			}
			chaintest.CheckSignatureError(t, r.Verify(&other), "signature")
		})
	}
	if eth.Chain() != message.ChainETH {
		t.Errorf("WithChain changed the original account to %s", eth.Chain())
	}
}

// TestSignSenderSpelling: a sender written in lowercase, or with an 0X prefix,
// verifies when it is what was signed.
func TestSignSenderSpelling(t *testing.T) {
	a := mustAccount(t, testKeyHex)
	for _, sender := range []string{strings.ToLower(testAddress), "0X" + testAddress[2:], "0x" + strings.ToUpper(testAddress[2:])} {
		m := message.Message{Chain: message.ChainETH, Sender: sender, Type: message.TypePost,
			ItemType: message.ItemStorage, ItemHash: strings.Repeat("01", 32)}
		m.Signature = mustSign(t, a.Sign, m.VerificationBuffer())
		if err := (Verifier{}).Verify(&m); err != nil {
			t.Errorf("sender %s: %v", sender, err)
		}
	}
}

func TestSignErrors(t *testing.T) {
	a := mustAccount(t, testKeyHex)
	if _, err := a.WithChain(message.ChainSOL).Sign([]byte("x")); err == nil {
		t.Error("signing for SOL accepted")
	}
	if _, err := a.WithChain("").Sign([]byte("x")); err == nil {
		t.Error("signing for an empty chain accepted")
	}
	if _, err := a.SignText([]byte{0xff, 0xfe}); err == nil {
		t.Error("signing non-UTF-8 text accepted")
	}
	if _, err := a.Sign([]byte("ETH\n\xff")); err == nil {
		t.Error("signing a non-UTF-8 buffer accepted")
	}
	// Empty text is valid EIP-191 ("\x19Ethereum Signed Message:\n0").
	sig := mustSign(t, a.SignText, nil)
	if err := Verify(nil, a.Address(), sig); err != nil {
		t.Errorf("empty text: %v", err)
	}
}
