package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/message"
)

// These tests run a real HTTP server on 127.0.0.1 that parses what the client
// sends, to check the request shapes (part order, the signed metadata, Range)
// and the answers a go-aleph node does not give (a node that ignores Range,
// corrupt bytes, stalls). The end-to-end behaviour against a real node is in
// the cli package's e2e tests.

// uploadReq is an upload as the server received it.
type uploadReq struct {
	path      string
	parts     []string // part names, in order
	fileName  string
	metaType  string
	sync      bool
	msg       *message.Message
	store     *message.StoreContent
	file      []byte
	truncated bool // the multipart body ended early
}

// uploadServer records uploads and answers with answer(req).
func uploadServer(t *testing.T, answer func(*uploadReq) (int, string)) (*httptest.Server, func() []*uploadReq) {
	t.Helper()
	var mu sync.Mutex
	var got []*uploadReq
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &uploadReq{path: r.URL.Path}
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			http.Error(w, "not multipart", 400)
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				u.truncated = true
				break
			}
			u.parts = append(u.parts, p.FormName())
			data, err := io.ReadAll(p)
			if err != nil {
				u.truncated = true
				break
			}
			switch p.FormName() {
			case "metadata":
				u.metaType = p.Header.Get("Content-Type")
				var m struct {
					Message *message.Message `json:"message"`
					Sync    bool             `json:"sync"`
				}
				if err := json.Unmarshal(data, &m); err != nil {
					t.Errorf("metadata part: %v: %s", err, data)
				}
				u.msg, u.sync = m.Message, m.Sync
				if u.msg != nil {
					c, err := message.ParseContent(message.TypeStore, []byte(u.msg.ItemContent))
					if err != nil {
						t.Errorf("STORE content: %v", err)
					} else {
						u.store = c.(*message.StoreContent)
					}
				}
			case "file":
				u.fileName, u.file = p.FileName(), data
			}
		}
		mu.Lock()
		got = append(got, u)
		mu.Unlock()
		status, body := answer(u)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []*uploadReq {
		mu.Lock()
		defer mu.Unlock()
		return append([]*uploadReq(nil), got...)
	}
}

func okAnswer(u *uploadReq) (int, string) {
	h := ""
	if u.store != nil {
		h = u.store.ItemHash
	}
	return 200, `{"status":"success","hash":"` + h + `"}`
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// onlyReader hides every method but Read (no Seek, no WriteTo).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestUploadFileRequestShape(t *testing.T) {
	hello := []byte("hello world\n")
	big := randomBytes(3<<20 + 5)
	for _, tc := range []struct {
		name     string
		engine   message.ItemType
		data     []byte
		reader   func([]byte) io.Reader
		path     string
		wantHash string
	}{
		{"storage, seekable", message.ItemStorage, big, func(b []byte) io.Reader { return bytes.NewReader(b) }, "/api/v0/storage/add_file", sha(big)},
		{"storage, spooled", message.ItemStorage, big, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }, "/api/v0/storage/add_file", sha(big)},
		{"default engine", "", hello, func(b []byte) io.Reader { return bytes.NewReader(b) }, "/api/v0/storage/add_file", sha(hello)},
		// The CID is kubo's (testdata/cids.json in the shared reference).
		{"ipfs, seekable", message.ItemIPFS, hello, func(b []byte) io.Reader { return bytes.NewReader(b) }, "/api/v0/ipfs/add_file", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"},
		{"ipfs, spooled", message.ItemIPFS, hello, func(b []byte) io.Reader { return onlyReader{bytes.NewReader(b)} }, "/api/v0/ipfs/add_file", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"},
		{"empty file", message.ItemStorage, nil, func(b []byte) io.Reader { return bytes.NewReader(b) }, "/api/v0/storage/add_file", sha(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, reqs := uploadServer(t, okAnswer)
			signer := ethSigner(t)
			c := New(srv.URL, WithSigner(signer), WithClock(testClock))
			spool := t.TempDir()
			var progress []int64
			res, err := c.UploadFile(context.Background(), tc.reader(tc.data), UploadOptions{
				Engine: tc.engine, Ref: "my-file", Metadata: map[string]any{"name": "a.txt", "n": 1},
				WriteOptions: WriteOptions{Channel: "FILES", Sync: true},
				Progress:     func(n int64) { progress = append(progress, n) },
				TempDir:      spool,
			})
			if err != nil {
				t.Fatal(err)
			}
			rs := reqs()
			if len(rs) != 1 {
				t.Fatalf("%d requests", len(rs))
			}
			u := rs[0]
			if u.path != tc.path || strings.Join(u.parts, ",") != "metadata,file" || u.truncated {
				t.Fatalf("request %s with parts %v (truncated %v)", u.path, u.parts, u.truncated)
			}
			if u.metaType != "application/json" || u.fileName != DefaultUploadName || !u.sync {
				t.Errorf("metadata type %q, file name %q, sync %v", u.metaType, u.fileName, u.sync)
			}
			if !bytes.Equal(u.file, tc.data) {
				t.Errorf("file part: %d bytes, want %d", len(u.file), len(tc.data))
			}
			m := u.msg
			if m.Type != message.TypeStore || m.ItemType != message.ItemInline || m.Channel != "FILES" || m.Sender != signer.Address() {
				t.Errorf("message %+v", m)
			}
			if err := all.NewRegistry().Verify(m); err != nil {
				t.Errorf("signature: %v", err)
			}
			if err := m.Validate(); err != nil {
				t.Errorf("message does not validate: %v", err)
			}
			engine := tc.engine
			if engine == "" {
				engine = message.ItemStorage
			}
			s := u.store
			if s.ItemType != engine || s.ItemHash != tc.wantHash || s.Ref != "my-file" || string(s.Metadata) != `{"n":1,"name":"a.txt"}` || s.Address != signer.Address() {
				t.Errorf("STORE content %s", m.ItemContent)
			}
			if res.ItemHash != m.ItemHash || res.FileHash != tc.wantHash || res.Size != int64(len(tc.data)) ||
				res.Status != message.StatusProcessed || res.HTTPStatus != 200 || res.Engine != engine {
				t.Errorf("result %+v", res)
			}
			if len(tc.data) > 0 && (len(progress) == 0 || progress[len(progress)-1] != int64(len(tc.data))) {
				t.Errorf("progress ends at %v, want %d", progress, len(tc.data))
			}
			for i := 1; i < len(progress); i++ {
				if progress[i] <= progress[i-1] {
					t.Fatalf("progress goes back: %v", progress)
				}
			}
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Errorf("spool files left: %v", left)
			}
		})
	}
}

// A seekable reader is uploaded from its current offset.
func TestUploadFileFromOffset(t *testing.T) {
	srv, reqs := uploadServer(t, okAnswer)
	c := New(srv.URL, WithSigner(ethSigner(t)))
	r := bytes.NewReader([]byte("headerPAYLOAD"))
	r.Seek(6, io.SeekStart)
	res, err := c.UploadFile(context.Background(), r, UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := reqs()[0].file; string(got) != "PAYLOAD" || res.FileHash != sha([]byte("PAYLOAD")) || res.Size != 7 {
		t.Errorf("uploaded %q as %s (%d bytes)", got, res.FileHash, res.Size)
	}
}

func TestUploadFileAnswers(t *testing.T) {
	data := []byte("some file")
	for _, tc := range []struct {
		name   string
		status int
		body   string
		check  func(*testing.T, *UploadResult, error)
	}{
		{"pending", 202, `{"status":"success"}`, func(t *testing.T, r *UploadResult, err error) {
			if err != nil || r.Status != message.StatusPending || r.HTTPStatus != 202 {
				t.Errorf("%+v, %v", r, err)
			}
		}},
		{"rejected", 422, `{"error_code":200,"reason":"ref not found"}`, func(t *testing.T, r *UploadResult, err error) {
			var rej *RejectedError
			if !errors.As(err, &rej) || rej.Code != message.CodeStoreRefNotFound || rej.ItemHash != r.ItemHash || rej.Reason != "ref not found" {
				t.Errorf("%v", err)
			}
		}},
		{"too large", 413, `{"error":"file too large"}`, func(t *testing.T, _ *UploadResult, err error) {
			if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotFound) {
				t.Errorf("%v", err)
			}
		}},
		{"bad signature", 403, `{"error":"invalid signature"}`, func(t *testing.T, _ *UploadResult, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 403 || !strings.Contains(err.Error(), "invalid signature") {
				t.Errorf("%v", err)
			}
		}},
		{"other hash", 200, `{"status":"success","hash":"` + strings.Repeat("ab", 32) + `"}`, func(t *testing.T, _ *UploadResult, err error) {
			if !errors.Is(err, ErrHashMismatch) {
				t.Errorf("%v", err)
			}
		}},
		{"not found (no file service)", 404, `404: Not Found`, func(t *testing.T, _ *UploadResult, err error) {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := uploadServer(t, func(*uploadReq) (int, string) { return tc.status, tc.body })
			c := New(srv.URL, WithSigner(ethSigner(t)))
			res, err := c.UploadFile(context.Background(), bytes.NewReader(data), UploadOptions{})
			tc.check(t, res, err)
		})
	}
}

func TestUploadFileRefusesBadInput(t *testing.T) {
	srv, reqs := uploadServer(t, okAnswer)
	c := New(srv.URL, WithSigner(ethSigner(t)))
	ctx := context.Background()
	if _, err := New(srv.URL).UploadFile(ctx, bytes.NewReader(nil), UploadOptions{}); !errors.Is(err, ErrNoSigner) {
		t.Errorf("no signer: %v", err)
	}
	if _, err := c.UploadFile(ctx, bytes.NewReader(nil), UploadOptions{Engine: "inline"}); err == nil {
		t.Error("engine inline accepted")
	}
	if _, err := c.UploadFile(ctx, nil, UploadOptions{}); err == nil {
		t.Error("nil reader accepted")
	}
	if _, err := c.UploadFile(ctx, bytes.NewReader(nil), UploadOptions{Metadata: map[string]any{"big": strings.Repeat("x", 60000)}}); err == nil {
		t.Error("content over the inline threshold accepted")
	}
	if n := len(reqs()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// shrinking reads all of b the first time, and less after a rewind: a file
// that changed between the hash pass and the upload.
type shrinking struct {
	*bytes.Reader
	passes int
}

func (s *shrinking) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart { // the rewind after the hash pass
		s.passes++
		if s.passes == 1 {
			all, _ := io.ReadAll(io.NewSectionReader(s.Reader, 0, s.Reader.Size()))
			s.Reader = bytes.NewReader(all[:len(all)/2])
		}
	}
	return s.Reader.Seek(off, whence)
}

func TestUploadFileThatChanges(t *testing.T) {
	srv, _ := uploadServer(t, okAnswer)
	c := New(srv.URL, WithSigner(ethSigner(t)))
	_, err := c.UploadFile(context.Background(), &shrinking{Reader: bytes.NewReader(randomBytes(100 << 10))}, UploadOptions{})
	if err == nil || !strings.Contains(err.Error(), "changed while it was uploaded") {
		t.Errorf("%v", err)
	}
}

// failingReader fails after some bytes.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestUploadFileSourceError(t *testing.T) {
	srv, reqs := uploadServer(t, okAnswer)
	c := New(srv.URL, WithSigner(ethSigner(t)))
	dir := t.TempDir()
	_, err := c.UploadFile(context.Background(), &failingReader{n: 1 << 20}, UploadOptions{TempDir: dir})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("%v", err)
	}
	if len(reqs()) != 0 {
		t.Error("a request was sent")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}

// A node that answers before reading the body (413 on Content-Length-less
// uploads is decided on the fly) still gives its answer, not a write error.
func TestUploadFileEarlyAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 64<<10)
		w.Header().Set("Connection", "close")
		w.WriteHeader(413)
		io.WriteString(w, `{"error":"too large"}`)
	}))
	defer srv.Close()
	c := New(srv.URL, WithSigner(ethSigner(t)))
	_, err := c.UploadFile(context.Background(), bytes.NewReader(randomBytes(8<<20)), UploadOptions{})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("%v, want ErrTooLarge", err)
	}
}

// The HTTP client's timeout bounds a stall, not a whole transfer.
func TestUploadFileStall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // read nothing and never answer
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := New(srv.URL, WithSigner(ethSigner(t)), WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.UploadFile(ctx, bytes.NewReader(randomBytes(4<<20)), UploadOptions{})
	var se *StallError
	if !errors.As(err, &se) || se.After != 200*time.Millisecond {
		t.Errorf("%v, want a stall", err)
	}
}

// fileServer serves one file under /api/v0/storage/raw/{hash} with Range
// support (http.ServeContent), or as its handler says.
func fileServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func serveRange(content []byte, hash string, ranges *[]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v0/storage/raw/"+hash {
			http.NotFound(w, r)
			return
		}
		if ranges != nil {
			*ranges = append(*ranges, r.Header.Get("Range"))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+hash+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
	}
}

func TestDownloadFile(t *testing.T) {
	content := randomBytes(300<<10 + 3)
	h := sha(content)
	for _, tc := range []struct {
		name    string
		from    int64
		handler func(*[]string) http.HandlerFunc
		range_  string
		resumed bool
		checked bool
	}{
		{"whole", 0, func(r *[]string) http.HandlerFunc { return serveRange(content, h, r) }, "", false, true},
		{"resumed", 100 << 10, func(r *[]string) http.HandlerFunc { return serveRange(content, h, r) }, "bytes=102400-", true, false},
		// A node that ignores Range: the first bytes are dropped, and since
		// the whole file came, it is verified.
		{"range ignored", 100 << 10, func(r *[]string) http.HandlerFunc {
			return func(w http.ResponseWriter, req *http.Request) {
				*r = append(*r, req.Header.Get("Range"))
				w.Write(content)
			}
		}, "bytes=102400-", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ranges []string
			c := New(fileServer(t, tc.handler(&ranges)).URL)
			var out bytes.Buffer
			res, err := c.DownloadFile(context.Background(), h, &out, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), content[tc.from:]) {
				t.Errorf("wrote %d bytes, want the %d from offset %d", out.Len(), len(content)-int(tc.from), tc.from)
			}
			if len(ranges) != 1 || ranges[0] != tc.range_ {
				t.Errorf("Range headers %q, want %q", ranges, tc.range_)
			}
			if res.Size != int64(len(content)) || res.Written != int64(len(content))-tc.from || res.Resumed != tc.resumed || res.Verified != tc.checked {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestDownloadFileComplete(t *testing.T) {
	content := []byte("complete file")
	h := sha(content)
	c := New(fileServer(t, serveRange(content, h, nil)).URL)
	var out bytes.Buffer
	res, err := c.DownloadFile(context.Background(), h, &out, int64(len(content)))
	if err != nil || out.Len() != 0 || res.Written != 0 || res.Size != int64(len(content)) {
		t.Errorf("%+v, %v, wrote %q", res, err, out.String())
	}
}

func TestDownloadFileErrors(t *testing.T) {
	content := []byte("the real file")
	h := sha(content)
	cid := "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o" // "hello world\n"
	for _, tc := range []struct {
		name    string
		hash    string
		from    int64
		handler http.HandlerFunc
		want    func(error) bool
	}{
		{"corrupt bytes", h, 0, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("the fake file")) },
			func(err error) bool { return errors.Is(err, ErrHashMismatch) }},
		{"corrupt ipfs file", cid, 0, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello world!")) },
			func(err error) bool { return errors.Is(err, ErrHashMismatch) }},
		{"unknown file", h, 0, http.NotFound, func(err error) bool { return errors.Is(err, ErrNotFound) }},
		{"local copy too large", h, 100, serveRange(content, h, nil),
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "larger than the file") }},
		{"range ignored, file shorter", h, 100, func(w http.ResponseWriter, r *http.Request) { w.Write(content) },
			func(err error) bool {
				return err != nil && strings.Contains(err.Error(), "smaller than the local copy")
			}},
		{"wrong range start", h, 5, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 0-12/13")
			w.WriteHeader(206)
			w.Write(content)
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "sent bytes from 0") }},
		{"short range", h, 5, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 5-6/13")
			w.WriteHeader(206)
			w.Write(content[5:7])
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "sent bytes 5-6") }},
		{"bad content range", h, 5, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "items 5-6")
			w.WriteHeader(206)
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "invalid Content-Range") }},
		{"truncated body", h, 0, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write(content)
		}, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"invalid hash", "../../etc/passwd", 0, serveRange(content, h, nil),
			func(err error) bool { return errors.Is(err, ErrInvalidFileHash) }},
		{"negative offset", h, -1, serveRange(content, h, nil),
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "negative offset") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(fileServer(t, tc.handler).URL)
			_, err := c.DownloadFile(context.Background(), tc.hash, io.Discard, tc.from)
			if !tc.want(err) {
				t.Errorf("error %v", err)
			}
		})
	}
}

func TestDownloadFileVerifiesCID(t *testing.T) {
	cid := "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
	c := New(fileServer(t, serveRange([]byte("hello world\n"), cid, nil)).URL)
	var out bytes.Buffer
	res, err := c.DownloadFile(context.Background(), cid, &out, 0)
	if err != nil || !res.Verified || out.String() != "hello world\n" {
		t.Errorf("%+v, %v, %q", res, err, out.String())
	}
}

// An IPFS directory comes as a tar archive, which has no CID to check.
func TestDownloadDirectoryIsNotVerified(t *testing.T) {
	cid := "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
	c := New(fileServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-tar")
		w.Write([]byte("tar bytes"))
	}).URL)
	res, err := c.DownloadFile(context.Background(), cid, io.Discard, 0)
	if err != nil || res.Verified || res.ContentType != "application/x-tar" {
		t.Errorf("%+v, %v", res, err)
	}
}

func TestDownloadFileStall(t *testing.T) {
	release := make(chan struct{})
	srv := fileServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("first bytes"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c := New(srv.URL, WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
	var out bytes.Buffer
	res, err := c.DownloadFile(context.Background(), sha(nil), &out, 0)
	var se *StallError
	if !errors.As(err, &se) || res == nil || res.Written != int64(len("first bytes")) {
		t.Errorf("%+v, %v", res, err)
	}
}

// signalWriter tells got about every write (and has no ReadFrom, which
// io.Copy would use instead of Write).
type signalWriter struct {
	buf bytes.Buffer
	got chan struct{}
}

func (s *signalWriter) Write(p []byte) (int, error) {
	select {
	case s.got <- struct{}{}:
	default:
	}
	return s.buf.Write(p)
}

// The HTTP client's timeout bounds a stall, not a whole transfer: a download
// that takes longer than the timeout but never pauses that long completes.
func TestDownloadFileSlowButMoving(t *testing.T) {
	const chunk, chunks = 8 << 10, 25
	content := randomBytes(chunk * chunks)
	out := &signalWriter{got: make(chan struct{}, 1)}
	srv := fileServer(t, func(w http.ResponseWriter, r *http.Request) {
		for off := 0; off < len(content); off += chunk {
			w.Write(content[off : off+chunk])
			w.(http.Flusher).Flush()
			// Wait until the client has the bytes, then pause well under the
			// timeout: 25 pauses of 100 ms outlast the 2 s timeout.
			select {
			case <-out.got:
			case <-r.Context().Done():
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	c := New(srv.URL, WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	if _, err := c.DownloadFile(context.Background(), sha(content), out, 0); err != nil || !bytes.Equal(out.buf.Bytes(), content) {
		t.Errorf("slow download: %v", err)
	}
}

func TestVerifyFile(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		data, hash string
		ok         bool
	}{
		{"hello world\n", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", true},
		{"hello world\n", "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4", true},
		{"hello world\n", sha([]byte("hello world\n")), true},
		{"hello world", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", false},
		{"hello world", sha([]byte("hello world\n")), false},
	} {
		err := VerifyFile(ctx, strings.NewReader(tc.data), tc.hash)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrHashMismatch)) {
			t.Errorf("%q against %s: %v", tc.data, tc.hash, err)
		}
	}
	if err := VerifyFile(ctx, strings.NewReader(""), "nope"); !errors.Is(err, ErrInvalidFileHash) {
		t.Errorf("invalid hash: %v", err)
	}
}

func TestHeadFile(t *testing.T) {
	content := []byte("some bytes")
	h := sha(content)
	c := New(fileServer(t, serveRange(content, h, nil)).URL)
	head, err := c.HeadFile(context.Background(), h)
	if err != nil || head.Size != int64(len(content)) || head.ETag != `"`+h+`"` || head.ContentType != "application/octet-stream" {
		t.Errorf("%+v, %v", head, err)
	}
	if _, err := c.HeadFile(context.Background(), strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown file: %v", err)
	}
}

func TestFileReadCalls(t *testing.T) {
	h := strings.Repeat("ab", 32)
	msg := strings.Repeat("cd", 32)
	addr := "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	ref := `{"ref":"my-file","owner":"` + addr + `","file_hash":"` + h + `","download_url":"/api/v0/storage/raw/` + h + `","size":42}`
	rec, srv := newRecorder(t, map[string]answer{
		"GET /api/v0/storage/metadata/" + h:                                      {200, `{"file_hash":"` + h + `","type":"file","size":42,"download_url":"/api/v0/storage/raw/` + h + `"}`},
		"GET /api/v0/storage/by-message-hash/" + msg:                             {200, ref},
		"GET /api/v0/storage/by-ref/" + addr + "/my file":                        {200, ref},
		"GET /api/v0/storage/by-ref/" + msg:                                      {200, ref},
		"GET /api/v0/storage/count/" + h:                                         {200, `3`},
		"GET /api/v0/storage/limits.json":                                        {200, `{"storage":{"max_file_size":104857600,"max_unauthenticated_upload_file_size":26214400},"ipfs":{"max_upload_file_size":1073741824,"max_upload_car_size":4294967296,"max_unauthenticated_upload_file_size":26214400}}`},
		"GET /api/v0/addresses/" + addr + "/files":                               {200, `{"address":"` + addr + `","total_size":42,"files":[{"file_hash":"` + h + `","size":42,"type":"file","created":"2026-01-02T03:04:05.678000+00:00","item_hash":"` + msg + `"}],"pagination_page":2,"pagination_total":11,"pagination_per_page":10,"pagination_item":"files"}`},
		"GET /api/v0/addresses/0x0000000000000000000000000000000000000000/files": {404, `{"error":"no files"}`},
	})
	c := New(srv.URL)
	ctx := context.Background()

	md, err := c.FileMetadata(ctx, h)
	if err != nil || md.FileHash != h || md.Type != "file" || md.Size != 42 || md.DownloadURL != "/api/v0/storage/raw/"+h || len(md.Raw) == 0 {
		t.Errorf("metadata %+v, %v", md, err)
	}
	for name, call := range map[string]func() (*FileRef, error){
		"by message hash": func() (*FileRef, error) { return c.FileByMessageHash(ctx, msg) },
		"by owner ref":    func() (*FileRef, error) { return c.FileByRef(ctx, addr, "my file") },
		"by hash ref":     func() (*FileRef, error) { return c.FileByRef(ctx, "", msg) },
	} {
		f, err := call()
		if err != nil || f.Ref != "my-file" || f.Owner != addr || f.FileHash != h || f.Size != 42 {
			t.Errorf("%s: %+v, %v", name, f, err)
		}
	}
	if n, err := c.FilePinCount(ctx, h); err != nil || n != 3 {
		t.Errorf("pin count %d, %v", n, err)
	}
	l, err := c.StorageLimits(ctx)
	if err != nil || l.Storage.MaxFileSize != 100<<20 || l.Storage.MaxUnauthenticatedUploadFileSize != 25<<20 ||
		l.IPFS.MaxUploadFileSize != 1<<30 || l.IPFS.MaxUploadCarSize != 4<<30 || l.IPFS.MaxUnauthenticatedUploadFileSize != 25<<20 {
		t.Errorf("limits %+v, %v", l, err)
	}
	list, err := c.ListFiles(ctx, addr, Page{Number: 2, Size: 10}, Descending)
	if err != nil || list.Address != addr || list.TotalSize != 42 || len(list.Files) != 1 || list.Page != 2 || list.Total != 11 {
		t.Fatalf("list %+v, %v", list, err)
	}
	f := list.Files[0]
	if f.FileHash != h || f.ItemHash != msg || f.Size != 42 || f.Type != "file" || !f.Created.Equal(testClock()) {
		t.Errorf("file %+v", f)
	}
	if _, err := c.ListFiles(ctx, "0x0000000000000000000000000000000000000000", Page{}, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("no files: %v", err)
	}
	var queries []string
	for _, r := range rec.all() {
		if strings.HasSuffix(r.path, "/files") {
			queries = append(queries, r.query)
		}
	}
	if len(queries) != 2 || queries[0] != "pagination=10&page=2&sort_order=-1" || queries[1] != "" {
		t.Errorf("list queries %q", queries)
	}
	for _, bad := range []func() error{
		func() error { _, err := c.FileMetadata(ctx, "x/../y"); return err },
		func() error { _, err := c.FilePinCount(ctx, ""); return err },
		func() error { _, err := c.FileByMessageHash(ctx, "a/b"); return err },
		func() error { _, err := c.FileByRef(ctx, "a/b", "r"); return err },
		func() error { _, err := c.ListFiles(ctx, "", Page{}, 0); return err },
	} {
		if bad() == nil {
			t.Error("bad argument accepted")
		}
	}
}

func TestPinFile(t *testing.T) {
	rec, srv := newRecorder(t, map[string]answer{"POST /api/v0/messages": {200, `{"message_status":"processed","publication_status":{"status":"success","failed":[]}}`}})
	c := New(srv.URL, WithSigner(ethSigner(t)), WithClock(testClock))
	cid := "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
	w, err := c.PinFile(context.Background(), cid, PinOptions{Ref: "site", WriteOptions: WriteOptions{Channel: "PIN", Sync: true}})
	if err != nil || w.Status != message.StatusProcessed {
		t.Fatalf("%+v, %v", w, err)
	}
	reqs := rec.all()
	if len(reqs) != 1 || reqs[0].path != "/api/v0/messages" {
		t.Fatalf("requests %+v", reqs)
	}
	var body struct {
		Sync    bool            `json:"sync"`
		Message message.Message `json:"message"`
	}
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if !body.Sync || body.Message.Type != message.TypeStore || body.Message.Channel != "PIN" {
		t.Errorf("message %+v", body)
	}
	var sc message.StoreContent
	json.Unmarshal([]byte(body.Message.ItemContent), &sc)
	if sc.ItemType != message.ItemIPFS || sc.ItemHash != cid || sc.Ref != "site" {
		t.Errorf("content %s", body.Message.ItemContent)
	}
	if _, err := c.PinFile(context.Background(), "not-a-cid", PinOptions{}); !errors.Is(err, ErrInvalidFileHash) {
		t.Errorf("bad cid: %v", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                string
		start, end, total int64
		ok                bool
	}{
		{"bytes 0-9/10", 0, 9, 10, true},
		{"bytes 5-9/*", 5, 9, -1, true},
		{" bytes 100-199/200 ", 100, 199, 200, true},
		{"bytes 5-9/9", 0, 0, 0, false},
		{"bytes 9-5/10", 0, 0, 0, false},
		{"bytes -1-5/10", 0, 0, 0, false},
		{"bytes */10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		s, e, n, err := parseContentRange(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (s != tc.start || e != tc.end || n != tc.total)) {
			t.Errorf("%q: %d %d %d %v", tc.in, s, e, n, err)
		}
	}
	for in, want := range map[string]int64{"bytes */10": 10, "bytes */0": 0, "bytes */-1": -1, "bytes 0-1/2": -1, "bytes */x": -1} {
		n, err := parseUnsatisfiedRange(in)
		if (want < 0) != (err != nil) || (err == nil && n != want) {
			t.Errorf("%q: %d %v", in, n, err)
		}
	}
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 5-9/*", "bytes */10", "bytes 9223372036854775807-9223372036854775807/*", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, total, err := parseContentRange(s)
		if err == nil && (start < 0 || end < start || (total >= 0 && end >= total)) {
			t.Fatalf("%q gave %d-%d/%d", s, start, end, total)
		}
		if n, err := parseUnsatisfiedRange(s); err == nil && n < 0 {
			t.Fatalf("%q gave %d", s, n)
		}
	})
}
