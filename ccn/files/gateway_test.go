package files

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	bstore "github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	carbs "github.com/ipld/go-car/v2/blockstore"

	"github.com/go-aleph/go-aleph/unixfs"
)

// dirCAR builds a UnixFS directory {hello.txt, sub/a.txt} and returns it as a
// CAR file's bytes with its root.
func dirCAR(t *testing.T) ([]byte, string) {
	t.Helper()
	ctx := context.Background()
	mem := bstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dag := merkledag.NewDAGService(blockservice.New(mem, nil))
	file := func(s string) *merkledag.ProtoNode {
		n, err := unixfs.Import(ctx, strings.NewReader(s), unixfs.KuboV0, dag)
		if err != nil {
			t.Fatal(err)
		}
		return n.(*merkledag.ProtoNode)
	}
	dir := func(children map[string]*merkledag.ProtoNode) *merkledag.ProtoNode {
		d, err := uio.NewDirectory(dag)
		if err != nil {
			t.Fatal(err)
		}
		for name, n := range children {
			if err := d.AddChild(ctx, name, n); err != nil {
				t.Fatal(err)
			}
		}
		n, err := d.GetNode()
		if err != nil {
			t.Fatal(err)
		}
		if err := dag.Add(ctx, n); err != nil {
			t.Fatal(err)
		}
		return n.(*merkledag.ProtoNode)
	}
	root := dir(map[string]*merkledag.ProtoNode{
		"hello.txt": file("hello from a directory"),
		"sub":       dir(map[string]*merkledag.ProtoNode{"a.txt": file("nested")}),
	})
	path := filepath.Join(t.TempDir(), "dir.car")
	rw, err := carbs.OpenReadWrite(path, []cid.Cid{root.Cid()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := mem.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		b, err := mem.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := rw.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Finalize(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, root.Cid().String()
}

// get requests path (sent as is) from the gateway; the request ends within
// ten seconds, so a lookup that hangs fails the test.
func get(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // no cleaning, no re-encoding
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp, b
}

func TestGateway(t *testing.T) {
	e := newEnv(t, envOpts{cfg: Config{GracePeriod: time.Hour}})
	data := []byte(strings.Repeat("0123456789", 50_000)) // 500 kB, two chunks
	fileCID := cidOf(t, data)
	if _, err := e.svc.AddIPFS(e.ctx, bytes.NewReader(data), 0, ""); err != nil {
		t.Fatal(err)
	}
	car, dirCID := dirCAR(t)
	row, err := e.svc.AddCAR(e.ctx, bytes.NewReader(car), 0, dirCID)
	if err != nil {
		t.Fatalf("add car: %v", err)
	}
	if row.Hash != dirCID || row.Type != "dir" {
		t.Errorf("dir row = %+v", row)
	}
	srv := httptest.NewServer(e.svc.Gateway())
	t.Cleanup(srv.Close)

	t.Run("file", func(t *testing.T) {
		resp, body := get(t, srv, http.MethodGet, "/ipfs/"+fileCID)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("Cache-Control = %q", cc)
		}
		etag := resp.Header.Get("Etag")
		if !strings.Contains(etag, fileCID) {
			t.Errorf("ETag = %q", etag)
		}
		resp, _ = get(t, srv, http.MethodGet, "/ipfs/"+fileCID, "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match: status %d", resp.StatusCode)
		}
		resp, body = get(t, srv, http.MethodGet, "/ipfs/"+fileCID, "Range", "bytes=262140-262149")
		if resp.StatusCode != http.StatusPartialContent || string(body) != string(data[262140:262150]) {
			t.Errorf("range across chunks: status %d, %q", resp.StatusCode, body)
		}
		resp, body = get(t, srv, http.MethodHead, "/ipfs/"+fileCID)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != int64(len(data)) {
			t.Errorf("HEAD: status %d, length %d, %d body bytes", resp.StatusCode, resp.ContentLength, len(body))
		}
	})

	t.Run("directory", func(t *testing.T) {
		resp, body := get(t, srv, http.MethodGet, "/ipfs/"+dirCID+"/")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "hello.txt") || !strings.Contains(string(body), "sub") {
			t.Errorf("listing: status %d: %.300s", resp.StatusCode, body)
		}
		for path, want := range map[string]string{"/hello.txt": "hello from a directory", "/sub/a.txt": "nested"} {
			resp, body := get(t, srv, http.MethodGet, "/ipfs/"+dirCID+path)
			if resp.StatusCode != http.StatusOK || string(body) != want {
				t.Errorf("%s: status %d, %q", path, resp.StatusCode, body)
			}
		}
		var tb bytes.Buffer
		if err := e.svc.WriteTar(e.ctx, dirCID, &tb); err != nil {
			t.Fatalf("write tar: %v", err)
		}
		tr := tar.NewReader(&tb)
		var names []string
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("tar: %v", err)
			}
			names = append(names, h.Name)
		}
		if got := strings.Join(names, ","); !strings.Contains(got, "hello.txt") || !strings.Contains(got, "sub/a.txt") {
			t.Errorf("tar entries %s", got)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		cases := []struct {
			name, method, path string
			want               []int
		}{
			{"invalid cid", http.MethodGet, "/ipfs/not-a-cid", []int{http.StatusBadRequest}},
			{"invalid cid with a path", http.MethodGet, "/ipfs/Qm!!!/x", []int{http.StatusBadRequest}},
			{"missing block, offline", http.MethodGet, "/ipfs/" + cidOf(t, []byte("not here")), []int{http.StatusNotFound}},
			{"missing path in a directory", http.MethodGet, "/ipfs/" + dirCID + "/nope.txt", []int{http.StatusNotFound}},
			{"path in a file", http.MethodGet, "/ipfs/" + fileCID + "/x", []int{http.StatusNotFound, http.StatusBadRequest}},
			{"ipns", http.MethodGet, "/ipns/example.com", []int{http.StatusNotFound}},
			{"outside /ipfs/", http.MethodGet, "/etc/passwd", []int{http.StatusNotFound}},
			{"post", http.MethodPost, "/ipfs/" + fileCID, []int{http.StatusMethodNotAllowed}},
			{"delete", http.MethodDelete, "/ipfs/" + fileCID, []int{http.StatusMethodNotAllowed}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				resp, body := get(t, srv, c.method, c.path)
				ok := false
				for _, s := range c.want {
					ok = ok || resp.StatusCode == s
				}
				if !ok {
					t.Errorf("status %d, want one of %v: %.200s", resp.StatusCode, c.want, body)
				}
			})
		}
	})

	t.Run("path traversal", func(t *testing.T) {
		for _, p := range []string{
			"/ipfs/" + dirCID + "/../../../../etc/passwd",
			"/ipfs/" + dirCID + "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
			"/ipfs/" + dirCID + "/..%2f..%2f..%2fetc%2fpasswd",
			"/ipfs/" + dirCID + "/sub/..%5c..%5c..%5cetc%5cpasswd",
			"/ipfs/../../../../etc/passwd",
			"/ipfs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
			"/ipfs/" + fileCID + "/../" + dirCID + "/../../etc/passwd",
		} {
			resp, body := get(t, srv, http.MethodGet, p)
			if resp.StatusCode/100 != 4 || bytes.Contains(body, []byte("root:")) {
				t.Errorf("%s: status %d: %.200s", p, resp.StatusCode, body)
			}
		}
	})

	t.Run("collected files are not served", func(t *testing.T) {
		e.clock.Advance(2 * time.Hour)
		if st := e.gc(); st.FilesDeleted != 2 || st.Sweep.BlocksRemoved == 0 {
			t.Fatalf("gc: %+v", st)
		}
		for _, p := range []string{"/ipfs/" + fileCID, "/ipfs/" + dirCID + "/hello.txt"} {
			if resp, _ := get(t, srv, http.MethodGet, p); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s after gc: status %d", p, resp.StatusCode)
			}
		}
	})
}
