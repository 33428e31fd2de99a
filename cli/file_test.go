package cli

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/unixfs"
)

// These tests run the file commands in process against a small fake node that
// keeps uploads in memory and serves them with Range support, to check the
// CLI's own logic: engine choice, encryption, resume, verification and the
// error paths a real node does not produce (a connection cut mid-file, corrupt
// bytes). e2e_test.go runs the same commands against a real node.

type fakeFileNode struct {
	t      *testing.T
	mu     sync.Mutex
	files  map[string][]byte
	stores map[string]*message.StoreContent // by file hash
	paths  []string                         // upload paths, in order
	ranges []string                         // Range headers of raw downloads
	// cutAfter, when > 0, makes the next raw download stop after that many bytes.
	cutAfter int
	// corrupt makes raw downloads serve other bytes.
	corrupt bool
}

func newFakeFileNode(t *testing.T) (*fakeFileNode, string) {
	t.Helper()
	n := &fakeFileNode{t: t, files: map[string][]byte{}, stores: map[string]*message.StoreContent{}}
	srv := httptest.NewServer(n)
	t.Cleanup(srv.Close)
	return n, srv.URL
}

func (n *fakeFileNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && (r.URL.Path == "/api/v0/storage/add_file" || r.URL.Path == "/api/v0/ipfs/add_file"):
		n.upload(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/v0/storage/raw/"):
		n.raw(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (n *fakeFileNode) upload(w http.ResponseWriter, r *http.Request) {
	_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mr := multipart.NewReader(r.Body, params["boundary"])
	var sc *message.StoreContent
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		data, _ := io.ReadAll(p)
		switch p.FormName() {
		case "metadata":
			var m struct {
				Message message.Message `json:"message"`
			}
			if err := json.Unmarshal(data, &m); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			c, err := message.ParseContent(message.TypeStore, []byte(m.Message.ItemContent))
			if err != nil {
				http.Error(w, err.Error(), 422)
				return
			}
			sc = c.(*message.StoreContent)
		case "file":
			if sc == nil {
				http.Error(w, "file before metadata", 400)
				return
			}
			if err := checkFileHash(data, sc.ItemHash); err != nil {
				http.Error(w, err.Error(), 422)
				return
			}
			n.mu.Lock()
			n.files[sc.ItemHash] = data
			n.stores[sc.ItemHash] = sc
			n.paths = append(n.paths, r.URL.Path)
			n.mu.Unlock()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"success","hash":"`+sc.ItemHash+`"}`)
}

func checkFileHash(data []byte, h string) error {
	if message.IsHexHash(h) {
		if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != h {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	return unixfs.Verify(bytes.NewReader(data), h)
}

func (n *fakeFileNode) raw(w http.ResponseWriter, r *http.Request) {
	h := strings.TrimPrefix(r.URL.Path, "/api/v0/storage/raw/")
	n.mu.Lock()
	data, ok := n.files[h]
	n.ranges = append(n.ranges, r.Header.Get("Range"))
	cut := n.cutAfter
	n.cutAfter = 0
	corrupt := n.corrupt
	n.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if corrupt {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 1
	}
	if cut > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops mid-file
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// fileHarness is a harness with an imported account talking to a fake node.
func fileHarness(t *testing.T) (*harness, *fakeFileNode) {
	t.Helper()
	node, url := newFakeFileNode(t)
	h := newHarness(t)
	h.env["ALEPH_API_URL"] = url
	h.ok("account", "import", "--private-key", ethKey)
	return h, node
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "input.bin")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

type uploadOut struct {
	ItemHash  string          `json:"item_hash"`
	Status    string          `json:"status"`
	FileHash  string          `json:"file_hash"`
	Engine    string          `json:"engine"`
	Size      int64           `json:"size"`
	Encrypted bool            `json:"encrypted"`
	Message   message.Message `json:"message"`
	Content   struct {
		ItemType string         `json:"item_type"`
		ItemHash string         `json:"item_hash"`
		Ref      string         `json:"ref"`
		Metadata map[string]any `json:"metadata"`
	} `json:"content"`
}

func (h *harness) upload(args ...string) uploadOut {
	h.t.Helper()
	var u uploadOut
	if err := json.Unmarshal([]byte(h.ok(append([]string{"file", "upload", "--json"}, args...)...)), &u); err != nil {
		h.t.Fatal(err)
	}
	return u
}

type downloadOut struct {
	FileHash  string `json:"file_hash"`
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	Written   int64  `json:"written"`
	Resumed   bool   `json:"resumed"`
	Verified  bool   `json:"verified"`
	Decrypted bool   `json:"decrypted"`
}

func (h *harness) download(args ...string) downloadOut {
	h.t.Helper()
	var d downloadOut
	if err := json.Unmarshal([]byte(h.ok(append([]string{"file", "download", "--json"}, args...)...)), &d); err != nil {
		h.t.Fatal(err)
	}
	return d
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestFileKey checks the CLI's decoding of stored keys against filecrypt's
// golden derivations (filecrypt_test.go): same key, same age key.
func TestFileKey(t *testing.T) {
	h := newHarness(t)
	h.ok("account", "import", "--private-key", ethKey)
	seed, _ := hex.DecodeString(ethKey)
	h.ok("account", "import", "--chain", "SOL", "--name", "sol", "--private-key", base58.Encode(seed))
	var k map[string]string
	decodeStrict(t, h.ok("file", "key", "--json"), &k)
	if k["recipient"] != "age1pdm05f0q2atqv465n0fjynrxll0s08zkxc7xrw2uh7uwhz5z5y4qjgw0h3" || k["address"] != ethAddress || k["identity"] != "" {
		t.Errorf("eth key %v", k)
	}
	decodeStrict(t, h.ok("--account", "sol", "file", "key", "--secret", "--json"), &k)
	if k["recipient"] != "age12cnp5pjt40vcydwvupkvygmphwqk8f90qgq4u525frvns23d5cpquu77gq" ||
		k["identity"] != "AGE-SECRET-KEY-1GQ8XY8HDUG3YJ2K2S46TQ96WUFPHLH3XKS7ZT3G6DGFTG9STHQ7QFUT682" {
		t.Errorf("sol key %v", k)
	}
	if out := h.ok("file", "key"); !strings.Contains(out, "recipient  age1pdm05") || strings.Contains(out, "AGE-SECRET-KEY") {
		t.Errorf("human key output:\n%s", out)
	}
}

func TestFileUploadEngine(t *testing.T) {
	h, node := fileHarness(t)
	small := randomData(1000)
	big := randomData(4<<20 + 1)
	u := h.upload(writeFile(t, small), "--metadata", "name=small.bin", "--metadata", "kind=test=1", "--ref", "doc", "--channel", "FILES")
	if u.Engine != "storage" || u.FileHash != sha256Hex(small) || u.Size != 1000 || u.Status != "processed" || u.Encrypted ||
		u.Content.ItemType != "storage" || u.Content.ItemHash != u.FileHash || u.Content.Ref != "doc" || u.Message.Channel != "FILES" ||
		u.Content.Metadata["name"] != "small.bin" || u.Content.Metadata["kind"] != "test=1" || u.ItemHash != u.Message.ItemHash {
		t.Errorf("small upload %+v", u)
	}
	u = h.upload(writeFile(t, big))
	c, _ := unixfs.SumBytes(big, unixfs.KuboV0)
	if u.Engine != "ipfs" || u.FileHash != c.String() || u.Size != int64(len(big)) {
		t.Errorf("big upload %+v", u)
	}
	u = h.upload(writeFile(t, big), "--storage-engine", "storage")
	if u.Engine != "storage" || u.FileHash != sha256Hex(big) {
		t.Errorf("big upload to storage %+v", u)
	}
	want := []string{"/api/v0/storage/add_file", "/api/v0/ipfs/add_file", "/api/v0/storage/add_file"}
	if strings.Join(node.paths, " ") != strings.Join(want, " ") {
		t.Errorf("upload paths %v", node.paths)
	}

	// Standard input.
	r := h.run("from stdin", "file", "upload", "-", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, sha256Hex([]byte("from stdin"))) {
		t.Errorf("stdin upload: %+v", r)
	}
	// Human output.
	if out := h.ok("file", "upload", writeFile(t, small)); !strings.Contains(out, "file hash  "+sha256Hex(small)) || !strings.Contains(out, "engine     storage") {
		t.Errorf("human upload output:\n%s", out)
	}
}

func TestFileDownloadResume(t *testing.T) {
	h, node := fileHarness(t)
	data := randomData(1<<20 + 17)
	u := h.upload(writeFile(t, data))
	out := filepath.Join(t.TempDir(), "out.bin")

	node.cutAfter = 300 << 10
	h.fails("run the command again to resume", "file", "download", u.FileHash, "-o", out)
	if st, err := os.Stat(out + ".part"); err != nil || st.Size() != 300<<10 {
		t.Fatalf("part file after the cut: %v, %v", st, err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("output exists after a failed download")
	}
	d := h.download(u.FileHash, "-o", out)
	if !d.Resumed || !d.Verified || d.Written != int64(len(data))-300<<10 || d.Size != int64(len(data)) || d.Path != out {
		t.Errorf("resumed download %+v", d)
	}
	if !bytes.Equal(readFile(t, out), data) {
		t.Error("resumed download differs")
	}
	if _, err := os.Stat(out + ".part"); err == nil {
		t.Error("part file left")
	}
	if got := node.ranges[len(node.ranges)-1]; got != "bytes=307200-" {
		t.Errorf("resume Range %q", got)
	}

	// An existing output is not overwritten without --force.
	h.fails("already exists", "file", "download", u.FileHash, "-o", out)
	d = h.download(u.FileHash, "-o", out, "--force")
	if d.Resumed || !d.Verified || d.Written != int64(len(data)) {
		t.Errorf("forced download %+v", d)
	}
	// Standard output.
	if got := h.ok("file", "download", u.FileHash, "-o", "-"); got != string(data) {
		t.Errorf("stdout download: %d bytes", len(got))
	}
	// The default output is the hash, in the current directory.
	dir := t.TempDir()
	t.Chdir(dir)
	h.download(u.FileHash)
	if !bytes.Equal(readFile(t, filepath.Join(dir, u.FileHash)), data) {
		t.Error("default output differs")
	}
}

func TestFileDownloadRejectsCorruptBytes(t *testing.T) {
	h, node := fileHarness(t)
	u := h.upload(writeFile(t, randomData(5000)))
	out := filepath.Join(t.TempDir(), "out.bin")
	node.corrupt = true
	h.fails("does not match", "file", "download", u.FileHash, "-o", out)
	for _, p := range []string{out, out + ".part"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after a corrupt download", p)
		}
	}
	// A corrupt part file from an earlier run is caught once complete.
	node.corrupt = false
	node.cutAfter = 1000
	h.fails("resume", "file", "download", u.FileHash, "-o", out)
	part := readFile(t, out+".part")
	part[10] ^= 1
	os.WriteFile(out+".part", part, 0o600)
	h.fails("does not match", "file", "download", u.FileHash, "-o", out)
	if _, err := os.Stat(out + ".part"); err == nil {
		t.Error("corrupt part file kept")
	}
	h.fails("no file", "file", "download", strings.Repeat("0", 64), "-o", out)
	h.fails("is not a file hash", "file", "download", "../etc/passwd")
}

func TestFileEncryptedRoundTrip(t *testing.T) {
	h, node := fileHarness(t)
	friend, _ := age.GenerateX25519Identity()
	stranger, _ := age.GenerateX25519Identity()
	plain := randomData(200<<10 + 3)
	u := h.upload(writeFile(t, plain), "--encrypt", "--recipient", friend.Recipient().String(), "--metadata", "note=x")
	stored := node.files[u.FileHash]
	if !u.Encrypted || !bytes.HasPrefix(stored, []byte("age-encryption.org/v1\n")) || u.FileHash != sha256Hex(stored) || u.Size != int64(len(stored)) {
		t.Fatalf("encrypted upload %+v (stored %d bytes)", u, len(stored))
	}
	if len(u.Content.Metadata) != 2 || u.Content.Metadata["encryption"] != "age-v1" || u.Content.Metadata["note"] != "x" {
		t.Errorf("metadata %v", u.Content.Metadata)
	}
	if s := u.Message.ItemContent; strings.Contains(s, "AGE-SECRET") || strings.Contains(s, "age1") {
		t.Errorf("key material in the message: %s", s)
	}

	dir := t.TempDir()
	out := filepath.Join(dir, "plain.bin")
	d := h.download(u.FileHash, "-o", out, "--decrypt")
	if !d.Decrypted || !d.Verified || !bytes.Equal(readFile(t, out), plain) {
		t.Errorf("owner decrypt %+v", d)
	}
	// The friend decrypts with an age identity file.
	idFile := filepath.Join(dir, "friend.txt")
	os.WriteFile(idFile, []byte("# friend\n"+friend.String()+"\n"), 0o600)
	if got := h.ok("file", "download", u.FileHash, "-o", "-", "--identity", idFile); got != string(plain) {
		t.Error("friend decrypt differs")
	}
	// A stranger cannot; the ciphertext stays for another try, which needs no
	// second download.
	bad := filepath.Join(dir, "stranger.txt")
	os.WriteFile(bad, []byte(stranger.String()+"\n"), 0o600)
	out2 := filepath.Join(dir, "again.bin")
	h.fails("no identity can decrypt", "file", "download", u.FileHash, "-o", out2, "--identity", bad)
	if _, err := os.Stat(out2); err == nil {
		t.Error("plaintext output written by a failed decryption")
	}
	if !bytes.Equal(readFile(t, out2+".part"), stored) {
		t.Error("ciphertext not kept")
	}
	gets := len(node.ranges)
	d = h.download(u.FileHash, "-o", out2, "--identity", idFile)
	if !d.Decrypted || d.Written != 0 || !bytes.Equal(readFile(t, out2), plain) {
		t.Errorf("retry %+v", d)
	}
	if len(node.ranges) != gets+1 || node.ranges[gets] != "bytes="+strconv.Itoa(len(stored))+"-" {
		t.Errorf("retry requests %v", node.ranges[gets:])
	}
	// Without --decrypt the ciphertext is saved as is; a plain file cannot be
	// decrypted.
	h.download(u.FileHash, "-o", filepath.Join(dir, "cipher.bin"))
	if !bytes.Equal(readFile(t, filepath.Join(dir, "cipher.bin")), stored) {
		t.Error("ciphertext download differs")
	}
	p := h.upload(writeFile(t, []byte("not encrypted")))
	h.fails("not an age v1 encrypted file", "file", "download", p.FileHash, "-o", filepath.Join(dir, "p.bin"), "--decrypt")
}

func TestFileFlagErrors(t *testing.T) {
	h, _ := fileHarness(t)
	f := writeFile(t, []byte("x"))
	h.fails("want key=value", "file", "upload", f, "--metadata", "novalue")
	h.fails("want storage or ipfs", "file", "upload", f, "--storage-engine", "inline")
	h.fails("--recipient", "file", "upload", f, "--recipient", "age1nope")
	h.fails("not a regular file", "file", "upload", t.TempDir())
	h.fails("no such file", "file", "upload", filepath.Join(t.TempDir(), "missing"))
	h.fails("not an item hash", "file", "forget", "abc")
	h.fails("invalid file hash", "file", "pin", "QmNotACid")
	h.fails("missing subcommand", "file")
	h2 := newHarness(t)
	h2.fails("no account", "file", "list")
	h2.fails("no account", "file", "key")
}
