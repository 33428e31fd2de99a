package sqlstore

import (
	"github.com/go-aleph/go-aleph/internal/pgtest"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// dump renders every row of a query as a line, for comparing two stores.
func dump(t *testing.T, db *DB, query string) []string {
	t.Helper()
	rows, err := db.r.QueryContext(testCtx(t), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, v := range vals {
			fmt.Fprintf(&b, "%v:%q ", v.Valid, v.String)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRows fails unless both stores hold the same rows for each query.
func sameRows(t *testing.T, a, b *DB, queries ...string) {
	t.Helper()
	for _, q := range queries {
		x, y := dump(t, a, q), dump(t, b, q)
		if len(x) == 0 {
			t.Errorf("%s: no rows; the comparison proves nothing", q)
		}
		if strings.Join(x, "\n") != strings.Join(y, "\n") {
			t.Errorf("%s differs: bulk has %d rows, one by one %d", q, len(x), len(y))
		}
	}
}

// openPair opens two fresh stores of a backend.
func openPair(t *testing.T, backend string) (*DB, *DB) {
	t.Helper()
	if backend == "postgres" {
		return openPostgres(t), openPostgres(t)
	}
	return openSQLite(t), openSQLite(t)
}

func forEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) {
			if b == "postgres" {
				pgtest.DSN(t)
			}
			fn(t, b)
		})
	}
}

func mustUpdate(t *testing.T, db *DB, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := testCtx(t)
	if err := db.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// TestInsertMessagesMatchesInsertMessage writes the same messages (every type,
// both stored statuses, tags with duplicates, owners other than senders;
// more than one chunk) with InsertMessages and with InsertMessage one by one:
// rows, tags and counters must be identical.
func TestInsertMessagesMatchesInsertMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		bulk, single := openPair(t, backend)
		ms := make([]*store.Message, 300)
		for i := range ms {
			ms[i] = genMessage(i)
		}
		ms[0].Tags = []string{"dup", "x", "dup"}
		mustUpdate(t, bulk, func(ctx context.Context, tx store.Tx) error { return tx.InsertMessages(ctx, ms) })
		mustUpdate(t, single, func(ctx context.Context, tx store.Tx) error {
			for _, m := range ms {
				if err := tx.InsertMessage(ctx, m); err != nil {
					return err
				}
			}
			return nil
		})
		sameRows(t, bulk, single,
			"SELECT "+messageCols+" FROM messages ORDER BY item_hash",
			"SELECT item_hash, tag, time FROM message_tags ORDER BY item_hash, tag",
			"SELECT kind, address, type, status, n FROM message_counts ORDER BY kind, address, type, status")
	})
}

// TestInsertMessagesConflict: hashes already stored or given twice are
// reported with ErrConflict after the others are inserted, counted once, and
// the transaction goes on.
func TestInsertMessagesConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		db, _ := openPair(t, backend)
		old, a, b := genMessage(1), genMessage(2), genMessage(3)
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error { return tx.InsertMessage(ctx, old) })
		changed := *old
		changed.Sender = "0xSomeoneElse"
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error {
			err := tx.InsertMessages(ctx, []*store.Message{a, &changed, a})
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("conflicting batch: %v, want ErrConflict", err)
			}
			return tx.InsertMessages(ctx, []*store.Message{b})
		})
		ctx := testCtx(t)
		for _, m := range []*store.Message{old, a, b} {
			got, err := db.GetMessage(ctx, m.ItemHash)
			if err != nil || got.Sender != m.Sender {
				t.Errorf("message %d: %+v, %v", m.Size, got, err)
			}
		}
		if n, err := db.CountMessages(ctx, store.MessageFilter{Statuses: []message.Status{message.StatusProcessed, message.StatusRemoving}}); err != nil || n != 3 {
			t.Errorf("counted %d, %v; want 3", n, err)
		}
		// An invalid message fails the call before anything is written.
		c := genMessage(4)
		err := db.Update(ctx, func(tx store.Tx) error {
			if err := tx.InsertMessages(ctx, []*store.Message{c, {}}); err == nil {
				t.Error("a message without a hash was accepted")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetMessage(ctx, c.ItemHash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("valid message of a failed call was written: %v", err)
		}
	})
}

// TestStatusesBulk: SetStatuses applies records in order (later status wins,
// a zero reception time keeps the one before or the stored one) and
// GetStatuses returns exactly the hashes that have a record, past a chunk.
func TestStatusesBulk(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		db, _ := openPair(t, backend)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		h := func(i int) string { return message.HashContent([]byte(fmt.Sprint("status ", i))) }
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error {
			return tx.SetStatus(ctx, store.StatusRecord{ItemHash: h(0), Status: message.StatusPending, ReceptionTime: t0})
		})
		var recs []store.StatusRecord
		for i := 1; i < 300; i++ {
			recs = append(recs, store.StatusRecord{ItemHash: h(i), Status: message.StatusPending, ReceptionTime: t0.Add(time.Duration(i) * time.Second)})
		}
		recs = append(recs,
			store.StatusRecord{ItemHash: h(0), Status: message.StatusProcessed},                                       // keeps the stored time
			store.StatusRecord{ItemHash: h(1), Status: message.StatusRejected},                                        // keeps the earlier record's
			store.StatusRecord{ItemHash: h(2), Status: message.StatusForgotten, ReceptionTime: t0.Add(time.Hour)},     // replaces it
			store.StatusRecord{ItemHash: h(2), Status: message.StatusProcessed, ReceptionTime: t0.Add(2 * time.Hour)}, // and again
		)
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error { return tx.SetStatuses(ctx, recs) })
		want := map[string]store.StatusRecord{
			h(0):   {ItemHash: h(0), Status: message.StatusProcessed, ReceptionTime: t0},
			h(1):   {ItemHash: h(1), Status: message.StatusRejected, ReceptionTime: t0.Add(time.Second)},
			h(2):   {ItemHash: h(2), Status: message.StatusProcessed, ReceptionTime: t0.Add(2 * time.Hour)},
			h(299): {ItemHash: h(299), Status: message.StatusPending, ReceptionTime: t0.Add(299 * time.Second)},
		}
		var hashes []string
		for i := range 300 {
			hashes = append(hashes, h(i))
		}
		hashes = append(hashes, h(1000), h(1), h(1001))
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.GetStatuses(ctx, hashes)
			if err != nil {
				return err
			}
			if len(got) != 300 {
				t.Errorf("%d records, want 300 (unknown hashes are left out)", len(got))
			}
			for k, w := range want {
				if g := got[k]; g.ItemHash != w.ItemHash || g.Status != w.Status || !g.ReceptionTime.Equal(w.ReceptionTime) {
					t.Errorf("status %s = %+v, want %+v", k[:8], g, w)
				}
			}
			for k, w := range want {
				if g, err := tx.GetStatus(ctx, k); err != nil || g.Status != w.Status || !g.ReceptionTime.Equal(w.ReceptionTime) {
					t.Errorf("GetStatus %s = %+v, %v", k[:8], g, err)
				}
			}
			if err := tx.SetStatuses(ctx, []store.StatusRecord{{ItemHash: h(5)}}); err == nil {
				t.Error("a record without a status was accepted")
			}
			return nil
		})
	})
}

// TestDeletePendings deletes queue rows by id, skipping missing ids.
func TestDeletePendings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		db, _ := openPair(t, backend)
		ctx := testCtx(t)
		var ps []*store.Pending
		for i := range 5 {
			ps = append(ps, &store.Pending{Message: message.Message{Chain: "ETH", Sender: "0xA", Type: "POST", ItemType: "inline",
				ItemHash: message.HashContent([]byte{byte(i)}), Time: message.TimeFromSeconds(1)}, Raw: []byte(`{}`)})
		}
		if _, err := db.Enqueue(ctx, ps); err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error {
			return tx.DeletePendings(ctx, []int64{ps[0].ID, ps[3].ID, ps[4].ID + 1000, ps[0].ID})
		})
		if n, err := db.PendingCount(ctx); err != nil || n != 3 {
			t.Errorf("pending = %d, %v; want 3", n, err)
		}
		if left, err := db.PendingByHash(ctx, ps[3].Message.ItemHash); err != nil || len(left) != 0 {
			t.Errorf("deleted row still queued: %d, %v", len(left), err)
		}
	})
}

// TestInsertPostsMatchesInsertPost writes originals (with tags), amends and
// an original given with its latest amend through InsertPosts and through
// InsertPost one by one: posts and post tags must be identical; conflicts
// are reported after the others are inserted.
func TestInsertPostsMatchesInsertPost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		bulk, single := openPair(t, backend)
		hash := func(s string) string { return message.HashContent([]byte(s)) }
		var ps []*store.Post
		for i := range 150 {
			ps = append(ps, &store.Post{ItemHash: hash(fmt.Sprint("o", i)), Owner: fmt.Sprintf("0x%d", i%7), Type: "blog",
				Channel: "C", Content: []byte(fmt.Sprintf(`{"i":%d}`, i)), CreationTime: float64(1000 + i), Tags: []string{"t", fmt.Sprint("t", i%3), "t"}})
		}
		amend := &store.Post{ItemHash: hash("a1"), Owner: "0x1", Type: "amend", Ref: ps[1].ItemHash, Amends: ps[1].ItemHash,
			Content: []byte(`{"v":1}`), CreationTime: 2000, Tags: []string{"amended"}}
		withLatest := &store.Post{ItemHash: hash("o-latest"), Owner: "0x2", Type: "note", Content: []byte(`{}`), CreationTime: 1500,
			LatestAmend: hash("a-latest"), Tags: []string{"old"}}
		latest := &store.Post{ItemHash: hash("a-latest"), Owner: "0x2", Type: "amend", Ref: withLatest.ItemHash, Amends: withLatest.ItemHash,
			Content: []byte(`{"new":1}`), CreationTime: 1600, Tags: []string{"new"}}
		mustUpdate(t, bulk, func(ctx context.Context, tx store.Tx) error {
			return tx.InsertPosts(ctx, append(ps, amend, withLatest, latest))
		})
		mustUpdate(t, single, func(ctx context.Context, tx store.Tx) error {
			for _, p := range append(ps, amend, latest, withLatest) {
				if err := tx.InsertPost(ctx, p); err != nil {
					return err
				}
			}
			return nil
		})
		sameRows(t, bulk, single,
			"SELECT "+postCols+", last_updated FROM posts ORDER BY item_hash",
			"SELECT item_hash, tag FROM post_tags ORDER BY item_hash, tag")

		extra := &store.Post{ItemHash: hash("extra"), Owner: "0x9", Type: "blog", Content: []byte(`{}`), CreationTime: 3000}
		mustUpdate(t, bulk, func(ctx context.Context, tx store.Tx) error {
			if err := tx.InsertPosts(ctx, []*store.Post{ps[0], extra, extra}); !errors.Is(err, store.ErrConflict) {
				t.Errorf("conflicting posts: %v, want ErrConflict", err)
			}
			got, err := tx.GetPost(ctx, extra.ItemHash)
			if err != nil || got.Owner != extra.Owner {
				t.Errorf("the post beside the conflicts: %+v, %v", got, err)
			}
			return nil
		})
	})
}

// TestEnqueueClearsRejection: a hash set back from rejected to pending loses
// its rejection record; a hash whose status stays (processed) keeps its own.
func TestEnqueueClearsRejection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		db, _ := openPair(t, backend)
		ctx := testCtx(t)
		pending := func(label string) *store.Pending {
			return &store.Pending{Message: message.Message{Chain: "ETH", Sender: "0xA", Type: "POST", ItemType: "inline",
				ItemHash: message.HashContent([]byte(label)), Signature: "0xsig", Time: message.TimeFromSeconds(1)},
				Raw: []byte(`{}`), ReceptionTime: time.Unix(100, 0)}
		}
		rejected, kept, fresh := pending("rejected"), pending("kept"), pending("fresh")
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error {
			for _, c := range []struct {
				p *store.Pending
				s message.Status
			}{{rejected, message.StatusRejected}, {kept, message.StatusProcessed}} {
				if err := tx.PutRejected(ctx, &store.Rejected{ItemHash: c.p.Message.ItemHash, Message: []byte(`{}`), ErrorCode: 1}); err != nil {
					return err
				}
				if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: c.p.Message.ItemHash, Status: c.s, ReceptionTime: time.Unix(1, 0)}); err != nil {
					return err
				}
			}
			return nil
		})
		if q, err := db.Enqueue(ctx, []*store.Pending{rejected, kept, fresh}); err != nil || !q[0] || !q[1] || !q[2] {
			t.Fatalf("enqueue: %v, %v", q, err)
		}
		if _, err := db.GetRejected(ctx, rejected.Message.ItemHash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rejection of a hash set back to pending: %v, want ErrNotFound", err)
		}
		if st, err := db.GetStatus(ctx, rejected.Message.ItemHash); err != nil || st.Status != message.StatusPending {
			t.Errorf("status %+v, %v", st, err)
		}
		if _, err := db.GetRejected(ctx, kept.Message.ItemHash); err != nil {
			t.Errorf("rejection of a processed hash: %v, want kept", err)
		}
		if st, err := db.GetStatus(ctx, kept.Message.ItemHash); err != nil || st.Status != message.StatusProcessed {
			t.Errorf("status %+v, %v", st, err)
		}
	})
}

// TestWriterStatementsCached: the statements of a write transaction are
// prepared on the writer once and bound to later transactions.
func TestWriterStatementsCached(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		db, _ := openPair(t, backend)
		const text = "SELECT status, reception_time FROM message_status WHERE item_hash = $1"
		read := func() {
			mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error {
				for range 3 {
					if _, err := tx.GetStatus(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("get status: %w", err)
					}
				}
				return nil
			})
		}
		read()
		db.stmtMu.Lock()
		first, ok := db.stmts[text]
		db.stmtMu.Unlock()
		if !ok {
			t.Fatal("the statement was not cached on the writer")
		}
		read()
		db.stmtMu.Lock()
		again, pending := db.stmts[text], len(db.wanted)
		db.stmtMu.Unlock()
		if again != first || pending != 0 {
			t.Errorf("the cached statement was prepared again (same %v, %d wanted)", again == first, pending)
		}
	})
}

// TestCheckpointRestartsWAL: with checkpoints off the write path, a pass over
// the restart length finishes under the write lock, so the next write starts
// the WAL over instead of growing it.
func TestCheckpointRestartsWAL(t *testing.T) {
	db := openSQLite(t)
	ctx := testCtx(t)
	for i := range 40 {
		mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error { return tx.InsertMessage(ctx, genMessage(i)) })
	}
	// Under the restart length, a pass runs beside the writers.
	n := db.ck.finished.Load()
	if err := db.checkpointOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if db.ck.finished.Load() != n {
		t.Error("a short WAL was checkpointed under the write lock")
	}
	db.ck.restart.Store(8)
	before, err := db.checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.checkpointOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if db.ck.finished.Load() == n {
		t.Error("a WAL over the restart length was not finished under the write lock")
	}
	mustUpdate(t, db, func(ctx context.Context, tx store.Tx) error { return tx.InsertMessage(ctx, genMessage(1000)) })
	after, err := db.checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before < 40 || after >= before {
		t.Errorf("WAL frames %d before the restart, %d after one more write: the WAL did not start over", before, after)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.ck.done:
	default:
		t.Error("the checkpointer is still running after Close")
	}
}
