package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// The state digest (docs/PROTOCOL-DECISIONS.md, "State digest"). Each section
// is the sha256 of its rows in a fixed order; a row is its fields, each
// written as its byte length in decimal, ':' and the bytes, then '\n'. Floats
// are written by strconv.FormatFloat(f, 'g', -1, 64), aggregate contents as
// canonical JSON (sorted keys, no spaces, numbers as written). Every ORDER BY
// is bytewise on both backends (TEXT COLLATE "C" on PostgreSQL).

// digestQueries are the sections other than aggregates: constant column
// lists, every column text.
var digestQueries = []struct{ name, query string }{
	{store.DigestPosts, `SELECT item_hash, COALESCE(latest_amend, '') FROM posts WHERE amends IS NULL ORDER BY item_hash`},
	// Grace period pins depend on the node's clock. Message and content pins
	// are held by a message: (item_hash, type) is unique among them.
	{store.DigestPins, `SELECT file_hash, type, item_hash FROM file_pins
		WHERE type IN ('message', 'content') AND item_hash IS NOT NULL ORDER BY file_hash, type, item_hash`},
	{store.DigestVMs, `SELECT item_hash, type, owner, COALESCE(replaces, '') FROM vms ORDER BY item_hash`},
}

// aggregateDigestQuery lists aggregates by (owner, key), each dirty one
// followed by its elements in merge order (non-dirty rows have NULL element
// columns), so that dirty ones are merged while streaming, without writing.
const aggregateDigestQuery = `SELECT a.owner, a.key, a.content, a.creation_time, a.last_update_time, a.original_hash,
	a.last_revision_hash, a.dirty, e.item_hash, e.content, e.creation_time
	FROM aggregates a LEFT JOIN aggregate_elements e ON a.dirty AND e.owner = a.owner AND e.key = a.key
	ORDER BY a.owner, a.key, e.creation_time, e.item_hash`

// StateDigest hashes the node's replicated state in one read transaction (a
// consistent snapshot), streaming every section.
func (db *DB) StateDigest(ctx context.Context) (*store.StateDigest, error) {
	if db.isClosed() {
		return nil, ErrClosed
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if db.d.name == postgresDialect.name {
		// One snapshot for every section.
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.r.BeginTx(ctx, opts)
	if err != nil {
		return nil, wrap(err, "state digest: begin")
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	out := &store.StateDigest{Sections: make(map[string]store.DigestSection, len(store.DigestSectionNames))}
	if out.Sections[store.DigestStatuses], err = digestStatuses(ctx, tx); err != nil {
		return nil, wrap(err, "state digest: statuses")
	}
	for _, q := range digestQueries {
		sec, err := digestTextRows(ctx, tx, q.query)
		if err != nil {
			return nil, wrap(err, "state digest: "+q.name)
		}
		out.Sections[q.name] = sec
	}
	if out.Sections[store.DigestTags], err = digestTags(ctx, tx); err != nil {
		return nil, wrap(err, "state digest: tags")
	}
	if out.Sections[store.DigestAggregates], err = digestAggregates(ctx, tx); err != nil {
		return nil, wrap(err, "state digest: aggregates")
	}
	out.Digest = store.DigestOf(out.Sections)
	return out, nil
}

// rowHasher hashes a section's rows.
type rowHasher struct {
	h   hash.Hash
	n   int64
	buf []byte
}

func newRowHasher() *rowHasher { return &rowHasher{h: sha256.New(), buf: make([]byte, 0, 512)} }

// field appends one length-prefixed field to the current row.
func (r *rowHasher) field(b []byte) {
	r.buf = strconv.AppendInt(r.buf, int64(len(b)), 10)
	r.buf = append(r.buf, ':')
	r.buf = append(r.buf, b...)
}

func (r *rowHasher) stringField(s string) {
	r.buf = strconv.AppendInt(r.buf, int64(len(s)), 10)
	r.buf = append(r.buf, ':')
	r.buf = append(r.buf, s...)
}

func (r *rowHasher) floatField(f float64) {
	var tmp [32]byte
	r.field(strconv.AppendFloat(tmp[:0], f, 'g', -1, 64))
}

// end hashes the current row and starts the next.
func (r *rowHasher) end() {
	r.buf = append(r.buf, '\n')
	r.h.Write(r.buf)
	r.buf = r.buf[:0]
	r.n++
}

func (r *rowHasher) section() store.DigestSection {
	return store.DigestSection{Count: r.n, Hash: hex.EncodeToString(r.h.Sum(nil))}
}

// digestTextRows hashes the rows of a query whose columns are all non-NULL text.
func digestTextRows(ctx context.Context, tx *sql.Tx, query string) (store.DigestSection, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return store.DigestSection{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return store.DigestSection{}, err
	}
	vals := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	r := newRowHasher()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return store.DigestSection{}, err
		}
		for _, v := range vals {
			r.field(v)
		}
		r.end()
	}
	if err := rows.Err(); err != nil {
		return store.DigestSection{}, err
	}
	return r.section(), nil
}

// digestStatuses hashes (item_hash, status) by item_hash for the replicated
// statuses. The table is read whole, in primary key order (SQLite: the
// clustered table itself), and pending and rejected records, node-local and
// few, are skipped here: a status filter in SQL can make the planner prefer
// the status index and sort.
func digestStatuses(ctx context.Context, tx *sql.Tx) (store.DigestSection, error) {
	rows, err := tx.QueryContext(ctx, "SELECT item_hash, status FROM message_status ORDER BY item_hash")
	if err != nil {
		return store.DigestSection{}, err
	}
	defer rows.Close()
	var hash, status sql.RawBytes
	r := newRowHasher()
	for rows.Next() {
		if err := rows.Scan(&hash, &status); err != nil {
			return store.DigestSection{}, err
		}
		switch message.Status(status) {
		case message.StatusProcessed, message.StatusRemoving, message.StatusRemoved, message.StatusForgotten:
			r.field(hash)
			r.field(status)
			r.end()
		}
	}
	if err := rows.Err(); err != nil {
		return store.DigestSection{}, err
	}
	return r.section(), nil
}

// digestTags hashes (tag, owner, file_hash, last_updated) by tag.
func digestTags(ctx context.Context, tx *sql.Tx) (store.DigestSection, error) {
	rows, err := tx.QueryContext(ctx, "SELECT tag, owner, file_hash, last_updated FROM file_tags ORDER BY tag")
	if err != nil {
		return store.DigestSection{}, err
	}
	defer rows.Close()
	var (
		tag, owner, file sql.RawBytes
		updated          float64
	)
	r := newRowHasher()
	for rows.Next() {
		if err := rows.Scan(&tag, &owner, &file, &updated); err != nil {
			return store.DigestSection{}, err
		}
		r.field(tag)
		r.field(owner)
		r.field(file)
		r.floatField(updated)
		r.end()
	}
	if err := rows.Err(); err != nil {
		return store.DigestSection{}, err
	}
	return r.section(), nil
}

// aggDigestRow is one aggregate as the digest hashes it.
type aggDigestRow struct {
	owner, key                        string
	content                           []byte // canonical JSON
	creation, lastUpdate              float64
	originalHash, lastRevisionHash    string
	dirty                             bool
	members                           map[string]any // dirty: merged so far
	elements                          int
	firstTime, lastTime               float64
	firstElementHash, lastElementHash string
}

// digestAggregates hashes (owner, key, canonical content, creation_time,
// last_update_time, original_hash, last_revision_hash) by (owner, key), dirty
// aggregates as their elements merge (MergeElements' rule), and those left
// without elements not at all (GetAggregates drops them).
func digestAggregates(ctx context.Context, tx *sql.Tx) (store.DigestSection, error) {
	rows, err := tx.QueryContext(ctx, aggregateDigestQuery)
	if err != nil {
		return store.DigestSection{}, err
	}
	defer rows.Close()
	r := newRowHasher()
	var cur *aggDigestRow
	flush := func() error {
		if cur == nil {
			return nil
		}
		if cur.dirty {
			if cur.elements == 0 {
				return nil
			}
			c, err := canonicalJSON(cur.members)
			if err != nil {
				return fmt.Errorf("aggregate %s/%s: %w", cur.owner, cur.key, err)
			}
			cur.content = c
			cur.creation, cur.lastUpdate = cur.firstTime, cur.lastTime
			cur.originalHash, cur.lastRevisionHash = cur.firstElementHash, cur.lastElementHash
		}
		r.stringField(cur.owner)
		r.stringField(cur.key)
		r.field(cur.content)
		r.floatField(cur.creation)
		r.floatField(cur.lastUpdate)
		r.stringField(cur.originalHash)
		r.stringField(cur.lastRevisionHash)
		r.end()
		return nil
	}
	for rows.Next() {
		var (
			a                     aggDigestRow
			content               sql.RawBytes
			elemHash, elemContent sql.NullString
			elemTime              sql.NullFloat64
		)
		if err := rows.Scan(&a.owner, &a.key, &content, &a.creation, &a.lastUpdate, &a.originalHash, &a.lastRevisionHash,
			&a.dirty, &elemHash, &elemContent, &elemTime); err != nil {
			return store.DigestSection{}, err
		}
		if cur == nil || cur.owner != a.owner || cur.key != a.key {
			if err := flush(); err != nil {
				return store.DigestSection{}, err
			}
			cur = &a
			if a.dirty {
				cur.members = map[string]any{}
			} else if cur.content, err = canonicalizeJSON(content); err != nil {
				return store.DigestSection{}, fmt.Errorf("aggregate %s/%s: %w", a.owner, a.key, err)
			}
		}
		if !cur.dirty || !elemHash.Valid {
			continue
		}
		var valueErr error
		err := eachMember([]byte(elemContent.String), func(k string, v json.RawMessage) {
			if valueErr == nil {
				cur.members[k], valueErr = decodeNumbers(v)
			}
		})
		if err == nil {
			err = valueErr
		}
		if err != nil {
			return store.DigestSection{}, fmt.Errorf("aggregate element %s: %w", elemHash.String, err)
		}
		if cur.elements == 0 {
			cur.firstTime, cur.firstElementHash = elemTime.Float64, elemHash.String
		}
		cur.lastTime, cur.lastElementHash = elemTime.Float64, elemHash.String
		cur.elements++
	}
	if err := rows.Err(); err != nil {
		return store.DigestSection{}, err
	}
	if err := flush(); err != nil {
		return store.DigestSection{}, err
	}
	return r.section(), nil
}

// decodeNumbers parses JSON keeping numbers as written (json.Number).
func decodeNumbers(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse json: %w", err)
	}
	if rest := bytes.TrimLeft(raw[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("parse json: trailing data after the value")
	}
	return v, nil
}

// canonicalJSON encodes v with sorted keys, no spaces and no HTML escaping;
// numbers decoded by decodeNumbers keep their text.
func canonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode canonical json: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// canonicalizeJSON re-encodes a JSON document canonically.
func canonicalizeJSON(raw []byte) ([]byte, error) {
	v, err := decodeNumbers(raw)
	if err != nil {
		return nil, err
	}
	return canonicalJSON(v)
}
