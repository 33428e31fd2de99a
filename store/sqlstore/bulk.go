package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// The bulk methods of store.Tx read or write the rows of a whole processing
// batch with a few multi-row statements (multirow.go).

// GetStatuses returns the status records of the hashes that have one.
func (t *tx) GetStatuses(ctx context.Context, hashes []string) (map[string]store.StatusRecord, error) {
	if t.done {
		return nil, errTxDone
	}
	hashes = distinct(hashes)
	out := make(map[string]store.StatusRecord, len(hashes))
	err := t.db.d.inList(ctx, t.stmt, "SELECT item_hash, status, reception_time FROM message_status WHERE item_hash", "text",
		stringArgs(hashes), "", func(rows *sql.Rows) error {
			var (
				rec    store.StatusRecord
				status string
				rt     int64
			)
			if err := rows.Scan(&rec.ItemHash, &status, &rt); err != nil {
				return err
			}
			rec.Status, rec.ReceptionTime = message.Status(status), fromNanos(rt)
			out[rec.ItemHash] = rec
			return nil
		})
	if err != nil {
		return nil, wrap(err, "get statuses")
	}
	return out, nil
}

// statusCols are the columns of message_status.
var statusCols = []col{{"item_hash", "text"}, {"status", "text"}, {"reception_time", "int8"}}

// SetStatuses is SetStatus for each record, in order: for a hash given twice
// the later status wins, and a zero ReceptionTime keeps the one before.
func (t *tx) SetStatuses(ctx context.Context, recs []store.StatusRecord) error {
	if t.done {
		return errTxDone
	}
	merged := make(map[string]store.StatusRecord, len(recs))
	for _, rec := range recs {
		if rec.ItemHash == "" || rec.Status == "" {
			return fmt.Errorf("sqlstore: set statuses: item hash and status are required")
		}
		if prev, ok := merged[rec.ItemHash]; ok && rec.ReceptionTime.IsZero() {
			rec.ReceptionTime = prev.ReceptionTime
		}
		merged[rec.ItemHash] = rec
	}
	hashes := sortedKeys(merged)
	rows := make([][]any, len(hashes))
	for i, h := range hashes {
		rec := merged[h]
		rows[i] = []any{h, string(rec.Status), nanos(rec.ReceptionTime)}
	}
	err := t.db.d.insertRows(ctx, t.stmt, "message_status", statusCols, rows, `
		ON CONFLICT (item_hash) DO UPDATE SET status = excluded.status,
		reception_time = CASE WHEN excluded.reception_time = 0 THEN message_status.reception_time ELSE excluded.reception_time END`, nil)
	return wrap(err, "set statuses")
}

// DeletePendings removes queue rows; missing ids are skipped.
func (t *tx) DeletePendings(ctx context.Context, ids []int64) error {
	if t.done {
		return errTxDone
	}
	vals := make([]any, len(ids))
	for i, id := range ids {
		vals[i] = id
	}
	err := t.db.d.inList(ctx, t.stmt, "DELETE FROM pending_messages WHERE id", "int8", vals, "", nil)
	return wrap(err, "delete pendings")
}

// messageInsertCols are the columns of messageArgs, with their types.
var messageInsertCols = []col{{"item_hash", "text"}, {"type", "text"}, {"chain", "text"}, {"sender", "text"},
	{"signature", "text"}, {"item_type", "text"}, {"item_content", "text"}, {"content", "text"}, {"time_text", "text"},
	{"time", "float8"}, {"channel", "text"}, {"size", "int8"}, {"owner", "text"}, {"content_type", "text"},
	{"content_ref", "text"}, {"content_key", "text"}, {"content_item_hash", "text"}, {"payment_type", "text"},
	{"tags", "text"}, {"status", "text"}, {"reception_time", "int8"}}

// counterKey is one message_counts row.
type counterKey struct{ kind, address, typ, status string }

// InsertMessages is InsertMessage for each message: it inserts, with their
// tags and counters, the messages whose hash is not stored yet. When some
// hash was (or is given twice), it returns an error wrapping
// store.ErrConflict naming it, after inserting the others. An invalid message
// fails the call before anything is written.
func (t *tx) InsertMessages(ctx context.Context, ms []*store.Message) error {
	if t.done {
		return errTxDone
	}
	type row struct {
		m      *store.Message
		status string
	}
	var (
		list     = make([]row, 0, len(ms))
		args     = make([][]any, 0, len(ms))
		seen     = make(map[string]bool, len(ms))
		conflict string
	)
	for _, m := range ms {
		a, status, err := messageArgs(m)
		if err != nil {
			return err
		}
		if seen[m.ItemHash] {
			if conflict == "" {
				conflict = m.ItemHash
			}
			continue
		}
		seen[m.ItemHash] = true
		list = append(list, row{m, string(status)})
		args = append(args, a)
	}
	inserted := make(map[string]bool, len(list))
	err := t.db.d.insertRows(ctx, t.stmt, "messages", messageInsertCols, args, " ON CONFLICT (item_hash) DO NOTHING RETURNING item_hash",
		func(rows *sql.Rows) error {
			var h string
			err := rows.Scan(&h)
			inserted[h] = true
			return err
		})
	if err != nil {
		return wrap(err, "insert messages")
	}
	var tags [][]any
	counts := map[counterKey]int64{}
	for _, r := range list {
		m := r.m
		if !inserted[m.ItemHash] {
			if conflict == "" {
				conflict = m.ItemHash
			}
			continue
		}
		for _, tag := range distinct(m.Tags) {
			tags = append(tags, []any{m.ItemHash, tag, m.Time.Seconds()})
		}
		typ := string(m.Type)
		counts[counterKey{"", "", typ, r.status}]++
		counts[counterKey{"s", m.Sender, typ, r.status}]++
		counts[counterKey{"o", m.Owner, typ, r.status}]++
	}
	err = t.db.d.insertRows(ctx, t.stmt, "message_tags", []col{{"item_hash", "text"}, {"tag", "text"}, {"time", "float8"}}, tags, "", nil)
	if err != nil {
		return wrap(err, "insert message tags")
	}
	if err := t.addCounts(ctx, counts); err != nil {
		return err
	}
	if conflict != "" {
		return fmt.Errorf("sqlstore: insert messages: %s: %w", conflict, store.ErrConflict)
	}
	return nil
}

// countCols are the columns of message_counts.
var countCols = []col{{"kind", "text"}, {"address", "text"}, {"type", "text"}, {"status", "text"}, {"n", "int8"}}

// addCounts adds the deltas to the message_counts rows, in key order.
func (t *tx) addCounts(ctx context.Context, counts map[counterKey]int64) error {
	keys := make([]counterKey, 0, len(counts))
	for k, n := range counts {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.address != b.address {
			return a.address < b.address
		}
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		return a.status < b.status
	})
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{k.kind, k.address, k.typ, k.status, counts[k]}
	}
	err := t.db.d.insertRows(ctx, t.stmt, "message_counts", countCols, rows,
		" ON CONFLICT (kind, address, type, status) DO UPDATE SET n = message_counts.n + excluded.n", nil)
	return wrap(err, "update message counts")
}

// postInsertCols are the columns InsertPosts writes, with their types.
var postInsertCols = []col{{"item_hash", "text"}, {"owner", "text"}, {"type", "text"}, {"ref", "text"}, {"amends", "text"},
	{"channel", "text"}, {"content", "text"}, {"creation_time", "float8"}, {"latest_amend", "text"}, {"tags", "text"},
	{"last_updated", "float8"}}

// InsertPosts is InsertPost for each post: it inserts the posts whose hash is
// not stored yet, with the tags of the originals (an original given with a
// LatestAmend takes its view from that amend, which must be stored or among
// posts). When some hash was (or is given twice), it returns an error
// wrapping store.ErrConflict naming it, after inserting the others. An
// invalid post fails the call before anything is written.
func (t *tx) InsertPosts(ctx context.Context, ps []*store.Post) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	var (
		list     = make([]*store.Post, 0, len(ps))
		args     = make([][]any, 0, len(ps))
		seen     = make(map[string]bool, len(ps))
		conflict string
	)
	for _, p := range ps {
		if p == nil || p.ItemHash == "" {
			return fmt.Errorf("sqlstore: insert posts: no item hash")
		}
		tags, err := jsonList(p.Tags)
		if err != nil {
			return err
		}
		if seen[p.ItemHash] {
			if conflict == "" {
				conflict = p.ItemHash
			}
			continue
		}
		seen[p.ItemHash] = true
		content := string(p.Content)
		if content == "" {
			content = "null"
		}
		list = append(list, p)
		args = append(args, []any{p.ItemHash, p.Owner, p.Type, nullStr(p.Ref), nullStr(p.Amends), nullStr(p.Channel),
			content, p.CreationTime, nullStr(p.LatestAmend), tags, p.CreationTime})
	}
	inserted := make(map[string]bool, len(list))
	err = t.db.d.insertRows(ctx, t.stmt, "posts", postInsertCols, args, " ON CONFLICT (item_hash) DO NOTHING RETURNING item_hash",
		func(rows *sql.Rows) error {
			var h string
			err := rows.Scan(&h)
			inserted[h] = true
			return err
		})
	if err != nil {
		return wrap(err, "insert posts")
	}
	var (
		tags   [][]any
		latest []*store.Post
	)
	for _, p := range list {
		switch {
		case !inserted[p.ItemHash]:
			if conflict == "" {
				conflict = p.ItemHash
			}
		case p.Amends != "":
		case p.LatestAmend != "":
			latest = append(latest, p)
		default:
			for _, tag := range distinct(p.Tags) {
				tags = append(tags, []any{p.ItemHash, tag})
			}
		}
	}
	if err := t.db.d.insertRows(ctx, t.stmt, "post_tags", []col{{"item_hash", "text"}, {"tag", "text"}}, tags, "", nil); err != nil {
		return wrap(err, "insert post tags")
	}
	for _, p := range latest {
		if err := setLatestAmend(ctx, q, p.ItemHash, p.LatestAmend); err != nil {
			return err
		}
	}
	if conflict != "" {
		return fmt.Errorf("sqlstore: insert posts: %s: %w", conflict, store.ErrConflict)
	}
	return nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
