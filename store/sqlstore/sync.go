package sqlstore

import (
	"context"
	"fmt"
	"math"

	"github.com/go-aleph/go-aleph/store"
)

// SyncItems lists the anti-entropy set (messages, which are processed or
// removing, and forgotten skeletons) in (Time, ItemHash) order after the key
// after, at most limit items. Each table is read by an index-ordered keyset
// page of limit rows and the two pages are merged; a hash present in both
// (never after a committed FORGET) is listed once, as forgotten.
func (db *DB) SyncItems(ctx context.Context, after *store.SyncKey, limit int) ([]store.SyncKey, error) {
	if limit <= 0 || limit > store.MaxSyncItems {
		return nil, fmt.Errorf("sqlstore: sync items: limit %d out of range 1..%d", limit, store.MaxSyncItems)
	}
	if after != nil && (math.IsNaN(after.Time) || math.IsInf(after.Time, 0)) {
		return nil, fmt.Errorf("sqlstore: sync items: after time %v is not a finite number", after.Time)
	}
	live, err := db.syncPage(ctx, "messages", after, limit, false)
	if err != nil {
		return nil, err
	}
	gone, err := db.syncPage(ctx, "forgotten_messages", after, limit, true)
	if err != nil {
		return nil, err
	}
	out := make([]store.SyncKey, 0, min(limit, len(live)+len(gone)))
	i, j := 0, 0
	for len(out) < limit && (i < len(live) || j < len(gone)) {
		switch {
		case j == len(gone) || (i < len(live) && live[i].Less(gone[j])):
			out = append(out, live[i])
			i++
		case i < len(live) && live[i] == store.SyncKey{Time: gone[j].Time, ItemHash: gone[j].ItemHash}:
			out = append(out, gone[j])
			i++
			j++
		default:
			out = append(out, gone[j])
			j++
		}
	}
	return out, nil
}

// syncPage reads up to limit (time, item_hash) keys of table after the key.
func (db *DB) syncPage(ctx context.Context, table string, after *store.SyncKey, limit int, forgotten bool) ([]store.SyncKey, error) {
	var b builder
	b.WriteString("SELECT time, item_hash FROM " + table)
	if after != nil {
		b.WriteString(" WHERE " + keyset(&b, "time", "item_hash", store.Ascending, store.Cursor{Time: after.Time, Hash: after.ItemHash}))
	}
	b.WriteString(" ORDER BY time, item_hash LIMIT " + b.arg(int64(limit)))
	rows, err := db.r.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, wrap(err, "sync items "+table)
	}
	defer rows.Close()
	out := make([]store.SyncKey, 0, min(limit, 1024))
	for rows.Next() {
		k := store.SyncKey{Forgotten: forgotten}
		if err := rows.Scan(&k.Time, &k.ItemHash); err != nil {
			return nil, wrap(err, "sync items "+table)
		}
		out = append(out, k)
	}
	return out, wrap(rows.Err(), "sync items "+table)
}
