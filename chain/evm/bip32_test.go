package evm

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestBIP32Vector1 checks BIP-32 test vector 1 (seed 000102…0f): private keys
// and chain codes along m/0'/1/2'/2/1000000000, mixing hardened and normal steps.
func TestBIP32Vector1(t *testing.T) {
	seed := mustHex(t, "000102030405060708090a0b0c0d0e0f")
	steps := []struct {
		index       uint32
		key, chain  string
		description string
	}{
		{0, "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508", "m"},
		{HardenedOffset, "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea", "47fdacbd0f1097043b78c63c20c34ef4ed9a111d980047ad16282c7ae6236141", "m/0'"},
		{1, "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368", "2a7857631386ba23dacac34180dd1983734e444fdbf774041578e9b6adb37c19", "m/0'/1"},
		{HardenedOffset + 2, "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca", "04466b9cc8e161e966409ca52986c584f07e9dc81f735db683c3ff6ec7b1503f", "m/0'/1/2'"},
		{2, "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4", "cfb71883f01676f587d023cc53a35bc7f88f724b1f8c2892ac1275ac822a3edd", "m/0'/1/2'/2"},
		{1000000000, "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8", "c783e67b921d2beb8f6b389cc646d7263b4145701dadd2161548a8b078e65e9e", "m/0'/1/2'/2/1000000000"},
	}
	k, err := masterKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		if i > 0 {
			if k, err = k.child(s.index); err != nil {
				t.Fatalf("%s: %v", s.description, err)
			}
		}
		var key [32]byte
		k.key.PutBytes(&key)
		if got := hex.EncodeToString(key[:]); got != s.key {
			t.Errorf("%s: key %s, want %s", s.description, got, s.key)
		}
		if got := hex.EncodeToString(k.chain[:]); got != s.chain {
			t.Errorf("%s: chain code %s, want %s", s.description, got, s.chain)
		}
		// derivePath with the parsed text path gives the same key.
		indexes, err := ParseDerivationPath(s.description)
		if err != nil {
			t.Fatalf("%s: %v", s.description, err)
		}
		priv, err := derivePath(seed, indexes)
		if err != nil {
			t.Fatalf("%s: %v", s.description, err)
		}
		if got := hex.EncodeToString(priv.Serialize()); got != s.key {
			t.Errorf("derivePath(%s) = %s, want %s", s.description, got, s.key)
		}
	}
}

func TestMasterKeySeedLength(t *testing.T) {
	for _, n := range []int{0, 15, 65} {
		if _, err := masterKey(make([]byte, n)); err == nil {
			t.Errorf("%d-byte seed accepted", n)
		}
	}
}

// TestSplitKeyInvalid: IL ≥ n, and a child key of zero, are reported.
func TestSplitKeyInvalid(t *testing.T) {
	order := mustHex(t, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	i := make([]byte, 64)
	copy(i, order)
	if _, err := splitKey(i, nil); err == nil {
		t.Error("IL = n accepted")
	}
	if _, err := splitKey(make([]byte, 64), nil); err == nil {
		t.Error("zero master key accepted")
	}
	// IL = n-1 plus parent 1 wraps to zero.
	copy(i, mustHex(t, "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140"))
	k, err := masterKey(mustHex(t, "000102030405060708090a0b0c0d0e0f"))
	if err != nil {
		t.Fatal(err)
	}
	k.key.SetInt(1)
	if _, err := splitKey(i, &k.key); err == nil {
		t.Error("zero child key accepted")
	}
}

func TestParseDerivationPath(t *testing.T) {
	h := HardenedOffset
	tests := []struct {
		path string
		want []uint32
	}{
		{"m", []uint32{}},
		{"m/0", []uint32{0}},
		{"m/44'/60'/0'/0/3", []uint32{44 + h, 60 + h, h, 0, 3}},
		{"m/44h/60H/0'/0/0", []uint32{44 + h, 60 + h, h, 0, 0}},
		{"m/2147483647'", []uint32{2147483647 + h}},
		{"m/2147483647", []uint32{2147483647}},
	}
	for _, tc := range tests {
		got, err := ParseDerivationPath(tc.path)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseDerivationPath(%q) = %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"", "M/0", "/0", "m/", "m//0", "44'/60'", "m/2147483648", "m/-1", "m/+1", "m/1''", "m/1h'",
		"m/ 1", "m/1 ", "m/0x10", "m/a", "m/99999999999999999999", "m/" + strings.Repeat("0/", 255) + "0",
		strings.Repeat("m", 5000),
	} {
		if got, err := ParseDerivationPath(bad); err == nil {
			t.Errorf("ParseDerivationPath(%.40q) = %v, want an error", bad, got)
		}
	}
}
