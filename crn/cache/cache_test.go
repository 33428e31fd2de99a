package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/unixfs"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, cfg Config) *Cache {
	t.Helper()
	c, err := Open(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// file is random content and its sha256 key.
type file struct {
	key  string
	data []byte
}

func newFile(t *testing.T, n int) file {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	s := sha256.Sum256(b)
	return file{key: hex.EncodeToString(s[:]), data: b}
}

// serve returns a fetch function that writes data and counts its calls.
func serve(data []byte, calls *atomic.Int64) FetchFunc {
	return func(ctx context.Context, key string, w io.Writer) error {
		if calls != nil {
			calls.Add(1)
		}
		_, err := w.Write(data)
		return err
	}
}

func failFetch(t *testing.T) FetchFunc {
	return func(context.Context, string, io.Writer) error {
		t.Error("unexpected fetch")
		return errors.New("unexpected fetch")
	}
}

func readHandle(t *testing.T, h *Handle) []byte {
	t.Helper()
	b, err := os.ReadFile(h.Path())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tmpEntries(t *testing.T, dir string) int {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

func TestSingleFlight(t *testing.T) {
	const n = 8
	dir := t.TempDir()
	c := open(t, Config{Dir: dir})
	f := newFile(t, 300<<10)
	var joined sync.WaitGroup
	joined.Add(n)
	c.onJoin = func(string) { joined.Done() }
	var calls atomic.Int64
	fetch := func(ctx context.Context, key string, w io.Writer) error {
		calls.Add(1)
		joined.Wait() // every caller is waiting on this one download
		_, err := w.Write(f.data)
		return err
	}
	ctx := testCtx(t)
	handles := make([]*Handle, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { handles[i], errs[i] = c.Get(ctx, f.key, fetch) })
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fetches for %d concurrent gets, want 1", calls.Load(), n)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(readHandle(t, handles[i]), f.data) || handles[i].Size() != int64(len(f.data)) {
			t.Fatalf("handle %d: wrong content", i)
		}
	}
	if s := c.Stats(); s.InUse != 1 || s.Downloads != 1 || s.Misses != n || s.Entries != 1 {
		t.Fatalf("stats %+v", s)
	}
	for _, h := range handles {
		h.Release()
		h.Release() // harmless
	}
	if s := c.Stats(); s.InUse != 0 {
		t.Fatalf("in use after release: %+v", s)
	}
	// A later Get is a hit.
	h, err := c.Get(ctx, f.key, failFetch(t))
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if s := c.Stats(); s.Hits != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestVerification(t *testing.T) {
	ctx := testCtx(t)
	f := newFile(t, 10<<10)
	data := make([]byte, 600<<10)
	rand.Read(data)
	cid, err := unixfs.SumBytes(data, unixfs.KuboV0)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 1
		return b
	}
	for _, tc := range []struct {
		name    string
		key     string
		data    []byte
		wantErr error
	}{
		{"sha256", f.key, f.data, nil},
		{"sha256 mismatch", f.key, corrupt(f.data), ErrHashMismatch},
		{"sha256 short", f.key, f.data[:100], ErrHashMismatch},
		{"cid", cid.String(), data, nil},
		{"cid mismatch", cid.String(), corrupt(data), ErrHashMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, Config{Dir: dir})
			h, err := c.Get(ctx, tc.key, serve(tc.data, nil))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if c.Contains(tc.key) || tmpEntries(t, dir) != 0 {
					t.Fatal("a rejected download was kept")
				}
				if _, err := os.Stat(filepath.Join(dir, "files", tc.key)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("file left: %v", err)
				}
				return
			}
			defer h.Release()
			if !bytes.Equal(readHandle(t, h), tc.data) {
				t.Fatal("wrong content")
			}
		})
	}
}

func TestFetchError(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	c := open(t, Config{Dir: dir})
	f := newFile(t, 1000)
	boom := errors.New("node down")
	_, err := c.Get(ctx, f.key, func(_ context.Context, _ string, w io.Writer) error {
		w.Write(f.data[:10])
		return boom
	})
	if !errors.Is(err, boom) || tmpEntries(t, dir) != 0 {
		t.Fatalf("got %v", err)
	}
	// The failure is not cached: the next Get retries.
	h, err := c.Get(ctx, f.key, serve(f.data, nil))
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
}

func TestInvalidKey(t *testing.T) {
	c := open(t, Config{Dir: t.TempDir()})
	for _, k := range []string{"", "../etc/passwd", "abc", "ZZ" + newFile(t, 1).key[2:], "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbd/x"} {
		if _, err := c.Get(testCtx(t), k, failFetch(t)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("key %q: got %v", k, err)
		}
	}
}

func TestEviction(t *testing.T) {
	ctx := testCtx(t)
	const size = 1000
	clock := time.Unix(1_700_000_000, 0)
	c := open(t, Config{Dir: t.TempDir(), MaxBytes: 2*size + size/2, Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}})
	a, b, d, e := newFile(t, size), newFile(t, size), newFile(t, size), newFile(t, size)
	get := func(f file) *Handle {
		t.Helper()
		h, err := c.Get(ctx, f.key, serve(f.data, nil))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	ha := get(a) // held all along: the oldest, but in use
	get(b).Release()
	get(d).Release() // over the bound: b, the least recently used idle entry, goes
	if !c.Contains(a.key) || c.Contains(b.key) || !c.Contains(d.key) {
		t.Fatalf("after d: a %v b %v d %v", c.Contains(a.key), c.Contains(b.key), c.Contains(d.key))
	}
	if _, err := os.Stat(ha.Path()); err != nil {
		t.Fatalf("held file: %v", err)
	}
	he := get(e) // d goes, a is still held
	if !c.Contains(a.key) || c.Contains(d.key) || !c.Contains(e.key) {
		t.Fatalf("after e: a %v d %v e %v", c.Contains(a.key), c.Contains(d.key), c.Contains(e.key))
	}
	// Everything in use: the cache goes over its bound rather than evict.
	hb := get(b)
	if s := c.Stats(); s.Entries != 3 || s.Bytes != 3*size || s.InUse != 3 {
		t.Fatalf("stats %+v", s)
	}
	// Released, the least recently used of them (a) goes at once.
	ha.Release()
	if c.Contains(a.key) || !c.Contains(b.key) || !c.Contains(e.key) {
		t.Fatalf("after release: a %v b %v e %v", c.Contains(a.key), c.Contains(b.key), c.Contains(e.key))
	}
	hb.Release()
	he.Release()
	if s := c.Stats(); s.Evictions != 3 || s.Bytes != 2*size {
		t.Fatalf("stats %+v", s)
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	c := open(t, Config{Dir: dir, MaxBytes: 100})
	f := newFile(t, 101)
	if _, err := c.Get(testCtx(t), f.key, serve(f.data, nil)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if c.Contains(f.key) || tmpEntries(t, dir) != 0 {
		t.Fatal("kept")
	}
}

func TestRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	a, b := newFile(t, 5000), newFile(t, 7000)
	c, err := Open(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []file{a, b} {
		h, err := c.Get(ctx, f.key, serve(f.data, nil))
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	c.Close()
	// An interrupted download and a stray file are cleaned up; b is corrupted on disk.
	if err := os.WriteFile(filepath.Join(dir, "tmp", a.key+".123.part"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "files", "not-a-hash.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bp := filepath.Join(dir, "files", b.key)
	os.Chmod(bp, 0o644)
	if err := os.WriteFile(bp, bytes.Repeat([]byte{0}, len(b.data)), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("index", func(t *testing.T) {
		c := open(t, Config{Dir: dir})
		if s := c.Stats(); s.Entries != 2 || s.Bytes != int64(len(a.data)+len(b.data)) {
			t.Fatalf("stats %+v", s)
		}
		if tmpEntries(t, dir) != 0 {
			t.Fatal("leftover not removed")
		}
		if _, err := os.Stat(filepath.Join(dir, "files", "not-a-hash.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stray file: %v", err)
		}
		h, err := c.Get(ctx, a.key, failFetch(t))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release()
		if !bytes.Equal(readHandle(t, h), a.data) {
			t.Fatal("wrong content")
		}
	})
	c.Close()
	t.Run("verify on open", func(t *testing.T) {
		c := open(t, Config{Dir: dir, VerifyOnOpen: true})
		if !c.Contains(a.key) || c.Contains(b.key) {
			t.Fatalf("a %v, corrupt b %v", c.Contains(a.key), c.Contains(b.key))
		}
		var calls atomic.Int64
		h, err := c.Get(ctx, b.key, serve(b.data, &calls))
		if err != nil || calls.Load() != 1 {
			t.Fatalf("refetch: %v, %d calls", err, calls.Load())
		}
		h.Release()
	})
	t.Run("bound applied on open", func(t *testing.T) {
		// a was last used before b was fetched again: a goes.
		c := open(t, Config{Dir: dir, MaxBytes: 8000})
		if s := c.Stats(); s.Entries != 1 || !c.Contains(b.key) {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestCancel(t *testing.T) {
	ctx := testCtx(t)
	f := newFile(t, 1000)

	t.Run("all waiters leave", func(t *testing.T) {
		c := open(t, Config{Dir: t.TempDir()})
		started := make(chan struct{})
		stopped := make(chan error, 1)
		fetch := func(fctx context.Context, _ string, w io.Writer) error {
			close(started)
			<-fctx.Done()
			stopped <- fctx.Err()
			return fctx.Err()
		}
		gctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Get(gctx, f.key, fetch)
			errc <- err
		}()
		<-started
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("get: %v", err)
		}
		select {
		case err := <-stopped:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("fetch ctx: %v", err)
			}
		case <-ctx.Done():
			t.Fatal("the download went on with no one waiting")
		}
	})

	t.Run("one waiter leaves", func(t *testing.T) {
		c := open(t, Config{Dir: t.TempDir()})
		var joined sync.WaitGroup
		joined.Add(2)
		c.onJoin = func(string) { joined.Done() }
		release := make(chan struct{})
		fetch := func(fctx context.Context, _ string, w io.Writer) error {
			select {
			case <-release:
			case <-fctx.Done():
				return fctx.Err()
			}
			_, err := w.Write(f.data)
			return err
		}
		gctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Get(gctx, f.key, fetch)
			errc <- err
		}()
		type res struct {
			h   *Handle
			err error
		}
		okc := make(chan res, 1)
		go func() {
			h, err := c.Get(ctx, f.key, fetch)
			okc <- res{h, err}
		}()
		joined.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled get: %v", err)
		}
		close(release)
		r := <-okc
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.h.Release()
		if s := c.Stats(); s.InUse != 0 || s.Entries != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}
