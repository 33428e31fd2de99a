package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// dbFiles is a file provider over the test's store, standing in for the file
// service: a file it "has" gets its row written when asked for, as
// files.Service.EnsureFile does.
type dbFiles struct {
	db store.Store

	mu    sync.Mutex
	have  map[string]bool
	slow  map[string]bool // EnsureFile waits for its context to end
	noRow bool            // answer without writing the row (it was collected since)
	asked []string        // "engine:hash" per call
}

func newDBFiles(db store.Store) *dbFiles {
	return &dbFiles{db: db, have: map[string]bool{}, slow: map[string]bool{}}
}

func (f *dbFiles) add(hash string) {
	f.mu.Lock()
	f.have[hash] = true
	f.mu.Unlock()
}

func (f *dbFiles) EnsureFile(ctx context.Context, engine filestore.Engine, hash string) (*store.File, error) {
	f.mu.Lock()
	f.asked = append(f.asked, string(engine)+":"+hash)
	have, slow, noRow := f.have[hash], f.slow[hash], f.noRow
	f.mu.Unlock()
	if slow {
		<-ctx.Done()
		return nil, fmt.Errorf("fetch %s: %w", hash, ctx.Err())
	}
	if !have {
		return nil, fmt.Errorf("file %s: %w", hash, ErrFileUnavailable)
	}
	row := &store.File{Hash: hash, Size: 3, Type: "file"}
	if noRow {
		return row, nil
	}
	return row, f.db.Update(ctx, func(tx store.Tx) error { return tx.PutFile(ctx, row) })
}

func (f *dbFiles) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

// wantQueued checks m waits in the queue after a failure with code.
func (e *env) wantQueued(m *msg, code message.ErrorCode) {
	e.t.Helper()
	e.wantStatus(m, message.StatusPending)
	ps, err := e.store.PendingByHash(e.ctx, m.hash)
	if err != nil || len(ps) != 1 || ps[0].LastError != code {
		e.t.Errorf("%s: queue rows %+v (%v), want one with last error %d", m.name, ps, err, code)
	}
}

func TestStoreFile(t *testing.T) {
	alice, bob := account(t, "alice"), account(t, "bob")
	s1 := build(t, "s1", alice, message.TypeStore, storeContent("f1", ""), "", 0)
	s2 := build(t, "s2", alice, message.TypeStore, storeContent("f2", ""), "", 1)
	bobForAlice := build(t, "bob for alice", bob, message.TypeStore, owned(storeContent("f3", ""), alice.Address()), "", 2)
	pins := func(e *env, file string) int {
		t.Helper()
		n, err := e.store.CountFilePins(e.ctx, fileHash(file))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	retryCodes := func(evs []events.Event, m *msg) []message.ErrorCode {
		var codes []message.ErrorCode
		for _, ev := range evs {
			if ev.Kind == events.Retry && ev.ItemHash == m.hash {
				codes = append(codes, ev.Code)
			}
		}
		return codes
	}

	forBackends(t, func(t *testing.T, pg bool) {
		t.Run("file present: processed", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg})
			files := newDBFiles(e.store)
			e.p.files = files
			files.add(fileHash("f1"))
			e.ingest(s1)
			e.want(processed(s1))
			if n := pins(e, "f1"); n != 1 {
				t.Errorf("pins of f1 = %d, want the message pin", n)
			}
			if got := fmt.Sprint(files.calls()); got != "[storage:"+fileHash("f1")+"]" {
				t.Errorf("provider calls = %s", got)
			}
		})

		t.Run("file missing: retries with 4, processed once it appears", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg})
			files := newDBFiles(e.store)
			e.p.files = files
			evs := e.collect()
			e.ingest(s1)
			e.wantQueued(s1, message.CodeFileUnavailable)
			if n := pins(e, "f1"); n != 0 {
				t.Errorf("pins of a missing file = %d", n)
			}
			files.add(fileHash("f1"))
			e.settle()
			e.want(processed(s1))
			if got := retryCodes(evs(), s1); fmt.Sprint(got) != fmt.Sprint([]message.ErrorCode{message.CodeFileUnavailable}) {
				t.Errorf("retry codes = %v, want one 4", got)
			}
			if tag := e.fileTag(s1.hash); tag == nil || tag.FileHash != fileHash("f1") {
				t.Errorf("tag = %+v", tag)
			}
		})

		t.Run("file row collected after prepare: retries with 4", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg})
			files := newDBFiles(e.store)
			e.p.files = files
			files.add(fileHash("f1"))
			files.noRow = true
			e.ingest(s1)
			e.wantQueued(s1, message.CodeFileUnavailable)
			files.noRow = false
			e.settle()
			e.want(processed(s1))
		})

		t.Run("never there: rejected with 4", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg, cfg: Config{MaxRetries: 2}})
			e.p.files = newDBFiles(e.store)
			e.ingest(s1)
			e.settle()
			e.want(rejected(s1, message.CodeFileUnavailable))
		})

		t.Run("a refusal wins over a missing file", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg})
			e.p.files = newDBFiles(e.store)
			e.ingest(bobForAlice)
			// Rejected on the first attempt, not retried with 4.
			e.want(rejected(bobForAlice, message.CodePermissionDenied))
		})

		t.Run("a slow file does not hold its batch", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg, cfg: Config{FileTimeout: 100 * time.Millisecond}})
			files := newDBFiles(e.store)
			e.p.files = files
			files.add(fileHash("f1"))
			files.slow[fileHash("f2")] = true
			e.submit(s1)
			e.submit(s2)
			if n := e.drain(); n != 2 {
				t.Fatalf("drained %d messages, want the batch of 2", n)
			}
			// The slow fetch was cut at the batch's file deadline (the
			// provider only returns when its context ends): s2 retries, s1
			// went through in the same batch.
			e.want(processed(s1))
			e.wantQueued(s2, message.CodeFileUnavailable)
		})
	})

	t.Run("no provider: pinned without the file", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		e.ingest(s1)
		e.want(processed(s1))
		if n := pins(e, "f1"); n != 1 {
			t.Errorf("pins = %d", n)
		}
	})
}

// TestStoreFileRetryReason: the retry event of a STORE whose file did not come
// in time names the cause.
func TestStoreFileRetryReason(t *testing.T) {
	alice := account(t, "alice")
	s := build(t, "s", alice, message.TypeStore, storeContent("slow", ""), "", 0)
	e := newEnv(t, envOpts{cfg: Config{FileTimeout: 50 * time.Millisecond}})
	files := newDBFiles(e.store)
	files.slow[fileHash("slow")] = true
	e.p.files = files
	evs := e.collect()
	e.ingest(s)
	var retry *events.Event
	for _, ev := range evs() {
		if ev.Kind == events.Retry && ev.ItemHash == s.hash {
			retry = &ev
		}
	}
	if retry == nil || retry.Code != message.CodeFileUnavailable || retry.Err == nil ||
		!errors.Is(retry.Err, context.DeadlineExceeded) || !strings.Contains(retry.Err.Error(), fileHash("slow")) {
		t.Fatalf("retry event = %+v", retry)
	}
}
