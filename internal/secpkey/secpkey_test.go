package secpkey

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseHex(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // lowercase hex of the key, when valid
		err      error  // the sentinel, when invalid
		msg      string // the exact error text, when invalid
	}{
		{name: "plain", in: testKey, want: testKey},
		{name: "0x", in: "0x" + testKey, want: testKey},
		{name: "upper digits", in: strings.ToUpper(testKey), want: testKey},
		{name: "0x upper digits", in: "0x" + strings.ToUpper(testKey), want: testKey},
		{name: "one", in: one, want: one},
		{name: "N-1", in: orderNm1, want: orderNm1},

		{name: "empty", in: "", err: ErrLength, msg: "want 64 hex digits, got 0 characters"},
		{name: "0x only", in: "0x", err: ErrLength, msg: "want 64 hex digits, got 0 characters"},
		{name: "short", in: testKey[:62], err: ErrLength, msg: "want 64 hex digits, got 62 characters"},
		{name: "odd", in: testKey[:63], err: ErrLength, msg: "want 64 hex digits, got 63 characters"},
		{name: "long", in: testKey + "00", err: ErrLength, msg: "want 64 hex digits, got 66 characters"},
		{name: "huge", in: strings.Repeat("a", 1<<20), err: ErrLength, msg: "want 64 hex digits, got 1048576 characters"},
		{name: "0x short", in: "0x" + testKey[:62], err: ErrLength, msg: "want 64 hex digits, got 62 characters"},
		{name: "upper 0X", in: "0X" + testKey, err: ErrLength, msg: "want 64 hex digits, got 66 characters"},
		{name: "two prefixes", in: "0x0x" + testKey[:62], err: ErrNotHex, msg: "not hex"},
		{name: "white space", in: " " + testKey[1:], err: ErrNotHex, msg: "not hex"},
		{name: "trailing newline", in: testKey + "\n", err: ErrLength, msg: "want 64 hex digits, got 65 characters"},
		{name: "non-hex", in: "zz" + testKey[2:], err: ErrNotHex, msg: "not hex"},
		{name: "non-hex last", in: testKey[:63] + "g", err: ErrNotHex, msg: "not hex"},
		{name: "non-ASCII", in: "é" + testKey[2:], err: ErrNotHex, msg: "not hex"},
		{name: "zero", in: strings.Repeat("0", 64), err: ErrOutOfRange, msg: "out of range for secp256k1"},
		{name: "0x zero", in: "0x" + strings.Repeat("0", 64), err: ErrOutOfRange, msg: "out of range for secp256k1"},
		{name: "N", in: orderN, err: ErrOutOfRange, msg: "out of range for secp256k1"},
		{name: "N+1", in: orderNp1, err: ErrOutOfRange, msg: "out of range for secp256k1"},
		{name: "max", in: strings.Repeat("f", 64), err: ErrOutOfRange, msg: "out of range for secp256k1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := ParseHex(tc.in)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if got := hex.EncodeToString(key.Serialize()); got != tc.want {
					t.Errorf("key %s, want %s", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %x", key.Serialize())
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %q is not %q", err, tc.err)
			}
			if err.Error() != tc.msg {
				t.Errorf("error %q, want %q", err, tc.msg)
			}
			assertNoKeyMaterial(t, err, tc.in)
		})
	}
}

// assertNoKeyMaterial fails when err quotes any 4 consecutive characters of in
// beyond a "0x" prefix, or any non-hex character of it.
func assertNoKeyMaterial(t *testing.T, err error, in string) {
	t.Helper()
	msg := err.Error()
	digits := strings.TrimPrefix(in, "0x")
	for i := 0; i+4 <= len(digits) && i < 256; i++ {
		if strings.Contains(msg, digits[i:i+4]) {
			t.Errorf("error %q quotes the key (%q)", msg, digits[i:i+4])
			return
		}
	}
	if strings.ContainsAny(msg, "'\"") || strings.Contains(msg, "U+") {
		t.Errorf("error %q looks like it quotes a character", msg)
	}
}

func TestParseHexOne(t *testing.T) {
	key, err := ParseHex(one)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key.PubKey().SerializeCompressed()); got != oneG {
		t.Errorf("public key of 1 is %s, want G = %s", got, oneG)
	}
}

func TestParseHexDigits(t *testing.T) {
	key, err := ParseHexDigits(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key.Serialize()); got != testKey {
		t.Errorf("key %s, want %s", got, testKey)
	}
	// No prefix is stripped, whatever its case.
	for _, in := range []string{"0x" + testKey, "0x" + testKey[2:], "0X" + testKey[2:]} {
		if _, err := ParseHexDigits(in); err == nil {
			t.Errorf("ParseHexDigits accepted %.8q…", in)
		}
	}
	if _, err := ParseHexDigits("0x" + testKey[2:]); !errors.Is(err, ErrNotHex) {
		t.Errorf("prefix in place of two digits: %v, want %v", err, ErrNotHex)
	}
}

func TestGenerate(t *testing.T) {
	seed := bytes.Repeat([]byte{0x11}, 64)
	a, err := Generate(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Serialize(), b.Serialize()) {
		t.Error("the same random bytes gave different keys")
	}
	if a.Key.IsZero() {
		t.Error("zero key")
	}

	tests := []struct {
		name string
		rand io.Reader
		want error
	}{
		{"nil", nil, ErrNilReader},
		{"failing", iotest.ErrReader(iotest.ErrTimeout), iotest.ErrTimeout},
		{"short", bytes.NewReader(make([]byte, 10)), io.ErrUnexpectedEOF},
		{"empty", bytes.NewReader(nil), io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := Generate(tc.rand)
			if err == nil {
				t.Fatalf("generated %x", key.Serialize())
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
	if ErrNilReader.Error() != "nil random source" {
		t.Errorf("ErrNilReader is %q", ErrNilReader)
	}
}

const (
	// testKey is an arbitrary valid key.
	testKey = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
	// orderN is the secp256k1 group order N.
	orderN   = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
	orderNm1 = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140"
	orderNp1 = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142"
	// one is the key 1, whose public key is the generator G.
	one  = "0000000000000000000000000000000000000000000000000000000000000001"
	oneG = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
)
