package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
	"fmt"
	"strings"

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

// TODO(issue 4): implement; stubs keep the build green while the file service lands.

func (t *tx) ExpireGracePins(ctx context.Context, now time.Time) (int, error) {
	return 0, errors.New("sqlstore: ExpireGracePins not implemented")
}

func (t *tx) UnpinnedFiles(ctx context.Context, limit int) ([]*store.File, error) {
	return nil, errors.New("sqlstore: UnpinnedFiles not implemented")
}

func (t *tx) DeleteFileIfUnpinned(ctx context.Context, hash string) (bool, error) {
	return false, errors.New("sqlstore: DeleteFileIfUnpinned not implemented")
}

func (db *DB) GetFile(ctx context.Context, hash string) (*store.File, error) {
	return nil, errors.New("sqlstore: GetFile not implemented")
}

func (db *DB) GetStorePin(ctx context.Context, itemHash string) (*store.FilePin, error) {
	return nil, errors.New("sqlstore: GetStorePin not implemented")
}

func (db *DB) OwnerFiles(ctx context.Context, owner string, order store.SortOrder, p store.Page) ([]*store.OwnerFile, int64, int64, error) {
	return nil, 0, 0, errors.New("sqlstore: OwnerFiles not implemented")
}
