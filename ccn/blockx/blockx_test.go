package blockx_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/blockx"
	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/unixfs"
)

// TestFetchFile: a file added on A is fetched by B through the files service
// (EnsureFile), for each UnixFS layout; the bytes are identical, and B then
// serves it to C, which is connected to B only.
func TestFetchFile(t *testing.T) {
	cfg := blockx.Config{StallTimeout: 5 * time.Second}
	a, b, c := newNode(t, cfg), newNode(t, cfg), newNode(t, cfg)
	connect(t, b.h, a.h)
	connect(t, c.h, b.h)
	ctx := testCtx(t)
	for i, tc := range []struct {
		name string
		size int
		p    *unixfs.Profile
	}{
		{"cidv0 dag-pb leaves", 3<<20 + 17, nil},
		{"cidv1 raw leaves", 2<<20 + 5, &unixfs.V1_2025},
		{"one block", 1000, nil},
		{"empty", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randBytes(uint64(10+i), tc.size)
			info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", tc.p)
			if err != nil {
				t.Fatal(err)
			}
			row, err := b.svc.EnsureFile(ctx, filestore.EngineIPFS, info.Hash)
			if err != nil {
				t.Fatalf("B ensure: %v", err)
			}
			if row.Hash != info.Hash || row.Size != int64(len(data)) || row.Type != filestore.KindFile {
				t.Errorf("B row = %+v", row)
			}
			if got := readFile(t, b.fs, info.Hash); !bytes.Equal(got, data) {
				t.Fatalf("B has %d bytes, want the %d added on A", len(got), len(data))
			}
			// In order, as bytes (files.Source), from B.
			rc, err := c.ex.Fetch(ctx, filestore.EngineIPFS, info.Hash, int64(len(data)))
			if err != nil {
				t.Fatalf("C fetch: %v", err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("C fetched %d bytes (%v), want the %d added on A", len(got), err, len(data))
			}
		})
	}
}

// TestFetchConcurrent: B and C fetch the same file from A at once.
func TestFetchConcurrent(t *testing.T) {
	cfg := blockx.Config{StallTimeout: 5 * time.Second}
	a, b, c := newNode(t, cfg), newNode(t, cfg), newNode(t, cfg)
	connect(t, b.h, a.h)
	connect(t, c.h, a.h)
	ctx := testCtx(t)
	data := randBytes(3, 5<<20)
	info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, n := range []*node{b, c} {
		go func() {
			_, err := n.svc.EnsureFile(ctx, filestore.EngineIPFS, info.Hash)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("ensure: %v", err)
		}
	}
	for _, n := range []*node{b, c} {
		if got := readFile(t, n.fs, info.Hash); !bytes.Equal(got, data) {
			t.Fatalf("fetched %d bytes, want the %d added on A", len(got), len(data))
		}
	}
}

// TestFetchDirectory: a directory DAG (added on A from a CAR) arrives whole.
func TestFetchDirectory(t *testing.T) {
	cfg := blockx.Config{StallTimeout: 5 * time.Second}
	a, b := newNode(t, cfg), newNode(t, cfg)
	connect(t, b.h, a.h)
	ctx := testCtx(t)
	tr := buildTree(t)
	info, err := a.fs.AddCAR(ctx, bytes.NewReader(tr.car), 0, tr.root.String())
	if err != nil {
		t.Fatal(err)
	}
	row, err := b.svc.EnsureFile(ctx, filestore.EngineIPFS, info.Hash)
	if err != nil {
		t.Fatalf("ensure: %v", err)
	}
	if row.Type != filestore.KindDir || row.Size != info.Size {
		t.Errorf("row %+v, want a directory of %d bytes", row, info.Size)
	}
	got := untar(t, b.fs, info.Hash)
	if len(got) != len(tr.files) {
		t.Errorf("B's directory has %d files, want %d", len(got), len(tr.files))
	}
	for name, want := range tr.files {
		if !bytes.Equal(got[name], want) {
			t.Errorf("%s: %d bytes, want %d", name, len(got[name]), len(want))
		}
	}
	// As bytes, a directory is refused.
	if _, err := b.ex.Fetch(ctx, filestore.EngineIPFS, info.Hash, 1<<30); !errors.Is(err, filestore.ErrIsDir) {
		t.Errorf("Fetch of a directory: %v, want ErrIsDir", err)
	}
}

// TestFetchContent: ipfs message content comes through the DAG path.
func TestFetchContent(t *testing.T) {
	cfg := blockx.Config{StallTimeout: 5 * time.Second}
	a, b := newNode(t, cfg), newNode(t, cfg)
	connect(t, b.h, a.h)
	ctx := testCtx(t)
	content := []byte(`{"address":"0xA","time":1,"content":{"x":1},"type":"test"}`)
	info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(content), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.svc.FetchContent(ctx, message.ItemIPFS, info.Hash)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("fetch content = %q, %v", got, err)
	}
	if !bytes.Equal(readFile(t, b.fs, info.Hash), content) {
		t.Error("content not kept on B")
	}
}

// TestUnavailable: what no peer has, the storage engine, and a bad hash.
func TestUnavailable(t *testing.T) {
	cfg := blockx.Config{StallTimeout: time.Second}
	a, b := newNode(t, cfg), newNode(t, cfg)
	ctx := testCtx(t)
	missing, err := unixfs.SumBytes([]byte("nobody has this"), unixfs.KuboV0)
	if err != nil {
		t.Fatal(err)
	}
	// No peer at all: at once.
	if _, err := b.ex.FetchDAG(ctx, missing.String(), 1<<20); !errors.Is(err, files.ErrUnavailable) {
		t.Errorf("no peers: %v, want ErrUnavailable", err)
	}
	connect(t, b.h, a.h)
	for _, fetch := range []func() error{
		func() error { _, err := b.ex.FetchDAG(ctx, missing.String(), 1<<20); return err },
		func() error {
			_, err := b.ex.Fetch(ctx, filestore.EngineIPFS, missing.String(), 1<<20)
			return err
		},
		func() error {
			_, err := b.svc.EnsureFile(ctx, filestore.EngineIPFS, missing.String())
			if !errors.Is(err, pipeline.ErrFileUnavailable) {
				return fmt.Errorf("not a pipeline unavailable error: %w", err)
			}
			return err
		},
		func() error {
			_, err := b.ex.Fetch(ctx, filestore.EngineStorage, message.HashContent([]byte("x")), 1<<20)
			return err
		},
	} {
		if err := fetch(); !errors.Is(err, files.ErrUnavailable) {
			t.Errorf("fetch: %v, want ErrUnavailable", err)
		}
	}
	for _, h := range []string{"", "not-a-cid", "../etc"} {
		if _, err := b.ex.FetchDAG(ctx, h, 1<<20); !errors.Is(err, filestore.ErrInvalidHash) {
			t.Errorf("fetch %q: %v, want ErrInvalidHash", h, err)
		}
	}
}

// TestLimits: the byte limit (declared by the root or counted), MaxBlocks
// and MaxBlockSize end a fetch with an error, and nothing is kept.
func TestLimits(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, blockx.Config{})
	data := randBytes(4, 1<<20+1)
	info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := buildTree(t)
	dir, err := a.fs.AddCAR(ctx, bytes.NewReader(tr.car), 0, tr.root.String())
	if err != nil {
		t.Fatal(err)
	}
	// drain reads a stream to its end.
	drain := func(rc io.ReadCloser, err error) error {
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}
	for _, tc := range []struct {
		name  string
		cfg   blockx.Config
		fetch func(ex *blockx.Exchange) error
		want  error
	}{
		{"file declares more than the limit", blockx.Config{}, func(ex *blockx.Exchange) error {
			return drain(ex.FetchDAG(ctx, info.Hash, 1<<20))
		}, filestore.ErrTooLarge},
		{"bytes: file over the limit", blockx.Config{}, func(ex *blockx.Exchange) error {
			return drain(ex.Fetch(ctx, filestore.EngineIPFS, info.Hash, 1<<20))
		}, filestore.ErrTooLarge},
		{"directory blocks over the limit", blockx.Config{}, func(ex *blockx.Exchange) error {
			return drain(ex.FetchDAG(ctx, dir.Hash, 500<<10))
		}, filestore.ErrTooLarge},
		{"too many blocks", blockx.Config{MaxBlocks: 3}, func(ex *blockx.Exchange) error {
			return drain(ex.FetchDAG(ctx, info.Hash, 0))
		}, blockx.ErrLimit},
		{"block too large", blockx.Config{MaxBlockSize: 100 << 10}, func(ex *blockx.Exchange) error {
			return drain(ex.FetchDAG(ctx, info.Hash, 0))
		}, blockx.ErrLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.StallTimeout = 5 * time.Second
			b := newNode(t, tc.cfg)
			connect(t, b.h, a.h)
			if err := tc.fetch(b.ex); !errors.Is(err, tc.want) {
				t.Errorf("fetch: %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("service limit", func(t *testing.T) {
		b := newNode(t, blockx.Config{StallTimeout: 5 * time.Second})
		connect(t, b.h, a.h)
		svc, err := files.New(files.Deps{Files: b.fs, DB: newDB(t), Sources: []files.Source{b.ex}}, files.Config{MaxFetchSize: 900 << 10})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		for _, h := range []string{info.Hash, dir.Hash} {
			if _, err := svc.EnsureFile(ctx, filestore.EngineIPFS, h); !errors.Is(err, filestore.ErrTooLarge) {
				t.Errorf("ensure %s over MaxFetchSize: %v, want ErrTooLarge", h, err)
			}
			if _, err := b.fs.Stat(ctx, h); !errors.Is(err, filestore.ErrNotFound) {
				t.Errorf("%s kept after refusal: %v", h, err)
			}
		}
	})
}

// TestCloseStopsEverything: a fetch stalled on a block nobody has and a
// stream nobody reads end when the exchange closes, and bitswap's goroutines
// go with it.
func TestCloseStopsEverything(t *testing.T) {
	ctx := testCtx(t)
	a := newNode(t, blockx.Config{})
	data := randBytes(5, 3<<20)
	info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newNode(t, blockx.Config{StallTimeout: time.Minute, Window: 1})
	connect(t, b.h, a.h)
	// A stream that is never read: its walk blocks writing.
	rc, err := b.ex.FetchDAG(ctx, info.Hash, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// A fetch that waits for a root nobody has.
	missing, _ := unixfs.SumBytes([]byte("nobody has this either"), unixfs.KuboV0)
	stalled := make(chan error, 1)
	go func() {
		_, err := b.ex.FetchDAG(ctx, missing.String(), 0)
		stalled <- err
	}()
	// Close while both are in progress (the stalled one may not have
	// started yet: either way it must end).
	if err := b.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.ex.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stalled:
		if err == nil {
			t.Error("a fetch of a missing root succeeded")
		}
	case <-ctx.Done():
		t.Fatal("fetch still waiting after Close")
	}
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Error("the unread stream completed after Close")
	}
	if _, err := b.ex.FetchDAG(ctx, info.Hash, 0); !errors.Is(err, blockx.ErrClosed) {
		t.Errorf("fetch after Close: %v, want ErrClosed", err)
	}
	a.svc.Close()
	a.ex.Close()
	if g := leaked(t, "boxo/bitswap", "go-aleph/ccn/blockx."); g != "" {
		t.Errorf("goroutines left after Close:\n%s", g)
	}
}

// TestStreamClose: closing a stream half read ends its fetch.
func TestStreamClose(t *testing.T) {
	ctx := testCtx(t)
	a, b := newNode(t, blockx.Config{}), newNode(t, blockx.Config{StallTimeout: 30 * time.Second})
	connect(t, b.h, a.h)
	data := randBytes(6, 4<<20)
	info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, fetch := range []func() (io.ReadCloser, error){
		func() (io.ReadCloser, error) { return b.ex.FetchDAG(ctx, info.Hash, 0) },
		func() (io.ReadCloser, error) { return b.ex.Fetch(ctx, filestore.EngineIPFS, info.Hash, 0) },
	} {
		rc, err := fetch()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 300<<10)); err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil { // returns once the fetch has ended
			t.Fatal(err)
		}
		if _, err := rc.Read(make([]byte, 1)); err == nil {
			t.Error("read after close succeeded")
		}
	}
	if g := leaked(t, "go-aleph/ccn/blockx."); g != "" {
		t.Errorf("fetch goroutines left after closing the streams:\n%s", g)
	}
}
