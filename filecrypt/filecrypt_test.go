package filecrypt

import (
	"bytes"
	"crypto/ecdh"
	stdhkdf "crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/btcsuite/btcd/btcutil/bech32"

	"github.com/go-aleph/go-aleph/message"
)

// The repository's test key (chain/evm tests; public, never use it for anything
// real), with its EVM address and the Solana address of the same 32 bytes as a
// seed.
const (
	devKeyHex  = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efbba0f2d1db744ce06"
	devEVMAddr = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770"
	devSOLAddr = "DnA72WkGFGseymPFHpAoPHtTnQEtQCDtB6BTGS9AeFhE"
)

func devKey(t testing.TB) []byte {
	t.Helper()
	k, err := hex.DecodeString(devKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func derive(t testing.TB, chain message.Chain, addr string) *age.X25519Identity {
	t.Helper()
	id, err := DeriveIdentity(chain, addr, devKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDeriveGolden pins the derivation: these values are in
// docs/FILE-ENCRYPTION.md, and a change would make every encrypted file
// unreadable by its owner.
func TestDeriveGolden(t *testing.T) {
	for _, tc := range []struct {
		chain             message.Chain
		addr              string
		secret, recipient string
	}{
		{message.ChainETH, devEVMAddr,
			"AGE-SECRET-KEY-1ARG5GL7YNQWCEX0MAFSRQM3F6F3LMQQKHUN4Y3GVX6H5HZMEMEFQ4YGURG",
			"age1pdm05f0q2atqv465n0fjynrxll0s08zkxc7xrw2uh7uwhz5z5y4qjgw0h3"},
		{message.ChainSOL, devSOLAddr,
			"AGE-SECRET-KEY-1GQ8XY8HDUG3YJ2K2S46TQ96WUFPHLH3XKS7ZT3G6DGFTG9STHQ7QFUT682",
			"age12cnp5pjt40vcydwvupkvygmphwqk8f90qgq4u525frvns23d5cpquu77gq"},
	} {
		t.Run(string(tc.chain), func(t *testing.T) {
			id := derive(t, tc.chain, tc.addr)
			if id.String() != tc.secret || id.Recipient().String() != tc.recipient {
				t.Errorf("derived %s / %s\nwant    %s / %s", id, id.Recipient(), tc.secret, tc.recipient)
			}
			again := derive(t, tc.chain, tc.addr)
			if again.String() != id.String() {
				t.Error("derivation is not deterministic")
			}
		})
	}
}

// TestDeriveIndependently recomputes the recipient from the documented inputs
// with the standard library alone (crypto/hkdf, crypto/ecdh) and a Bech32
// encoder, so the document and the code cannot drift apart.
func TestDeriveIndependently(t *testing.T) {
	scalar, err := stdhkdf.Key(sha256.New, devKey(t), []byte("aleph-file-encryption/v1"),
		"age-x25519-identity:ETH:"+devEVMAddr, 32)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdh.X25519().NewPrivateKey(scalar)
	if err != nil {
		t.Fatal(err)
	}
	want, err := bech32.EncodeFromBase256("age", priv.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := derive(t, message.ChainETH, devEVMAddr).Recipient().String(); got != want {
		t.Errorf("recipient %s, independent computation %s", got, want)
	}
}

func TestDeriveSeparatesAccounts(t *testing.T) {
	base := derive(t, message.ChainETH, devEVMAddr).String()
	for _, tc := range []struct {
		name  string
		chain message.Chain
		addr  string
	}{
		{"other chain", message.ChainSOL, devEVMAddr},
		{"other address", message.ChainETH, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
		{"address case", message.ChainETH, strings.ToLower(devEVMAddr)},
	} {
		if derive(t, tc.chain, tc.addr).String() == base {
			t.Errorf("%s: same identity", tc.name)
		}
	}
}

func TestDeriveRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret []byte
		chain  message.Chain
		addr   string
	}{
		{"short secret", make([]byte, 31), message.ChainETH, devEVMAddr},
		{"zero secret", make([]byte, 32), message.ChainETH, devEVMAddr},
		{"no address", devKey(t), message.ChainETH, ""},
		{"no chain", devKey(t), "", devEVMAddr},
	} {
		if _, err := DeriveIdentity(tc.chain, tc.addr, tc.secret); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestEncodeSecretKeyMatchesAge checks the Bech32 encoding against age's own:
// age parses the key and re-encodes it identically.
func TestEncodeSecretKeyMatchesAge(t *testing.T) {
	for range 20 {
		scalar := make([]byte, 32)
		rand.Read(scalar)
		s, err := EncodeSecretKey(scalar)
		if err != nil {
			t.Fatal(err)
		}
		id, err := age.ParseX25519Identity(s)
		if err != nil {
			t.Fatalf("age rejects %s: %v", s, err)
		}
		if id.String() != s {
			t.Fatalf("age encodes %s as %s", s, id)
		}
	}
	if _, err := EncodeSecretKey(make([]byte, 16)); err == nil {
		t.Error("16-byte scalar accepted")
	}
}

// encrypt returns the ciphertext of plain for the recipients.
func encrypt(t *testing.T, plain []byte, rs ...age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := EncryptStream(&buf, bytes.NewReader(plain), rs...)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(plain)) {
		t.Fatalf("encrypted %d bytes of %d", n, len(plain))
	}
	return buf.Bytes()
}

func decrypt(ct []byte, ids ...age.Identity) ([]byte, error) {
	var out bytes.Buffer
	_, err := DecryptStream(&out, bytes.NewReader(ct), ids...)
	return out.Bytes(), err
}

func TestRoundTrip(t *testing.T) {
	owner := derive(t, message.ChainETH, devEVMAddr)
	friend, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	// Sizes around age's 64 KiB chunk boundary, where the last-chunk flag matters.
	for _, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3<<20 + 7} {
		plain := make([]byte, size)
		rand.Read(plain)
		ct := encrypt(t, plain, owner.Recipient(), friend.Recipient())
		if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n-> X25519 ")) {
			t.Fatalf("size %d: not an age v1 file: %q", size, ct[:min(len(ct), 40)])
		}
		for name, id := range map[string]age.Identity{"owner": owner, "friend": friend} {
			got, err := decrypt(ct, id)
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("size %d, %s: %d bytes back, %v", size, name, len(got), err)
			}
		}
		if _, err := decrypt(ct, stranger); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("size %d: wrong identity: %v, want ErrNoIdentity", size, err)
		}
	}
}

// Files made with `age -a` (ASCII armor) decrypt too.
func TestArmoredInput(t *testing.T) {
	owner := derive(t, message.ChainETH, devEVMAddr)
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	if _, err := EncryptStream(aw, strings.NewReader("armored"), owner.Recipient()); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	if !strings.HasPrefix(buf.String(), "-----BEGIN AGE ENCRYPTED FILE-----\n") {
		t.Fatalf("not armored: %q", buf.String()[:20])
	}
	got, err := decrypt(buf.Bytes(), owner)
	if err != nil || string(got) != "armored" {
		t.Errorf("%q, %v", got, err)
	}
	bad := bytes.Replace(buf.Bytes(), []byte("\n-----END"), []byte("x\n-----END"), 1)
	if _, err := decrypt(bad, owner); err == nil {
		t.Error("damaged armor decrypted")
	}
}

func TestRecipientsAreParsed(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	rs, err := ParseRecipients([]string{" " + id.Recipient().String() + "\n"})
	if err != nil || len(rs) != 1 {
		t.Fatalf("parse: %v", err)
	}
	got, err := decrypt(encrypt(t, []byte("hi"), rs...), id)
	if err != nil || string(got) != "hi" {
		t.Errorf("decrypt: %q, %v", got, err)
	}
	for _, bad := range []string{"", "age1", "AGE-SECRET-KEY-1TW2FYNW69FJW7S8MKDQ2FY3USULP9H47C88DUE6MPG5M8AL44VRSH7490G", "ssh-ed25519 AAAA"} {
		if _, err := ParseRecipients([]string{bad}); err == nil {
			t.Errorf("recipient %q accepted", bad)
		}
	}
}

func TestParseIdentitiesFile(t *testing.T) {
	owner := derive(t, message.ChainETH, devEVMAddr)
	file := "# created: by age-keygen\n# public key: " + owner.Recipient().String() + "\n" + owner.String() + "\n"
	ids, err := ParseIdentities(strings.NewReader(file))
	if err != nil || len(ids) != 1 {
		t.Fatalf("parse: %d, %v", len(ids), err)
	}
	got, err := decrypt(encrypt(t, []byte("x"), owner.Recipient()), ids...)
	if err != nil || string(got) != "x" {
		t.Errorf("decrypt: %q, %v", got, err)
	}
	if _, err := ParseIdentities(strings.NewReader("not a key\n")); err == nil {
		t.Error("garbage identity file accepted")
	}
}

func TestTamperingFails(t *testing.T) {
	owner := derive(t, message.ChainETH, devEVMAddr)
	plain := make([]byte, 200<<10)
	rand.Read(plain)
	ct := encrypt(t, plain, owner.Recipient())
	hdrEnd := bytes.Index(ct, []byte("\n---")) + 1
	payload := bytes.IndexByte(ct[hdrEnd:], '\n') + hdrEnd + 1
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 0x01
		return c
	}
	for _, tc := range []struct {
		name string
		ct   []byte
	}{
		{"stanza body", flip(hdrEnd - 3)},
		{"header mac", flip(hdrEnd + 10)},
		{"nonce", flip(payload + 3)},
		{"first chunk", flip(payload + 16 + 100)},
		{"last chunk", flip(len(ct) - 5)},
		{"truncated", ct[:len(ct)-1000]},
		{"truncated at a chunk boundary", ct[:payload+16+(64<<10+16)]},
		{"appended", append(bytes.Clone(ct), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decrypt(tc.ct, owner)
			if err == nil {
				t.Fatalf("tampered file decrypted (%d bytes)", len(got))
			}
			if !strings.HasPrefix(err.Error(), "decrypt:") {
				t.Errorf("error %q does not say decrypt", err)
			}
		})
	}
}

func TestNotEncrypted(t *testing.T) {
	owner := derive(t, message.ChainETH, devEVMAddr)
	for _, in := range []string{"", "hello", "age-encryption.org/v2\n", "-----BEGIN AGE FILE-----\n"} {
		if _, err := Decrypt(strings.NewReader(in), owner); !errors.Is(err, ErrNotEncrypted) {
			t.Errorf("%q: %v, want ErrNotEncrypted", in, err)
		}
	}
	if _, err := Decrypt(strings.NewReader("age-encryption.org/v1\n"), owner); err == nil || errors.Is(err, ErrNotEncrypted) {
		t.Errorf("bad header: %v", err)
	}
	if _, err := Decrypt(strings.NewReader("x")); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("no identity: %v", err)
	}
	if _, err := Encrypt(io.Discard); !errors.Is(err, ErrNoRecipient) {
		t.Errorf("no recipient: %v", err)
	}
}

func TestMetadataCarriesNoKey(t *testing.T) {
	m := Metadata()
	if len(m) != 1 || m["encryption"] != "age-v1" {
		t.Errorf("metadata %v", m)
	}
}
