package files

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/store"
)

// TestGCRace races a collection against a new pin of the same file, many
// times: the file was uploaded, its grace pin has expired, and while the
// collector runs another goroutine uploads the same content again (with or
// without its hash, by either engine, or through EnsureFile) or just pins
// it, the way a STORE does (a message pin in a transaction that requires the
// file row). Whatever the interleaving, every file row that has a pin has its
// bytes, and a pin that was made found its row.
//
// Rounds take turns at how they start, so that every interleaving comes up
// whatever the scheduler favours: both at once; the upload when the collector
// is about to delete a file; the collector when the upload is in and the pin
// is not.
func TestGCRace(t *testing.T) {
	forBackends(t, func(t *testing.T, pg bool) {
		iterations := 300
		if pg || testing.Short() {
			iterations = 60
		}
		e := newEnv(t, envOpts{postgres: pg, cfg: Config{GracePeriod: time.Hour, GCBatch: 2}})
		small := []byte("raced storage file")
		big := []byte(strings.Repeat("raced ipfs file ", 20_000)) // 320 kB: blocks to sweep
		contents := map[string][]byte{sha(small): small, cidOf(t, big): big}
		type reupload struct {
			name string
			hash string
			run  func() error
		}
		add := func(name, hash string, fn func() (*store.File, error)) reupload {
			return reupload{name, hash, func() error { _, err := fn(); return err }}
		}
		variants := []reupload{
			add("storage, hash unknown", sha(small), func() (*store.File, error) {
				return e.svc.AddStorage(e.ctx, bytes.NewReader(small), 0, "")
			}),
			add("storage, hash known", sha(small), func() (*store.File, error) {
				return e.svc.AddStorage(e.ctx, bytes.NewReader(small), 0, sha(small))
			}),
			add("ipfs, hash unknown", cidOf(t, big), func() (*store.File, error) {
				return e.svc.AddIPFS(e.ctx, bytes.NewReader(big), 0, "")
			}),
			add("ipfs, hash known", cidOf(t, big), func() (*store.File, error) {
				return e.svc.AddIPFS(e.ctx, bytes.NewReader(big), 0, cidOf(t, big))
			}),
			{"ensure (no source: unavailable once collected)", sha(small), func() error {
				// Once collected the file is unavailable, and the pin then
				// finds no row; either outcome is fine here.
				_, _ = e.svc.EnsureFile(e.ctx, filestore.EngineStorage, sha(small))
				return nil
			}},
			{"pin only", cidOf(t, big), func() error { return nil }},
		}
		pinsMade, rowsMissed := 0, 0
		for i := range iterations {
			v := variants[i%len(variants)]
			// The file is there with an expired grace pin (re-uploaded if the
			// last round collected it).
			if _, err := e.svc.AddStorage(e.ctx, bytes.NewReader(small), 0, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.AddIPFS(e.ctx, bytes.NewReader(big), 0, ""); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(2 * time.Hour)

			storeHash := fmt.Sprintf("%064x", i+1)
			var (
				wg       sync.WaitGroup
				gcErr    error
				upErr    error
				pinned   bool
				pinErr   error
				gcGo     = make(chan struct{}) // the collector may start
				upGo     = make(chan struct{}) // the upload may start
				gcDone   = make(chan struct{})
				upIn     = make(chan struct{}) // the upload is in, the pin not yet
				collectO sync.Once
			)
			e.svc.testHookCollect = nil
			switch (i / len(variants)) % 3 {
			case 0:
				close(gcGo)
				close(upGo)
			case 1:
				close(gcGo)
				e.svc.testHookCollect = func(string) { collectO.Do(func() { close(upGo) }) }
				go func() { <-gcDone; collectO.Do(func() { close(upGo) }) }()
			case 2:
				close(upGo)
				go func() { <-upIn; close(gcGo) }()
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer close(gcDone)
				<-gcGo
				_, gcErr = e.svc.CollectGarbage(e.ctx)
			}()
			go func() {
				defer wg.Done()
				<-upGo
				upErr = v.run()
				close(upIn)
				if upErr == nil {
					pinned, pinErr = e.pinMessage(e.ctx, v.hash, storeHash)
				}
			}()
			wg.Wait()
			if gcErr != nil || upErr != nil || pinErr != nil {
				t.Fatalf("round %d (%s): gc %v, upload %v, pin %v", i, v.name, gcErr, upErr, pinErr)
			}
			if pinned {
				pinsMade++
			} else {
				rowsMissed++
			}
			for h, want := range contents {
				if e.pins(h) == 0 {
					continue
				}
				if e.row(h) == nil {
					t.Fatalf("round %d (%s): %s has pins but no row", i, v.name, h)
				}
				if got, ok := e.local(h); !ok || !bytes.Equal(got, want) {
					t.Fatalf("round %d (%s): %s is pinned but its bytes are gone", i, v.name, h)
				}
			}
			if pinned && e.row(v.hash) == nil {
				t.Fatalf("round %d (%s): pinned a file that has no row", i, v.name)
			}
			// Unpin for the next round.
			if err := e.db.Update(e.ctx, func(tx store.Tx) error {
				return tx.DeleteFilePins(e.ctx, storeHash, store.PinMessage)
			}); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%d rounds: %d pins made, %d found the row collected", iterations, pinsMade, rowsMissed)
		// With nothing in flight, a last collection takes everything,
		// including bytes left for later by a collection that raced an upload.
		e.clock.Advance(2 * time.Hour)
		e.gc()
		e.gc()
		for h := range contents {
			if _, ok := e.local(h); ok || e.row(h) != nil {
				t.Errorf("%s left after the last collections", h)
			}
		}
		if e.svc.locks.size() != 0 || len(e.svc.orphans) != 0 {
			t.Errorf("left: %d locks, %d orphans", e.svc.locks.size(), len(e.svc.orphans))
		}
	})
}
