package sqlstore

import (
	"github.com/go-aleph/go-aleph/internal/pgtest"

	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/store/storetest"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openSQLite opens a fresh SQLite store in a temporary directory.
func openSQLite(t testing.TB) *DB {
	t.Helper()
	db, err := Open(testCtx(t), filepath.Join(t.TempDir(), "aleph.db"), Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens a store in a fresh schema, dropped when the test ends.
func openPostgres(t testing.TB) *DB {
	t.Helper()
	ctx := testCtx(t)
	dsn := pgtest.Schema(t, "aleph_test_")
	db, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() }) // runs before the schema is dropped
	return db
}

func TestSQLiteSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openSQLite(t) })
}

func TestPostgresSuite(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t) })
}

// backends runs fn against each available backend.
func backends(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

func TestOpenDSN(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, dsn string
		file      string
		wantErr   bool
	}{
		{"plain path with new parents", filepath.Join(dir, "a", "b", "plain.db"), filepath.Join(dir, "a", "b", "plain.db"), false},
		{"sqlite scheme", "sqlite://" + filepath.Join(dir, "c", "scheme.db"), filepath.Join(dir, "c", "scheme.db"), false},
		{"options", filepath.Join(dir, "opt.db") + "?synchronous=full&read_conns=2&writer_cache_kib=1024", filepath.Join(dir, "opt.db"), false},
		{"unknown option", filepath.Join(dir, "bad.db") + "?journal=off", "", true},
		{"bad synchronous", filepath.Join(dir, "bad.db") + "?synchronous=off", "", true},
		{"bad number", filepath.Join(dir, "bad.db") + "?read_conns=-1", "", true},
		{"memory", ":memory:", "", true},
		{"empty", "sqlite://", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := store.Open(testCtx(t), c.dsn)
			if c.wantErr {
				if err == nil {
					s.Close()
					t.Fatalf("open %q succeeded", c.dsn)
				}
				return
			}
			if err != nil {
				t.Fatalf("open %q: %v", c.dsn, err)
			}
			defer s.Close()
			if s.Backend() != "sqlite" {
				t.Errorf("backend = %q", s.Backend())
			}
			if _, err := os.Stat(c.file); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

func TestSQLitePragmas(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "p.db")
	for _, c := range []struct {
		query string
		sync  int // 1 NORMAL, 2 FULL
	}{{"", 1}, {"?synchronous=FULL", 2}} {
		db, err := Open(ctx, path+c.query, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var sync, fk int
		if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := db.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != c.sync || fk != 1 {
			t.Errorf("%q: journal_mode %s synchronous %d foreign_keys %d", c.query, mode, sync, fk)
		}
		// Readers cannot write.
		if _, err := db.r.ExecContext(ctx, "CREATE TABLE nope (x INTEGER)"); err == nil {
			t.Errorf("a reader connection wrote")
		}
		db.Close()
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Pending{Message: message.Message{Chain: "ETH", Sender: "0xA", Type: "POST", ItemType: "inline",
		ItemHash: message.HashContent([]byte("x")), Time: message.TimeFromSeconds(1)}, Raw: []byte(`{}`)}
	if _, err := db.Enqueue(ctx, []*store.Pending{p}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != len(ms) || n < 2 {
		t.Errorf("schema_migrations rows = %d, %v; want one per migration (%d)", n, err, len(ms))
	}
	if c, err := db.PendingCount(ctx); err != nil || c != 1 {
		t.Errorf("pending after reopen = %d, %v", c, err)
	}
}

func TestConcurrentOpenPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	db := openPostgres(t) // creates and migrates a schema
	var schema string
	if err := db.r.QueryRowContext(testCtx(t), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	// Opening the same schema concurrently waits on the migration lock and
	// applies nothing twice.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := Open(testCtx(t), pgtest.WithSearchPath(t, dsn, schema), Options{})
			if err == nil {
				o.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
}

func TestMergeElementsBytes(t *testing.T) {
	elems := []*store.AggregateElement{
		{ItemHash: "a", Key: "k", Owner: "o", Content: []byte(`{"b": 1, "a": {"x": [1, 2]}, "html": "<&>"}`), CreationTime: 1},
		{ItemHash: "b", Key: "k", Owner: "o", Content: []byte(`{"c":"é","b":{"new":true}}`), CreationTime: 2},
		{ItemHash: "c", Key: "k", Owner: "o", Content: []byte(`{}`), CreationTime: 3},
	}
	a, err := MergeElements(elems)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":{"new":true},"a":{"x":[1,2]},"html":"<&>","c":"é"}`
	if string(a.Content) != want {
		t.Errorf("merged = %s, want %s", a.Content, want)
	}
	if a.OriginalHash != "a" || a.LastRevisionHash != "c" || a.CreationTime != 1 || a.LastUpdateTime != 3 || a.Dirty {
		t.Errorf("merged record = %+v", a)
	}
	if a, err := MergeElements(nil); a != nil || err != nil {
		t.Errorf("merge of nothing = %v, %v", a, err)
	}
	for _, bad := range []string{`[1]`, `{"a":1} {}`, `{"a":`, `"s"`} {
		if _, err := MergeElements([]*store.AggregateElement{{ItemHash: "x", Content: []byte(bad)}}); err == nil {
			t.Errorf("merge of %q succeeded", bad)
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := testCtx(t)
		err := db.Update(ctx, func(tx store.Tx) error {
			for name, err := range map[string]error{
				"message without hash":   tx.InsertMessage(ctx, &store.Message{}),
				"pending status":         tx.InsertMessage(ctx, &store.Message{Message: message.Message{ItemHash: "h"}, Status: message.StatusPending}),
				"status change":          tx.SetMessageStatus(ctx, "h", message.StatusForgotten),
				"aggregate not object":   tx.InsertAggregateElement(ctx, &store.AggregateElement{ItemHash: "h", Content: []byte(`[1]`)}),
				"aggregate invalid JSON": tx.PutAggregate(ctx, &store.Aggregate{Key: "k", Owner: "o", Content: []byte(`{"a":`)}),
				"pin without file":       tx.InsertFilePin(ctx, &store.FilePin{Type: store.PinMessage}),
				"empty status":           tx.SetStatus(ctx, store.StatusRecord{ItemHash: "h"}),
			} {
				if err == nil {
					t.Errorf("%s: accepted", name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Enqueue(ctx, []*store.Pending{nil}); err == nil {
			t.Errorf("enqueue of nil accepted")
		}
		if _, err := db.QueryAggregates(ctx, store.AggregateFilter{SortBy: "size"}, store.Page{}); err == nil {
			t.Errorf("unknown aggregate sort accepted")
		}
		if _, err := db.QueryAggregates(ctx, store.AggregateFilter{}, store.Page{Cursor: &store.Cursor{Hash: "no-slash"}}); err == nil {
			t.Errorf("malformed aggregate cursor accepted")
		}
	})
}

func TestCursorPageSize(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := testCtx(t)
		err := db.Update(ctx, func(tx store.Tx) error {
			for i := range 250 {
				h := message.HashContent([]byte{byte(i), byte(i >> 8)})
				m := &store.Message{Message: message.Message{Chain: "ETH", Sender: "0xA", Type: "POST", ItemType: "storage",
					ItemHash: h, Time: message.TimeFromSeconds(float64(1000 + i%7))}, Content: []byte(`{}`), Owner: "0xA"}
				if err := tx.InsertMessage(ctx, m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ size, want int }{{0, 20}, {500, 200}, {-3, 20}, {50, 50}} {
			got, next, err := db.QueryMessages(ctx, store.MessageFilter{}, store.Page{Size: c.size, Cursor: &store.Cursor{}})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.want || next == nil {
				t.Errorf("cursor size %d: %d rows (next %v), want %d", c.size, len(got), next, c.want)
			}
		}
	})
}

func TestAggregateCursor(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := testCtx(t)
		owners := []string{"0xA", "0xB", "0xC"}
		err := db.Update(ctx, func(tx store.Tx) error {
			for i := range 12 {
				a := &store.Aggregate{Owner: owners[i%3], Key: "k/" + string(rune('a'+i)), Content: []byte(`{}`),
					CreationTime: float64(i % 4), LastUpdateTime: float64(i % 5), OriginalHash: "x", LastRevisionHash: "y"}
				if err := tx.PutAggregate(ctx, a); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []store.AggregateFilter{{}, {SortOrder: store.Ascending}, {SortBy: "creation_time"}, {SortBy: "creation_time", SortOrder: store.Ascending, Owners: []string{"0xA", "0xC"}}} {
			all, err := db.QueryAggregates(ctx, f, store.Page{})
			if err != nil {
				t.Fatal(err)
			}
			var walked []string
			cur := &store.Cursor{}
			for i := 0; ; i++ {
				page, err := db.QueryAggregates(ctx, f, store.Page{Size: 5, Cursor: cur})
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range page {
					walked = append(walked, a.Owner+"/"+a.Key)
				}
				if len(page) < 5 || i > 10 {
					break
				}
				c := AggregateCursor(page[len(page)-1], f.SortBy)
				cur = &c
			}
			var want []string
			for _, a := range all {
				want = append(want, a.Owner+"/"+a.Key)
			}
			if strings.Join(walked, " ") != strings.Join(want, " ") {
				t.Errorf("%+v: cursor walk %v, want %v", f, walked, want)
			}
		}
	})
}

func TestGroupCommit(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := testCtx(t)
		// Hold the write lock so that the committer blocks on its first batch
		// while every other caller queues up; they must then share one commit.
		if err := db.lockWrite(ctx); err != nil {
			t.Fatal(err)
		}
		const callers = 30
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := message.HashContent([]byte{byte(i)})
				p := &store.Pending{Message: message.Message{Chain: "ETH", Sender: "0xA", Type: "POST", ItemType: "storage",
					ItemHash: h, Time: message.TimeFromSeconds(1)}, Raw: []byte(`{}`)}
				_, err := db.Enqueue(ctx, []*store.Pending{p})
				errs <- err
			}()
		}
		// Wait until every request is with the committer or queued for it.
		for db.received.Load()+int64(len(db.enq)) < callers {
			if ctx.Err() != nil {
				t.Fatal("callers never queued")
			}
			runtime.Gosched()
		}
		before := db.commits.Load()
		db.unlockWrite()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := db.commits.Load() - before; n > 2 {
			t.Errorf("%d callers took %d commits, want at most 2 (group commit)", callers, n)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != callers {
			t.Errorf("pending = %d, %v", n, err)
		}
	})
}

func TestCloseStopsCommitter(t *testing.T) {
	db := openSQLite(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.committerDone:
	default:
		t.Fatal("the committer goroutine is still running after Close")
	}
	if _, err := db.Enqueue(testCtx(t), []*store.Pending{{Message: message.Message{ItemHash: "h", Sender: "s"}}}); err != ErrClosed {
		t.Errorf("enqueue after close: %v, want ErrClosed", err)
	}
}
