package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/internal/pgtest"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/store/sqlstore"
	"github.com/go-aleph/go-aleph/unixfs"
)

// clock is a test clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a service over a real store and a real filestore in temporary
// directories.
type env struct {
	t     testing.TB
	ctx   context.Context
	db    store.Store
	fs    *filestore.Store
	svc   *Service
	clock *clock
}

type envOpts struct {
	postgres bool
	sources  []Source
	cfg      Config
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dsn := filepath.Join(t.TempDir(), "ccn.db")
	if o.postgres {
		dsn = pgtest.Schema(t, "files_test_")
	}
	db, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	fs, err := filestore.Open(t.TempDir(), filestore.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open filestore: %v", err)
	}
	t.Cleanup(func() { fs.Close() })
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	svc, err := New(Deps{Files: fs, DB: db, Sources: o.sources, Now: c.Now}, o.cfg)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	t.Cleanup(func() { svc.Close() }) // before the filestore and the database close
	return &env{t: t, ctx: ctx, db: db, fs: fs, svc: svc, clock: c}
}

// forBackends runs fn on SQLite and, with ALEPH_TEST_POSTGRES, on PostgreSQL.
func forBackends(t *testing.T, fn func(t *testing.T, pg bool)) {
	t.Helper()
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) {
			if b == "postgres" {
				pgtest.DSN(t)
			}
			fn(t, b == "postgres")
		})
	}
}

// pins counts the pins of a file.
func (e *env) pins(hash string) int {
	e.t.Helper()
	n, err := e.db.CountFilePins(e.ctx, hash)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// row returns a file row, nil when absent.
func (e *env) row(hash string) *store.File {
	e.t.Helper()
	f, err := e.db.GetFile(e.ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// local reads the bytes the filestore keeps for hash, or reports their absence.
func (e *env) local(hash string) ([]byte, bool) {
	e.t.Helper()
	f, err := e.fs.Open(e.ctx, hash)
	if errors.Is(err, filestore.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		e.t.Fatalf("open %s: %v", hash, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		e.t.Fatalf("read %s: %v", hash, err)
	}
	return b, true
}

// pinMessage pins a file the way a STORE does: a message pin, in a
// transaction that requires the file row (the pipeline's checkFile).
// It reports whether the row was there.
func (e *env) pinMessage(ctx context.Context, hash, itemHash string) (bool, error) {
	pinned := false
	err := e.db.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.GetFile(ctx, hash); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		pinned = true
		return tx.InsertFilePin(ctx, &store.FilePin{FileHash: hash, Type: store.PinMessage, Owner: "0xA", ItemHash: itemHash, Created: 1})
	})
	return pinned, err
}

// gc runs a collection and fails the test on error.
func (e *env) gc() GCStats {
	e.t.Helper()
	st, err := e.svc.CollectGarbage(e.ctx)
	if err != nil {
		e.t.Fatalf("collect garbage: %v", err)
	}
	return st
}

func sha(b []byte) string { return message.HashContent(b) }

func cidOf(t testing.TB, b []byte) string {
	t.Helper()
	c, err := unixfs.SumBytes(b, unixfs.KuboV0)
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// peer is a real HTTP source: an httptest server that serves the bytes it
// holds at /{hash}, possibly the wrong ones, and counts requests.
type peer struct {
	name string
	srv  *httptest.Server

	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	// gate, when set, holds every answer until it is closed.
	gate chan struct{}
	// pinned and unpinned record Pinner calls.
	pinned, unpinned []string
}

func newPeer(t testing.TB, name string) *peer {
	t.Helper()
	p := &peer{name: name, files: map[string][]byte{}, hits: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := strings.TrimPrefix(r.URL.Path, "/")
		p.mu.Lock()
		p.hits[h]++
		b, ok := p.files[h]
		gate := p.gate
		p.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *peer) put(hash string, b []byte) {
	p.mu.Lock()
	p.files[hash] = b
	p.mu.Unlock()
}

func (p *peer) hitCount(hash string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[hash]
}

func (p *peer) Name() string { return p.name }

// Fetch implements Source over HTTP.
func (p *peer) Fetch(ctx context.Context, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.srv.URL+"/"+hash, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.srv.Client().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, fmt.Errorf("%s has no %s: %w", p.name, hash, ErrUnavailable)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: http %d", p.name, resp.StatusCode)
	}
	return resp.Body, nil
}

// pinningPeer is a peer that is also a Pinner.
type pinningPeer struct{ *peer }

func (p pinningPeer) Pin(_ context.Context, _ filestore.Engine, hash string) error {
	p.mu.Lock()
	p.pinned = append(p.pinned, hash)
	p.mu.Unlock()
	return nil
}

func (p pinningPeer) Unpin(_ context.Context, _ filestore.Engine, hash string) error {
	p.mu.Lock()
	p.unpinned = append(p.unpinned, hash)
	p.mu.Unlock()
	return nil
}

func (p pinningPeer) calls() (pinned, unpinned []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.pinned...), append([]string(nil), p.unpinned...)
}
