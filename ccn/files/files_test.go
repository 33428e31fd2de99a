package files

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/store"
)

func TestNewConfig(t *testing.T) {
	e := newEnv(t, envOpts{})
	if e.svc.cfg != DefaultConfig() {
		t.Errorf("zero config = %+v, want the defaults", e.svc.cfg)
	}
	if _, err := New(Deps{Files: e.fs, DB: e.db}, Config{GracePeriod: -1}); err == nil {
		t.Error("negative grace period accepted")
	}
	if _, err := New(Deps{DB: e.db}, Config{}); err == nil {
		t.Error("no filestore accepted")
	}
	if _, err := New(Deps{Files: e.fs}, Config{}); err == nil {
		t.Error("no database accepted")
	}
}

// TestUpload: every add path records the row and a grace pin, and a refused
// upload records nothing.
func TestUpload(t *testing.T) {
	data := []byte(strings.Repeat("aleph file ", 40_000)) // 440 kB: two UnixFS chunks
	forBackends(t, func(t *testing.T, pg bool) {
		cases := []struct {
			name string
			add  func(e *env, r io.Reader, limit int64, want string) (*store.File, error)
			hash string
		}{
			{"storage", func(e *env, r io.Reader, limit int64, want string) (*store.File, error) {
				return e.svc.AddStorage(e.ctx, r, limit, want)
			}, sha(data)},
			{"ipfs", func(e *env, r io.Reader, limit int64, want string) (*store.File, error) {
				return e.svc.AddIPFS(e.ctx, r, limit, want)
			}, cidOf(t, data)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := newEnv(t, envOpts{postgres: pg, cfg: Config{GracePeriod: time.Hour}})
				for _, want := range []string{"", c.hash} {
					row, err := c.add(e, bytes.NewReader(data), 1<<20, want)
					if err != nil {
						t.Fatalf("add (want %q): %v", want, err)
					}
					if row.Hash != c.hash || row.Size != int64(len(data)) || row.Type != filestore.KindFile {
						t.Errorf("row = %+v", row)
					}
				}
				if got := e.row(c.hash); got == nil || got.Size != int64(len(data)) || got.Type != "file" {
					t.Errorf("stored row = %+v", got)
				}
				if n := e.pins(c.hash); n != 2 {
					t.Errorf("pins = %d, want a grace pin per upload", n)
				}
				f, err := e.svc.Open(e.ctx, c.hash)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				b, err := io.ReadAll(f)
				f.Close()
				if err != nil || !bytes.Equal(b, data) {
					t.Errorf("read back %d bytes (%v), want the %d uploaded", len(b), err, len(data))
				}

				// Refusals record nothing.
				other := append([]byte("other "), data...)
				if _, err := c.add(e, bytes.NewReader(other), 1<<20, c.hash); !errors.Is(err, filestore.ErrHashMismatch) {
					t.Errorf("mismatched upload: %v", err)
				}
				if _, err := c.add(e, bytes.NewReader(other), 1000, ""); !errors.Is(err, filestore.ErrTooLarge) {
					t.Errorf("oversized upload: %v", err)
				}
				if n := e.pins(c.hash); n != 2 {
					t.Errorf("pins after refusals = %d", n)
				}
				if e.svc.locks.size() != 0 {
					t.Errorf("%d hash locks left", e.svc.locks.size())
				}
			})
		}
	})
}

func TestOpenUnknown(t *testing.T) {
	e := newEnv(t, envOpts{})
	data := []byte("kept")
	// Bytes the database does not know are not served.
	if _, err := e.fs.PutStorage(e.ctx, bytes.NewReader(data), 0, ""); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, hash string
		want       error
	}{
		{"bytes without a row", sha(data), store.ErrNotFound},
		{"unknown", sha([]byte("nothing")), store.ErrNotFound},
		{"unknown cid", cidOf(t, []byte("nothing")), store.ErrNotFound},
		{"invalid", "../../etc/passwd", filestore.ErrInvalidHash},
		{"uppercase hex", strings.ToUpper(sha(data)), filestore.ErrInvalidHash},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := e.svc.Open(e.ctx, c.hash); !errors.Is(err, c.want) {
				t.Errorf("open: %v, want %v", err, c.want)
			}
			if err := e.svc.WriteTar(e.ctx, c.hash, io.Discard); !errors.Is(err, c.want) {
				t.Errorf("write tar: %v, want %v", err, c.want)
			}
		})
	}
}

// TestGC: an upload is kept through its grace period, then its row and bytes
// go; a file a message pins is never collected.
func TestGC(t *testing.T) {
	forBackends(t, func(t *testing.T, pg bool) {
		e := newEnv(t, envOpts{postgres: pg, cfg: Config{GracePeriod: time.Hour}})
		loose, kept := []byte("loose upload"), []byte(strings.Repeat("pinned by a store ", 30_000))
		if _, err := e.svc.AddStorage(e.ctx, bytes.NewReader(loose), 0, ""); err != nil {
			t.Fatal(err)
		}
		keptCID := cidOf(t, kept)
		if _, err := e.svc.AddIPFS(e.ctx, bytes.NewReader(kept), 0, ""); err != nil {
			t.Fatal(err)
		}
		// An IPFS upload nobody pins, sharing no block with the pinned one.
		looseIPFS := []byte(strings.Repeat("loose ipfs ", 50_000))
		looseCID := cidOf(t, looseIPFS)
		if _, err := e.svc.AddIPFS(e.ctx, bytes.NewReader(looseIPFS), 0, ""); err != nil {
			t.Fatal(err)
		}
		if ok, err := e.pinMessage(e.ctx, keptCID, sha([]byte("store"))); err != nil || !ok {
			t.Fatalf("pin: %v, %v", ok, err)
		}

		e.clock.Advance(59 * time.Minute)
		if st := e.gc(); st.GracePinsExpired != 0 || st.FilesDeleted != 0 {
			t.Errorf("gc within the grace period: %+v", st)
		}
		for _, h := range []string{sha(loose), keptCID, looseCID} {
			if _, ok := e.local(h); !ok || e.row(h) == nil {
				t.Errorf("%s collected within its grace period", h)
			}
		}

		e.clock.Advance(2 * time.Minute)
		st := e.gc()
		if st.GracePinsExpired != 3 || st.FilesDeleted != 2 || st.BytesDeleted != int64(len(loose)+len(looseIPFS)) || st.Sweep.BlocksRemoved == 0 {
			t.Errorf("gc after the grace period: %+v", st)
		}
		for _, h := range []string{sha(loose), looseCID} {
			if _, ok := e.local(h); ok {
				t.Errorf("bytes of %s left", h)
			}
			if e.row(h) != nil {
				t.Errorf("row of %s left", h)
			}
		}
		if b, ok := e.local(keptCID); !ok || !bytes.Equal(b, kept) || e.row(keptCID) == nil {
			t.Error("the pinned file was collected")
		}
		if st := e.gc(); st.FilesDeleted != 0 || st.Sweep.BlocksRemoved != 0 {
			t.Errorf("second gc: %+v", st)
		}
	})
}

// TestRun: the collector runs every period until its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t, envOpts{cfg: Config{GracePeriod: time.Hour, GCPeriod: 5 * time.Millisecond}})
	data := []byte("collected by Run")
	if _, err := e.svc.AddStorage(e.ctx, bytes.NewReader(data), 0, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	runs := make(chan GCStats, 100)
	e.svc.testHookGC = func(st GCStats, err error) {
		if err != nil {
			t.Errorf("collection: %v", err)
		}
		select {
		case runs <- st:
		default: // the test has seen enough
		}
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	for _, want := range []int{1, 0} {
		select {
		case st := <-runs:
			if st.FilesDeleted != want {
				t.Errorf("run deleted %d files, want %d", st.FilesDeleted, want)
			}
		case <-e.ctx.Done():
			t.Fatal("no collection")
		}
	}
	if _, ok := e.local(sha(data)); ok || e.row(sha(data)) != nil {
		t.Error("file left after Run collected")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-e.ctx.Done():
		t.Fatal("Run did not return")
	}
}

// TestGCBusy: a file whose hash is locked (an add or a fetch in progress) is
// left for the next collection instead of waited for.
func TestGCBusy(t *testing.T) {
	e := newEnv(t, envOpts{cfg: Config{GracePeriod: time.Hour}})
	data := []byte("busy file")
	if _, err := e.svc.AddStorage(e.ctx, bytes.NewReader(data), 0, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	unlock, err := e.svc.locks.lock(e.ctx, sha(data))
	if err != nil {
		t.Fatal(err)
	}
	if st := e.gc(); st.FilesBusy != 1 || st.FilesDeleted != 0 {
		t.Errorf("gc of a busy file: %+v", st)
	}
	if _, ok := e.local(sha(data)); !ok || e.row(sha(data)) == nil {
		t.Error("busy file collected")
	}
	// A waiter that gives up leaves no lock entry behind.
	short, cancel := context.WithTimeout(e.ctx, 10*time.Millisecond)
	if _, err := e.svc.locks.lock(short, sha(data)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lock of a held hash: %v", err)
	}
	cancel()
	unlock()
	if n := e.svc.locks.size(); n != 0 {
		t.Errorf("%d lock entries left", n)
	}
	if st := e.gc(); st.FilesBusy != 0 || st.FilesDeleted != 1 {
		t.Errorf("gc once free: %+v", st)
	}
}
