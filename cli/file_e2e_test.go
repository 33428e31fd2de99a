package cli_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EFiles runs the file commands with the aleph binary against a real node:
// uploads to both engines come back byte for byte, a partial download resumes,
// an encrypted upload decrypts, and list, info, pin and forget agree.
func TestE2EFiles(t *testing.T) {
	c := newCLI(t)
	var acc struct {
		Address string `json:"address"`
	}
	c.json(&acc, "account", "create")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	type upload struct {
		ItemHash   string `json:"item_hash"`
		Status     string `json:"status"`
		HTTPStatus int    `json:"http_status"`
		FileHash   string `json:"file_hash"`
		Engine     string `json:"engine"`
		Size       int64  `json:"size"`
		Encrypted  bool   `json:"encrypted"`
	}
	type download struct {
		Size      int64 `json:"size"`
		Written   int64 `json:"written"`
		Resumed   bool  `json:"resumed"`
		Verified  bool  `json:"verified"`
		Decrypted bool  `json:"decrypted"`
	}
	up := func(args ...string) upload {
		t.Helper()
		var u upload
		c.json(&u, append([]string{"file", "upload"}, args...)...)
		if u.Status != "processed" || u.HTTPStatus != 200 || len(u.ItemHash) != 64 {
			t.Fatalf("upload %v: %+v", args, u)
		}
		return u
	}
	// roundTrip downloads hash and compares it with want.
	roundTrip := func(name, hash string, want []byte, extra ...string) download {
		t.Helper()
		out := filepath.Join(dir, name)
		var d download
		c.json(&d, append([]string{"file", "download", hash, "-o", out}, extra...)...)
		if got := read(out); !bytes.Equal(got, want) {
			t.Fatalf("download %s: %d bytes differ from the %d uploaded", hash, len(got), len(want))
		}
		if _, err := os.Stat(out + ".part"); err == nil {
			t.Errorf("download %s left its .part file", hash)
		}
		return d
	}

	// Both engines, chosen by size and by flag.
	small := random(100 << 10)
	s := up(write("small.bin", small), "--ref", "small", "--metadata", "name=small.bin")
	sum := sha256.Sum256(small)
	if s.Engine != "storage" || s.FileHash != hex.EncodeToString(sum[:]) || s.Size != int64(len(small)) {
		t.Errorf("small upload %+v", s)
	}
	if d := roundTrip("small.out", s.FileHash, small); !d.Verified || d.Resumed || d.Written != int64(len(small)) {
		t.Errorf("small download %+v", d)
	}
	big := random(5<<20 + 123)
	b := up(write("big.bin", big))
	if b.Engine != "ipfs" || !strings.HasPrefix(b.FileHash, "Qm") {
		t.Errorf("big upload %+v", b)
	}
	roundTrip("big.out", b.FileHash, big)
	forced := up(write("forced.bin", small[:1000]), "--storage-engine", "ipfs")
	if forced.Engine != "ipfs" {
		t.Errorf("--storage-engine ipfs gave %+v", forced)
	}
	roundTrip("forced.out", forced.FileHash, small[:1000])

	// Resume: a .part holding the first bytes is completed with a Range request.
	partial := filepath.Join(dir, "resumed.out")
	if err := os.WriteFile(partial+".part", big[:2<<20], 0o600); err != nil {
		t.Fatal(err)
	}
	d := roundTrip("resumed.out", b.FileHash, big)
	if !d.Resumed || !d.Verified || d.Written != int64(len(big))-2<<20 || d.Size != int64(len(big)) {
		t.Errorf("resumed download %+v", d)
	}

	// Encryption: the node holds ciphertext; --decrypt gives the plaintext back.
	secret := random(300 << 10)
	e := up(write("secret.bin", secret), "--encrypt")
	if !e.Encrypted || e.Size <= int64(len(secret)) {
		t.Errorf("encrypted upload %+v", e)
	}
	c.ok("file", "download", e.FileHash, "-o", filepath.Join(dir, "cipher.out"))
	if ct := read(filepath.Join(dir, "cipher.out")); !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n")) || bytes.Contains(ct, secret[:64]) {
		t.Error("the node holds something other than an age file")
	}
	if d := roundTrip("secret.out", e.FileHash, secret, "--decrypt"); !d.Decrypted || !d.Verified {
		t.Errorf("decrypted download %+v", d)
	}

	// list: every upload of the account.
	var list struct {
		Address   string `json:"address"`
		TotalSize int64  `json:"total_size"`
		Files     []struct {
			FileHash string `json:"file_hash"`
			ItemHash string `json:"item_hash"`
			Size     int64  `json:"size"`
		} `json:"files"`
	}
	c.json(&list, "file", "list")
	found := map[string]string{}
	for _, f := range list.Files {
		found[f.FileHash] = f.ItemHash
	}
	for _, u := range []upload{s, b, forced, e} {
		if found[u.FileHash] != u.ItemHash {
			t.Errorf("file list lacks %s (message %s): %+v", u.FileHash, u.ItemHash, list)
		}
	}
	if list.Address != acc.Address || list.TotalSize != s.Size+b.Size+forced.Size+e.Size {
		t.Errorf("file list %+v", list)
	}
	if h := c.ok("file", "list"); !strings.HasPrefix(h, "FILE HASH") || !strings.Contains(h, s.FileHash) {
		t.Errorf("file list table:\n%s", h)
	}

	// info, by file hash and by message hash; pin adds a pin, forget removes it.
	type info struct {
		FileHash    string `json:"file_hash"`
		Type        string `json:"type"`
		Size        int64  `json:"size"`
		PinCount    int64  `json:"pin_count"`
		MessageHash string `json:"message_hash"`
		Owner       string `json:"owner"`
		Ref         string `json:"ref"`
	}
	var i info
	c.json(&i, "file", "info", b.FileHash)
	if i.FileHash != b.FileHash || i.Type != "file" || i.Size != b.Size || i.PinCount < 1 || i.MessageHash != "" {
		t.Errorf("info by file hash %+v", i)
	}
	pins := i.PinCount
	c.json(&i, "file", "info", s.ItemHash)
	if i.FileHash != s.FileHash || i.MessageHash != s.ItemHash || i.Owner != acc.Address || i.Ref != "small" {
		t.Errorf("info by message hash %+v", i)
	}
	pin := c.write("file", "pin", b.FileHash, "--ref", "big-again")
	c.json(&i, "file", "info", b.FileHash)
	if i.PinCount != pins+1 {
		t.Errorf("pins after pin: %+v, before %d", i, pins)
	}
	c.write("file", "forget", pin.ItemHash, "--reason", "e2e")
	c.json(&i, "file", "info", b.FileHash)
	if i.PinCount != pins {
		t.Errorf("pins after forget: %+v, before the pin %d", i, pins)
	}
	var res struct {
		Status string `json:"status"`
	}
	c.json(&res, "message", "get", pin.ItemHash)
	if res.Status != "forgotten" {
		t.Errorf("pin message after forget: %s", res.Status)
	}
	c.fails("no file and no STORE message", "file", "info", strings.Repeat("0", 64))
	c.fails("no file", "file", "download", strings.Repeat("0", 64), "-o", filepath.Join(dir, "none"))
}
