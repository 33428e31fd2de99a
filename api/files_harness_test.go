package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mdtest "github.com/ipfs/boxo/ipld/merkledag/test"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	cid "github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/unixfs"
)

// fileNode is a real API with a real file service over a real file store in
// t.TempDir(), a real pipeline that makes STORE files present through the same
// service, and a SQLite or PostgreSQL store.
type fileNode struct {
	*node
	fs  *filestore.Store
	svc *files.Service
	// done receives the path of every request the API has finished handling.
	done chan string
}

// smallLimits keep limit tests fast.
var smallLimits = api.Config{MaxUnauthenticatedUpload: 1000, MaxStorageFile: 3000, MaxIPFSFile: 3000, MaxCARFile: 6000}

func newFileNode(t testing.TB, backend string, cfg api.Config) *fileNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := openStore(t, ctx, backend)
	fs, err := filestore.Open(filepath.Join(t.TempDir(), "files"), filestore.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open file store: %v", err)
	}
	svc, err := files.New(files.Deps{Files: fs, DB: st}, files.Config{})
	if err != nil {
		t.Fatalf("new file service: %v", err)
	}
	bus := events.NewBus()
	verifier := all.NewRegistry()
	pl, err := pipeline.New(pipeline.Deps{Store: st, Verifier: verifier, Bus: bus, Fetcher: svc, Files: svc},
		pipeline.Config{SyncTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("new pipeline: %v", err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- pl.Run(runCtx) }()

	n := &fileNode{
		node: &node{store: st, bus: bus, reg: prometheus.NewRegistry(), errLog: &errorLog{}},
		fs:   fs, svc: svc, done: make(chan string, 256),
	}
	h := api.New(api.Deps{
		Submitter: pl, Store: st, Bus: bus, Metrics: n.reg, Version: "go-aleph-test",
		Log: slog.New(n.errLog), Files: svc, Verifier: verifier,
	}, cfg)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			select {
			case n.done <- r.URL.Path:
			default:
			}
		}()
		h.ServeHTTP(w, r)
	}))
	serveCtx, stopServe := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(net.Listener) context.Context { return serveCtx }
	srv.Start()
	n.url = srv.URL
	t.Cleanup(func() {
		stopServe()
		srv.Close()
		stopRun()
		if err := <-runDone; err != nil {
			t.Errorf("pipeline run: %v", err)
		}
		if err := fs.Close(); err != nil {
			t.Errorf("close file store: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return n
}

// notKept fails the test if the node knows the file or keeps its bytes.
func (n *fileNode) notKept(t testing.TB, hash string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f, err := n.store.GetFile(ctx, hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("file %s has a row (%+v, %v), want none", hash, f, err)
	}
	if info, err := n.fs.Stat(ctx, hash); !errors.Is(err, filestore.ErrNotFound) {
		t.Errorf("file %s is in the file store (%+v, %v), want nothing", hash, info, err)
	}
}

// kept fails the test unless the node has the file row and bytes.
func (n *fileNode) kept(t testing.TB, hash string) *store.File {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := n.store.GetFile(ctx, hash)
	if err != nil {
		t.Fatalf("file %s: no row: %v", hash, err)
	}
	if _, err := n.fs.Stat(ctx, hash); err != nil {
		t.Fatalf("file %s: not in the file store: %v", hash, err)
	}
	return f
}

// waitDone waits until the API has finished a request to path.
func (n *fileNode) waitDone(t testing.TB, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		select {
		case p := <-n.done:
			if p == path {
				return
			}
		case <-ctx.Done():
			t.Fatalf("the API did not finish a request to %s", path)
		}
	}
}

// drainDone forgets the requests finished so far.
func (n *fileNode) drainDone() {
	for {
		select {
		case <-n.done:
		default:
			return
		}
	}
}

// mpart is one part of a multipart body. No filename and no content type
// make a plain form field, as Node's FormData sends a Buffer.
type mpart struct {
	name, filename, contentType string
	body                        []byte
}

// multipartBody builds a multipart/form-data body.
func multipartBody(t testing.TB, parts ...mpart) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf("form-data; name=%q", p.name)
		if p.filename != "" {
			cd += fmt.Sprintf("; filename=%q", p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// metadataJSON builds the metadata part: {"message": envelope, "sync": sync}.
// withContent adds the decoded content to the envelope, as the Python SDK
// sends it; the TypeScript SDK sends the broadcastable envelope without it.
func metadataJSON(t testing.TB, m *message.Message, sync, withContent bool) []byte {
	t.Helper()
	env := envelope(t, m)
	if withContent {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(env, &fields); err != nil {
			t.Fatal(err)
		}
		fields["content"] = json.RawMessage(m.ItemContent)
		var err error
		if env, err = json.Marshal(fields); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(map[string]any{"message": env, "sync": sync})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storeMsg builds a signed STORE of a file.
func (n *fileNode) storeMsg(t testing.TB, s message.Signer, itemType message.ItemType, hash, ref string) *message.Built {
	t.Helper()
	return n.build(t, s, message.TypeStore, &message.StoreContent{ItemType: itemType, ItemHash: hash, Ref: ref}, "TEST")
}

// post sends a body and decodes a JSON answer (nil map if it is not an object).
func (n *fileNode) post(t testing.TB, path, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	code, raw, h := n.raw(t, http.MethodPost, path, contentType, body)
	if ct := h.Get("Content-Type"); !bytes.HasPrefix([]byte(ct), []byte("application/json")) {
		t.Errorf("POST %s: Content-Type %q, body %s", path, ct, clipBody(raw))
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return code, m
}

// postStream sends a body of unknown length (chunked).
func (n *fileNode) postStream(t testing.TB, path, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url+path, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// get sends a GET with extra headers.
func (n *fileNode) get(t testing.TB, method, path string, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// cidv0 is the CID `ipfs add` gives b.
func cidv0(t testing.TB, b []byte) string {
	t.Helper()
	c, err := unixfs.SumBytes(b, unixfs.KuboV0)
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// pattern returns n bytes, byte i = i % 251 (testdata/cids.json's generator).
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// binary returns n bytes that are not valid UTF-8 and hold CR, LF and NUL,
// which a text field would mangle.
func binary(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	if n > 3 {
		b[0], b[1], b[2], b[3] = 0xff, '\r', '\n', 0
	}
	return b
}

// buildDirCAR builds a UnixFS directory DAG of files (paths with '/' make
// subdirectories; files use kubo's default profile) and returns its root CID
// and a CARv1 of every block, root first.
func buildDirCAR(t testing.TB, tree map[string][]byte) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	dag := mdtest.Mock()
	dirs := map[string]uio.Directory{}
	var dir func(p string) uio.Directory
	dir = func(p string) uio.Directory {
		if d, ok := dirs[p]; ok {
			return d
		}
		d, err := uio.NewDirectory(dag)
		if err != nil {
			t.Fatal(err)
		}
		dirs[p] = d
		if p != "" {
			dir(path.Dir(strings.TrimSuffix("/"+p, "/"))[1:])
		}
		return d
	}
	dir("")
	for p, data := range tree {
		nd, err := unixfs.Import(ctx, bytes.NewReader(data), unixfs.KuboV0, dag)
		if err != nil {
			t.Fatal(err)
		}
		parent := path.Dir(p)
		if parent == "." {
			parent = ""
		}
		if err := dir(parent).AddChild(ctx, path.Base(p), nd); err != nil {
			t.Fatal(err)
		}
	}
	// Attach subdirectories deepest first.
	paths := make([]string, 0, len(dirs))
	for p := range dirs {
		if p != "" {
			paths = append(paths, p)
		}
	}
	slices.SortFunc(paths, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, p := range paths {
		nd, err := dirs[p].GetNode()
		if err != nil {
			t.Fatal(err)
		}
		if err := dag.Add(ctx, nd); err != nil {
			t.Fatal(err)
		}
		parent := path.Dir(p)
		if parent == "." {
			parent = ""
		}
		if err := dirs[parent].AddChild(ctx, path.Base(p), nd); err != nil {
			t.Fatal(err)
		}
	}
	root, err := dirs[""].GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dag.Add(ctx, root); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := carstorage.NewWritable(&buf, []cid.Cid{root.Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[cid.Cid]bool{}
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if seen[c] {
			return
		}
		seen[c] = true
		nd, err := dag.Get(ctx, c)
		if err != nil {
			t.Fatalf("get %s: %v", c, err)
		}
		if err := w.Put(ctx, c.KeyString(), nd.RawData()); err != nil {
			t.Fatal(err)
		}
		for _, l := range nd.Links() {
			walk(l.Cid)
		}
	}
	walk(root.Cid())
	if err := w.Finalize(); err != nil {
		t.Fatal(err)
	}
	return root.Cid().String(), buf.Bytes()
}
