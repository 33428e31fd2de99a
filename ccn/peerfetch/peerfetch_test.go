package peerfetch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/ccn/peerfetch"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store/sqlstore"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startNode runs a real core channel node (API over real stores), alone:
// these tests are about HTTP, not gossip.
func startNode(t testing.TB) string {
	t.Helper()
	return nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.P2P.Enabled = false }))
}

// upload stores data on a node through its API and returns the hash.
func upload(t testing.TB, base string, engine filestore.Engine, data []byte) string {
	t.Helper()
	var req *http.Request
	var err error
	if engine == filestore.EngineStorage {
		req, err = http.NewRequestWithContext(testCtx(t), http.MethodPost, base+"/api/v0/storage/add_file", bytes.NewReader(data))
		if err == nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
	} else {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		part, _ := mw.CreateFormFile("file", "data.bin")
		part.Write(data)
		mw.Close()
		req, err = http.NewRequestWithContext(testCtx(t), http.MethodPost, base+"/api/v0/ipfs/add_file", &body)
		if err == nil {
			req.Header.Set("Content-Type", mw.FormDataContentType())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Hash string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Hash == "" {
		t.Fatalf("upload %s: http %d, %v", engine, resp.StatusCode, err)
	}
	return out.Hash
}

// service is a files service over fresh stores that fetches from src.
func service(t testing.TB, cfg files.Config, src ...files.Source) (*files.Service, *filestore.Store) {
	t.Helper()
	fs, err := filestore.Open(t.TempDir(), filestore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	db, err := sqlstore.Open(testCtx(t), filepath.Join(t.TempDir(), "ccn.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := files.New(files.Deps{Files: fs, DB: db, Sources: src}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc, fs
}

func readLocal(t testing.TB, fs *filestore.Store, hash string) []byte {
	t.Helper()
	f, err := fs.Open(testCtx(t), hash)
	if err != nil {
		t.Fatalf("open %s: %v", hash, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func peers(urls ...string) func() []string { return func() []string { return urls } }

// counter is an HTTP server that counts its requests by path.
type counter struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newServer(t testing.TB, h http.HandlerFunc) *counter {
	t.Helper()
	c := &counter{hits: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[r.URL.Path]++
		c.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.hits {
		n += v
	}
	return n
}

// TestFromNode: files stored on node A, both engines, are fetched by a
// service whose peer is A; message content too.
func TestFromNode(t *testing.T) {
	a := startNode(t)
	ctx := testCtx(t)
	big := bytes.Repeat([]byte("a file on node A "), 200_000) // 3.4 MB: several ipfs chunks
	content := []byte(`{"address":"0xA","time":1,"content":{"x":1},"type":"test"}`)
	hs := upload(t, a, filestore.EngineStorage, big)
	hi := upload(t, a, filestore.EngineIPFS, big)
	hc := upload(t, a, filestore.EngineStorage, content)

	svc, fs := service(t, files.Config{}, peerfetch.New(peers(a), nil, nil))
	for _, tc := range []struct {
		engine filestore.Engine
		hash   string
	}{{filestore.EngineStorage, hs}, {filestore.EngineIPFS, hi}} {
		row, err := svc.EnsureFile(ctx, tc.engine, tc.hash)
		if err != nil {
			t.Fatalf("ensure %s: %v", tc.engine, err)
		}
		if row.Size != int64(len(big)) {
			t.Errorf("%s row %+v", tc.engine, row)
		}
		if got := readLocal(t, fs, tc.hash); !bytes.Equal(got, big) {
			t.Fatalf("%s: fetched %d bytes, want the %d stored on A", tc.engine, len(got), len(big))
		}
	}
	got, err := svc.FetchContent(ctx, message.ItemStorage, hc)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("fetch content = %q, %v", got, err)
	}

	// The source alone (no re-hashing): the first peer that has it.
	src := peerfetch.New(peers(a), nil, nil)
	rc, err := src.Fetch(ctx, filestore.EngineStorage, hs, int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(b, big) {
		t.Fatalf("Fetch read %d bytes, %v", len(b), err)
	}
}

// TestPeerOrder: a peer that lacks the file (a real node's 404) or lies (the
// hash check refuses its bytes) is passed over for the next.
func TestPeerOrder(t *testing.T) {
	a, empty := startNode(t), startNode(t)
	ctx := testCtx(t)
	data := []byte("the real bytes, on A only")
	hs := upload(t, a, filestore.EngineStorage, data)
	hi := upload(t, a, filestore.EngineIPFS, data)
	liar := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("forged bytes"))
	})
	// A liar on the JSON endpoint only: raw fails with 500.
	jsonLiar := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/raw/") {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		h := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		json.NewEncoder(w).Encode(map[string]string{"status": "success", "hash": h, "engine": "storage", "content": "Zm9yZ2Vk\n"})
	})
	src := peerfetch.New(peers(empty, liar.srv.URL, jsonLiar.srv.URL, a), nil, nil, peerfetch.WithoutShuffle())
	svc, fs := service(t, files.Config{}, src)
	for _, tc := range []struct {
		engine filestore.Engine
		hash   string
	}{{filestore.EngineStorage, hs}, {filestore.EngineIPFS, hi}} {
		if _, err := svc.EnsureFile(ctx, tc.engine, tc.hash); err != nil {
			t.Fatalf("ensure %s: %v", tc.engine, err)
		}
		if got := readLocal(t, fs, tc.hash); !bytes.Equal(got, data) {
			t.Fatalf("%s: kept %q", tc.engine, got)
		}
	}
	if liar.total() != 2 || jsonLiar.total() != 4 {
		t.Errorf("liar asked %d times, JSON liar %d; want 2 and 4 (raw, then JSON)", liar.total(), jsonLiar.total())
	}
	if _, err := fs.Stat(ctx, message.HashContent([]byte("forged bytes"))); !errors.Is(err, filestore.ErrNotFound) {
		t.Error("forged bytes kept")
	}

	// Only liars: unavailable, with the hash mismatch among the causes.
	svc2, _ := service(t, files.Config{}, peerfetch.New(peers(liar.srv.URL, jsonLiar.srv.URL), nil, nil))
	_, err := svc2.EnsureFile(ctx, filestore.EngineStorage, hs)
	if !errors.Is(err, pipeline.ErrFileUnavailable) || !errors.Is(err, filestore.ErrHashMismatch) {
		t.Errorf("ensure from liars: %v", err)
	}
}

// TestJSONFallback: a peer whose raw route fails (an old node) is read
// through GET /api/v0/storage/{hash}, the real node's MIME base64 JSON.
func TestJSONFallback(t *testing.T) {
	a := startNode(t)
	ctx := testCtx(t)
	data := bytes.Repeat([]byte{0, 1, 2, 250, 255, '\n'}, 50_000) // 300 kB: many MIME lines
	h := upload(t, a, filestore.EngineStorage, data)
	target, err := url.Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	old := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/raw/") {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	svc, fs := service(t, files.Config{}, peerfetch.New(peers(old.srv.URL), nil, nil))
	if _, err := svc.EnsureFile(ctx, filestore.EngineStorage, h); err != nil {
		t.Fatal(err)
	}
	if got := readLocal(t, fs, h); !bytes.Equal(got, data) {
		t.Fatalf("kept %d bytes, want %d", len(got), len(data))
	}
	if old.hits["/api/v0/storage/"+h] != 1 {
		t.Errorf("JSON endpoint asked %d times, want once", old.hits["/api/v0/storage/"+h])
	}
}

// TestRefused: oversize, directories, bad hashes, peers down or silent,
// and our own URL.
func TestRefused(t *testing.T) {
	a := startNode(t)
	ctx := testCtx(t)
	data := bytes.Repeat([]byte("x"), 10_000)
	h := upload(t, a, filestore.EngineStorage, data)

	t.Run("oversize", func(t *testing.T) {
		svc, fs := service(t, files.Config{MaxFetchSize: 5000}, peerfetch.New(peers(a), nil, nil))
		if _, err := svc.EnsureFile(ctx, filestore.EngineStorage, h); !errors.Is(err, filestore.ErrTooLarge) {
			t.Errorf("ensure over MaxFetchSize: %v", err)
		}
		if _, err := fs.Stat(ctx, h); !errors.Is(err, filestore.ErrNotFound) {
			t.Error("oversize file kept")
		}
		if _, err := peerfetch.New(peers(a), nil, nil).Fetch(ctx, filestore.EngineStorage, h, 5000); !errors.Is(err, filestore.ErrTooLarge) {
			t.Errorf("Fetch over the limit: %v", err)
		}
		// No Content-Length: the body is cut one byte over the limit.
		chunked := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			for range 10 {
				w.Write(data[:1000])
				w.(http.Flusher).Flush()
			}
		})
		rc, err := peerfetch.New(peers(chunked.srv.URL), nil, nil).Fetch(ctx, filestore.EngineStorage, h, 5000)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		if n != 5001 {
			t.Errorf("read %d bytes of a chunked body, want 5001 (the limit and one)", n)
		}
	})

	t.Run("directory", func(t *testing.T) {
		tarPeer := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-tar")
			w.Write(make([]byte, 1024))
		})
		cid := "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn" // the empty directory
		if _, err := peerfetch.New(peers(tarPeer.srv.URL), nil, nil).Fetch(ctx, filestore.EngineIPFS, cid, 1<<20); !errors.Is(err, filestore.ErrIsDir) {
			t.Errorf("Fetch of a tar: %v, want ErrIsDir", err)
		}
	})

	t.Run("bad hash", func(t *testing.T) {
		c := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
		src := peerfetch.New(peers(c.srv.URL), nil, nil)
		for _, tc := range []struct {
			engine filestore.Engine
			hash   string
		}{{filestore.EngineStorage, "../../api/v0/messages"}, {filestore.EngineStorage, "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"}, {filestore.EngineIPFS, "not-a-cid"}, {"other", h}} {
			if _, err := src.Fetch(ctx, tc.engine, tc.hash, 1<<20); err == nil {
				t.Errorf("Fetch %s %q succeeded", tc.engine, tc.hash)
			}
		}
		if c.total() != 0 {
			t.Errorf("%d requests for bad hashes", c.total())
		}
	})

	t.Run("all down", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		for _, urls := range [][]string{nil, {down.URL}, {down.URL, "ftp://example.com", "not a url"}} {
			src := peerfetch.New(peers(urls...), nil, nil)
			if _, err := src.Fetch(ctx, filestore.EngineStorage, h, 1<<20); !errors.Is(err, files.ErrUnavailable) {
				t.Errorf("peers %q: %v, want ErrUnavailable", urls, err)
			}
			svc, _ := service(t, files.Config{}, src)
			if _, err := svc.EnsureFile(ctx, filestore.EngineStorage, h); !errors.Is(err, pipeline.ErrFileUnavailable) {
				t.Errorf("ensure with peers %q: %v", urls, err)
			}
		}
	})

	t.Run("silent peers", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		noHeaders := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		stalls := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Write(data[:100])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		src := peerfetch.New(peers(noHeaders.srv.URL), nil, nil, peerfetch.WithTimeouts(200*time.Millisecond, 200*time.Millisecond))
		if _, err := src.Fetch(ctx, filestore.EngineStorage, h, 1<<20); !errors.Is(err, files.ErrUnavailable) {
			t.Errorf("peer that never answers: %v, want ErrUnavailable", err)
		}
		src = peerfetch.New(peers(stalls.srv.URL), nil, nil, peerfetch.WithTimeouts(200*time.Millisecond, 200*time.Millisecond))
		rc, err := src.Fetch(ctx, filestore.EngineStorage, h, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err == nil || n != 100 {
			t.Errorf("stalled body: %d bytes, %v; want 100 and an error", n, err)
		}
	})

	t.Run("self skipped", func(t *testing.T) {
		src := peerfetch.New(peers(a, a+"/"), nil, nil)
		src.SetSelf(a + "/")
		if _, err := src.Fetch(ctx, filestore.EngineStorage, h, 1<<20); !errors.Is(err, files.ErrUnavailable) {
			t.Errorf("only ourselves as a peer: %v, want ErrUnavailable", err)
		}
		if got := src.Sources(ctx, filestore.EngineStorage, h); len(got) != 0 {
			t.Errorf("Sources = %d, want none", len(got))
		}
	})
}

// TestMaxPeers: at most that many peers are asked, each once.
func TestMaxPeers(t *testing.T) {
	ctx := testCtx(t)
	c := newServer(t, http.NotFoundHandler().ServeHTTP)
	var urls []string
	for i := range 10 {
		urls = append(urls, c.srv.URL+"/p"+string(rune('0'+i)), c.srv.URL+"/p"+string(rune('0'+i))+"/")
	}
	src := peerfetch.New(peers(urls...), nil, nil, peerfetch.WithMaxPeers(3))
	if got := src.Sources(ctx, filestore.EngineStorage, strings.Repeat("a", 64)); len(got) != 3 {
		t.Errorf("%d sources, want 3", len(got))
	}
	if _, err := src.Fetch(ctx, filestore.EngineStorage, strings.Repeat("a", 64), 10); !errors.Is(err, files.ErrUnavailable) {
		t.Errorf("fetch: %v", err)
	}
	if c.total() != 3 {
		t.Errorf("%d requests, want 3 (one per peer, 404 ends each)", c.total())
	}
}
