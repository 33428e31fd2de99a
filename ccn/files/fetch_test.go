package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
)

var (
	_ pipeline.ContentFetcher = (*Service)(nil)
	_ pipeline.FileProvider   = (*Service)(nil)
)

// TestFetchContent: local first, then the sources in order; wrong bytes are
// refused and never kept; what a source gave is kept for next time.
func TestFetchContent(t *testing.T) {
	content := []byte(`{"address":"0xA","time":1,"content":{"x":1},"type":"test"}`)
	ipfsContent := []byte(`{"address":"0xA","time":2}`)
	h, c := sha(content), cidOf(t, ipfsContent)

	t.Run("local", func(t *testing.T) {
		liar := newPeer(t, "liar")
		e := newEnv(t, envOpts{sources: []Source{liar}})
		if _, err := e.svc.AddStorage(e.ctx, bytes.NewReader(content), 0, ""); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.FetchContent(e.ctx, message.ItemStorage, h)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("fetch = %q, %v", got, err)
		}
		if liar.hitCount(h) != 0 {
			t.Error("asked a source for local content")
		}
	})

	t.Run("sources in order, wrong bytes refused", func(t *testing.T) {
		liar, honest := newPeer(t, "liar"), newPeer(t, "honest")
		liar.put(h, []byte(`{"forged":true}`))
		liar.put(c, []byte(`{"forged":true}`))
		honest.put(h, content)
		honest.put(c, ipfsContent)
		e := newEnv(t, envOpts{sources: []Source{liar, honest}})
		for _, tc := range []struct {
			typ  message.ItemType
			hash string
			want []byte
		}{{message.ItemStorage, h, content}, {message.ItemIPFS, c, ipfsContent}} {
			got, err := e.svc.FetchContent(e.ctx, tc.typ, tc.hash)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("fetch %s = %q, %v", tc.typ, got, err)
			}
			if liar.hitCount(tc.hash) != 1 || honest.hitCount(tc.hash) != 1 {
				t.Errorf("%s: hits liar %d, honest %d; want 1 each", tc.typ, liar.hitCount(tc.hash), honest.hitCount(tc.hash))
			}
			// Kept, with its row and grace pin: the next fetch is local.
			if b, ok := e.local(tc.hash); !ok || !bytes.Equal(b, tc.want) || e.row(tc.hash) == nil || e.pins(tc.hash) != 1 {
				t.Errorf("%s: not kept locally", tc.typ)
			}
			if _, err := e.svc.FetchContent(e.ctx, tc.typ, tc.hash); err != nil || honest.hitCount(tc.hash) != 1 {
				t.Errorf("%s: second fetch went out (%v)", tc.typ, err)
			}
		}
	})

	t.Run("only wrong bytes: unavailable, nothing kept", func(t *testing.T) {
		liar := newPeer(t, "liar")
		liar.put(h, []byte(`{"forged":true}`))
		e := newEnv(t, envOpts{sources: []Source{liar}})
		_, err := e.svc.FetchContent(e.ctx, message.ItemStorage, h)
		if !errors.Is(err, pipeline.ErrContentUnavailable) || !errors.Is(err, ErrUnavailable) || !errors.Is(err, filestore.ErrHashMismatch) {
			t.Errorf("fetch from a liar: %v", err)
		}
		if _, ok := e.local(h); ok || e.row(h) != nil {
			t.Error("forged content kept")
		}
		if _, ok := e.local(sha([]byte(`{"forged":true}`))); ok {
			t.Error("forged bytes kept under their own hash")
		}
	})

	t.Run("too large", func(t *testing.T) {
		p := newPeer(t, "p")
		p.put(h, content)
		e := newEnv(t, envOpts{sources: []Source{p}, cfg: Config{MaxContentSize: 10}})
		if _, err := e.svc.FetchContent(e.ctx, message.ItemStorage, h); !errors.Is(err, pipeline.ErrContentUnavailable) || !errors.Is(err, filestore.ErrTooLarge) {
			t.Errorf("fetch too large: %v", err)
		}
	})

	t.Run("nowhere", func(t *testing.T) {
		e := newEnv(t, envOpts{sources: []Source{newPeer(t, "empty")}})
		for _, tc := range []struct {
			typ  message.ItemType
			hash string
		}{{message.ItemStorage, h}, {message.ItemIPFS, c}, {message.ItemIPFS, h}, {message.ItemStorage, "not a hash"}} {
			if _, err := e.svc.FetchContent(e.ctx, tc.typ, tc.hash); !errors.Is(err, pipeline.ErrContentUnavailable) {
				t.Errorf("fetch %s %s: %v", tc.typ, tc.hash, err)
			}
		}
		if _, err := e.svc.FetchContent(e.ctx, message.ItemInline, h); err == nil {
			t.Error("inline content fetched")
		}
	})
}

// TestEnsureFile covers the STORE file path: local bytes, sources with
// re-hashing, pinning, and unavailability.
func TestEnsureFile(t *testing.T) {
	data := []byte(strings.Repeat("a stored file ", 30_000))
	h, c := sha(data), cidOf(t, data)

	forBackends(t, func(t *testing.T, pg bool) {
		t.Run("local bytes without a row get one", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg})
			if _, err := e.fs.PutStorage(e.ctx, bytes.NewReader(data), 0, ""); err != nil {
				t.Fatal(err)
			}
			row, err := e.svc.EnsureFile(e.ctx, filestore.EngineStorage, h)
			if err != nil || row.Hash != h || row.Size != int64(len(data)) || row.Type != "file" {
				t.Fatalf("ensure = %+v, %v", row, err)
			}
			if e.row(h) == nil || e.pins(h) != 1 {
				t.Errorf("row %+v, %d pins; want the row and a grace pin", e.row(h), e.pins(h))
			}
			// A row already pinned is left alone.
			if _, err := e.svc.EnsureFile(e.ctx, filestore.EngineStorage, h); err != nil || e.pins(h) != 1 {
				t.Errorf("second ensure: %v, %d pins", err, e.pins(h))
			}
		})

		t.Run("from a source, wrong bytes refused, pinned", func(t *testing.T) {
			liar, honest := newPeer(t, "liar"), newPeer(t, "honest")
			pinner := pinningPeer{honest}
			liar.put(h, []byte("forged"))
			liar.put(c, []byte("forged"))
			honest.put(h, data)
			honest.put(c, data)
			e := newEnv(t, envOpts{postgres: pg, sources: []Source{liar, pinner}, cfg: Config{GracePeriod: time.Hour}})
			for _, tc := range []struct {
				engine filestore.Engine
				hash   string
			}{{filestore.EngineStorage, h}, {filestore.EngineIPFS, c}} {
				row, err := e.svc.EnsureFile(e.ctx, tc.engine, tc.hash)
				if err != nil || row.Hash != tc.hash || row.Size != int64(len(data)) {
					t.Fatalf("ensure %s = %+v, %v", tc.engine, row, err)
				}
				if b, ok := e.local(tc.hash); !ok || !bytes.Equal(b, data) || e.pins(tc.hash) != 1 {
					t.Errorf("%s: not kept with a grace pin", tc.engine)
				}
			}
			if _, ok := e.local(sha([]byte("forged"))); ok {
				t.Error("forged bytes kept")
			}
			// Pin is called after the flight ends; Close waits for it.
			e.svc.Close()
			pinned, _ := pinner.calls()
			if fmt.Sprint(pinned) != fmt.Sprint([]string{h, c}) {
				t.Errorf("pinned %v, want both files", pinned)
			}
			// The collector unpins what it deletes.
			e.clock.Advance(2 * time.Hour)
			if st := e.gc(); st.FilesDeleted != 2 {
				t.Errorf("gc: %+v", st)
			}
			if _, unpinned := pinner.calls(); len(unpinned) != 2 {
				t.Errorf("unpinned %v, want both files", unpinned)
			}
		})

		t.Run("nowhere: unavailable", func(t *testing.T) {
			liar := newPeer(t, "liar")
			liar.put(h, []byte("forged"))
			e := newEnv(t, envOpts{postgres: pg, sources: []Source{liar}})
			_, err := e.svc.EnsureFile(e.ctx, filestore.EngineStorage, h)
			if !errors.Is(err, pipeline.ErrFileUnavailable) || !errors.Is(err, ErrUnavailable) || !errors.Is(err, filestore.ErrHashMismatch) {
				t.Errorf("ensure from a liar: %v", err)
			}
			if e.row(h) != nil {
				t.Error("row written for a file that is not here")
			}
			for _, tc := range []struct {
				engine filestore.Engine
				hash   string
			}{{filestore.EngineIPFS, c}, {filestore.EngineIPFS, h}, {filestore.EngineStorage, c}, {filestore.EngineStorage, "../x"}} {
				if _, err := e.svc.EnsureFile(e.ctx, tc.engine, tc.hash); !errors.Is(err, pipeline.ErrFileUnavailable) {
					t.Errorf("ensure %s %s: %v", tc.engine, tc.hash, err)
				}
			}
		})
	})
}

// TestEnsureFileSingleFlight: concurrent calls for one hash share one fetch,
// and a caller that stops waiting does not stop it.
func TestEnsureFileSingleFlight(t *testing.T) {
	data := []byte("slow file")
	h := sha(data)
	slow := newPeer(t, "slow")
	slow.put(h, data)
	slow.gate = make(chan struct{})
	e := newEnv(t, envOpts{sources: []Source{slow}})

	// A caller that gives up gets an unavailable error at once.
	short, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
	_, err := e.svc.EnsureFile(short, filestore.EngineStorage, h)
	cancel()
	if !errors.Is(err, pipeline.ErrFileUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ensure with a short deadline: %v", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			row, err := e.svc.EnsureFile(e.ctx, filestore.EngineStorage, h)
			if err == nil && row.Hash != h {
				err = fmt.Errorf("row %+v", row)
			}
			errs <- err
		}()
	}
	close(slow.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("ensure: %v", err)
		}
	}
	if n := slow.hitCount(h); n != 1 {
		t.Errorf("source asked %d times, want once", n)
	}
}
