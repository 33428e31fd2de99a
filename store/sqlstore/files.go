package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/store"
)

func putFile(ctx context.Context, q querier, f *store.File) error {
	if f == nil || f.Hash == "" {
		return fmt.Errorf("sqlstore: put file: no hash")
	}
	_, err := q.ExecContext(ctx, `INSERT INTO files (hash, size, type) VALUES ($1, $2, $3)
		ON CONFLICT (hash) DO UPDATE SET size = excluded.size, type = excluded.type`, f.Hash, f.Size, f.Type)
	return wrap(err, "put file")
}

func getFile(ctx context.Context, q querier, hash string) (*store.File, error) {
	f := store.File{Hash: hash}
	err := q.QueryRowContext(ctx, "SELECT size, type FROM files WHERE hash = $1", hash).Scan(&f.Size, &f.Type)
	if err != nil {
		return nil, notFound(err, "get file")
	}
	return &f, nil
}

// insertFilePin adds a pin; ErrConflict when the pinning message already holds
// a pin of that type. Pins without an item hash never conflict.
func insertFilePin(ctx context.Context, q querier, p *store.FilePin) error {
	if p == nil || p.FileHash == "" || p.Type == "" {
		return fmt.Errorf("sqlstore: insert file pin: file hash and type are required")
	}
	var deleteBy any
	if p.DeleteBy != nil {
		deleteBy = nanos(*p.DeleteBy)
	}
	ok, err := execAffected(ctx, q, `INSERT INTO file_pins (file_hash, type, owner, item_hash, ref, created, delete_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		p.FileHash, p.Type, nullStr(p.Owner), nullStr(p.ItemHash), nullStr(p.Ref), p.Created, deleteBy)
	if err != nil {
		return wrap(err, "insert file pin")
	}
	if !ok {
		return store.ErrConflict
	}
	return nil
}

func countFilePins(ctx context.Context, q querier, fileHash string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, "SELECT COUNT(*) FROM file_pins WHERE file_hash = $1", fileHash).Scan(&n)
	return n, wrap(err, "count file pins")
}

func getFileTag(ctx context.Context, q querier, tag string) (*store.FileTag, error) {
	t := store.FileTag{Tag: tag}
	err := q.QueryRowContext(ctx, "SELECT owner, file_hash, last_updated FROM file_tags WHERE tag = $1", tag).
		Scan(&t.Owner, &t.FileHash, &t.LastUpdated)
	if err != nil {
		return nil, notFound(err, "get file tag")
	}
	return &t, nil
}

func putFileTag(ctx context.Context, q querier, t *store.FileTag) error {
	if t == nil || t.Tag == "" {
		return fmt.Errorf("sqlstore: put file tag: no tag")
	}
	_, err := q.ExecContext(ctx, `INSERT INTO file_tags (tag, owner, file_hash, last_updated) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tag) DO UPDATE SET owner = excluded.owner, file_hash = excluded.file_hash, last_updated = excluded.last_updated`,
		t.Tag, t.Owner, t.FileHash, t.LastUpdated)
	return wrap(err, "put file tag")
}

const pinCols = "file_hash, type, owner, item_hash, ref, created, delete_by"

func scanPin(s scanner) (*store.FilePin, error) {
	var (
		p                    store.FilePin
		owner, itemHash, ref sql.NullString
		deleteBy             sql.NullInt64
	)
	if err := s.Scan(&p.FileHash, &p.Type, &owner, &itemHash, &ref, &p.Created, &deleteBy); err != nil {
		return nil, err
	}
	p.Owner, p.ItemHash, p.Ref = str(owner), str(itemHash), str(ref)
	if deleteBy.Valid {
		t := fromNanos(deleteBy.Int64)
		p.DeleteBy = &t
	}
	return &p, nil
}

// latestPinForTag finds the newest message pin (greatest Created, then greatest
// item hash) whose tag is tag. A STORE's tag is "<owner>/<ref>" for a
// free-form ref, the ref when it is an item hash, and the item hash without a
// ref; only the first form holds a "/".
func latestPinForTag(ctx context.Context, q querier, tag string) (*store.FilePin, error) {
	const sel = "SELECT " + pinCols + " FROM file_pins WHERE type = 'message' AND "
	const order = " ORDER BY created DESC, item_hash DESC LIMIT 1"
	var row *sql.Row
	if owner, ref, ok := strings.Cut(tag, "/"); ok {
		row = q.QueryRowContext(ctx, sel+"owner = $1 AND ref = $2"+order, owner, ref)
	} else {
		row = q.QueryRowContext(ctx, sel+"(ref = $1 OR (item_hash = $1 AND ref IS NULL))"+order, tag)
	}
	p, err := scanPin(row)
	if err != nil {
		return nil, notFound(err, "latest pin for tag")
	}
	return p, nil
}

// Garbage collection (ccn-protocol.md §3.9). Writes are serialized by
// DB.Update, so a collection's transaction never interleaves with a STORE's:
// DeleteFileIfUnpinned sees either the pin or no pin, never half of a write.

func (t *tx) ExpireGracePins(ctx context.Context, now time.Time) (int, error) {
	q, err := t.use()
	if err != nil {
		return 0, err
	}
	res, err := q.ExecContext(ctx, "DELETE FROM file_pins WHERE delete_by IS NOT NULL AND delete_by < $1 AND type = 'grace_period'", nanos(now))
	if err != nil {
		return 0, wrap(err, "expire grace pins")
	}
	n, err := res.RowsAffected()
	return int(n), wrap(err, "expire grace pins")
}

// UnpinnedFiles lists files no pin holds, in hash order. Each call scans the
// files from the start (an anti-join on file_pins_file_hash); the collector
// deletes or skips what it lists, so the next call moves on.
func (t *tx) UnpinnedFiles(ctx context.Context, limit int) ([]*store.File, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []*store.File{}, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT f.hash, f.size, f.type FROM files f
		WHERE NOT EXISTS (SELECT 1 FROM file_pins p WHERE p.file_hash = f.hash)
		ORDER BY f.hash LIMIT $1`, int64(limit))
	if err != nil {
		return nil, wrap(err, "unpinned files")
	}
	defer rows.Close()
	out := []*store.File{}
	for rows.Next() {
		var f store.File
		if err := rows.Scan(&f.Hash, &f.Size, &f.Type); err != nil {
			return nil, wrap(err, "unpinned files")
		}
		out = append(out, &f)
	}
	return out, wrap(rows.Err(), "unpinned files")
}

func (t *tx) DeleteFileIfUnpinned(ctx context.Context, hash string) (bool, error) {
	q, err := t.use()
	if err != nil {
		return false, err
	}
	ok, err := execAffected(ctx, q, `DELETE FROM files WHERE hash = $1
		AND NOT EXISTS (SELECT 1 FROM file_pins WHERE file_hash = $1)`, hash)
	return ok, wrap(err, "delete unpinned file")
}

// GetFile returns a file row, or store.ErrNotFound.
func (db *DB) GetFile(ctx context.Context, hash string) (*store.File, error) {
	return getFile(ctx, db.reads(), hash)
}

// GetStorePin returns the message pin of a processed STORE, or store.ErrNotFound.
func (db *DB) GetStorePin(ctx context.Context, itemHash string) (*store.FilePin, error) {
	p, err := scanPin(db.reads().QueryRowContext(ctx,
		"SELECT "+pinCols+" FROM file_pins WHERE item_hash = $1 AND type = 'message'", itemHash))
	if err != nil {
		return nil, notFound(err, "get store pin")
	}
	return p, nil
}

// OwnerFiles lists the owner's message pins (one per processed STORE) with
// their files' size and type. A pin whose file has no row yet (a STORE
// processed without a file service) is listed with size 0 and type "file":
// the STORE is the owner's all the same. totalSize sums the listed sizes, one
// per pin, as upstream's address stats do. Pages are p.Number and p.Size (0:
// no limit); a cursor is ignored.
func (db *DB) OwnerFiles(ctx context.Context, owner string, order store.SortOrder, p store.Page) ([]*store.OwnerFile, int64, int64, error) {
	const from = " FROM file_pins p LEFT JOIN files f ON f.hash = p.file_hash WHERE p.owner = $1 AND p.type = 'message'"
	var total, totalSize int64
	if err := db.r.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(f.size), 0)"+from, owner).Scan(&total, &totalSize); err != nil {
		return nil, 0, 0, wrap(err, "owner files totals")
	}
	b := builder{args: []any{owner}}
	b.WriteString("SELECT p.file_hash, COALESCE(f.size, 0), COALESCE(f.type, 'file'), p.created, p.item_hash" + from +
		orderBy("p.created", "p.item_hash", order))
	p.Cursor = nil
	limit, _ := pageLimit(p)
	writeLimit(&b, p, limit, false)
	rows, err := db.r.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, 0, 0, wrap(err, "owner files")
	}
	defer rows.Close()
	out := []*store.OwnerFile{}
	for rows.Next() {
		var f store.OwnerFile
		if err := rows.Scan(&f.FileHash, &f.Size, &f.Type, &f.Created, &f.ItemHash); err != nil {
			return nil, 0, 0, wrap(err, "owner files")
		}
		out = append(out, &f)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, 0, wrap(err, "owner files")
	}
	return out, total, totalSize, nil
}
