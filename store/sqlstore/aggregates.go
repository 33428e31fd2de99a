package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-aleph/go-aleph/store"
)

const aggregateCols = "owner, key, content, creation_time, last_update_time, original_hash, last_revision_hash, dirty"

func scanAggregate(s scanner) (*store.Aggregate, error) {
	var (
		a       store.Aggregate
		content string
	)
	if err := s.Scan(&a.Owner, &a.Key, &content, &a.CreationTime, &a.LastUpdateTime, &a.OriginalHash, &a.LastRevisionHash, &a.Dirty); err != nil {
		return nil, err
	}
	a.Content = []byte(content)
	return &a, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

func insertAggregateElement(ctx context.Context, q querier, e *store.AggregateElement) error {
	if e == nil || e.ItemHash == "" {
		return fmt.Errorf("sqlstore: insert aggregate element: no item hash")
	}
	if !isObject(e.Content) {
		return fmt.Errorf("sqlstore: insert aggregate element %s: content is not a JSON object", e.ItemHash)
	}
	ok, err := execAffected(ctx, q, `INSERT INTO aggregate_elements (item_hash, key, owner, content, creation_time)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (item_hash) DO NOTHING`,
		e.ItemHash, e.Key, e.Owner, string(e.Content), e.CreationTime)
	if err != nil {
		return wrap(err, "insert aggregate element")
	}
	if !ok {
		return store.ErrConflict
	}
	return nil
}

const elementCols = "item_hash, key, owner, content, creation_time"

func scanElement(s scanner) (*store.AggregateElement, error) {
	var (
		e       store.AggregateElement
		content string
	)
	if err := s.Scan(&e.ItemHash, &e.Key, &e.Owner, &content, &e.CreationTime); err != nil {
		return nil, err
	}
	e.Content = []byte(content)
	return &e, nil
}

func getAggregateElement(ctx context.Context, q querier, itemHash string) (*store.AggregateElement, error) {
	e, err := scanElement(q.QueryRowContext(ctx, "SELECT "+elementCols+" FROM aggregate_elements WHERE item_hash = $1", itemHash))
	if err != nil {
		return nil, notFound(err, "get aggregate element")
	}
	return e, nil
}

func listAggregateElements(ctx context.Context, q querier, owner, key string) ([]*store.AggregateElement, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+elementCols+" FROM aggregate_elements WHERE owner = $1 AND key = $2 ORDER BY creation_time, item_hash",
		owner, key)
	if err != nil {
		return nil, wrap(err, "list aggregate elements")
	}
	defer rows.Close()
	out := []*store.AggregateElement{}
	for rows.Next() {
		e, err := scanElement(rows)
		if err != nil {
			return nil, wrap(err, "list aggregate elements")
		}
		out = append(out, e)
	}
	return out, wrap(rows.Err(), "list aggregate elements")
}

func getAggregate(ctx context.Context, q querier, owner, key string) (*store.Aggregate, error) {
	a, err := scanAggregate(q.QueryRowContext(ctx, "SELECT "+aggregateCols+" FROM aggregates WHERE owner = $1 AND key = $2", owner, key))
	if err != nil {
		return nil, notFound(err, "get aggregate")
	}
	return a, nil
}

func putAggregate(ctx context.Context, q querier, a *store.Aggregate) error {
	if a == nil {
		return fmt.Errorf("sqlstore: put aggregate: nil")
	}
	if !isObject(a.Content) {
		return fmt.Errorf("sqlstore: put aggregate %s/%s: content is not a JSON object", a.Owner, a.Key)
	}
	_, err := q.ExecContext(ctx, `INSERT INTO aggregates (owner, key, content, creation_time, last_update_time, original_hash,
		last_revision_hash, dirty) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (owner, key) DO UPDATE SET content = excluded.content, creation_time = excluded.creation_time,
		last_update_time = excluded.last_update_time, original_hash = excluded.original_hash,
		last_revision_hash = excluded.last_revision_hash, dirty = excluded.dirty`,
		a.Owner, a.Key, string(a.Content), a.CreationTime, a.LastUpdateTime, a.OriginalHash, a.LastRevisionHash, a.Dirty)
	return wrap(err, "put aggregate")
}

// MergeElements computes the compacted aggregate of elements given in
// (CreationTime, ItemHash) order: the shallow merge of their contents, a later
// element's top-level key replacing an earlier one's whole value. Keys keep the
// position of their first appearance; the result is compact JSON. It returns
// nil for no elements.
func MergeElements(elems []*store.AggregateElement) (*store.Aggregate, error) {
	if len(elems) == 0 {
		return nil, nil
	}
	var (
		keys   []string
		values = map[string]json.RawMessage{}
	)
	for _, e := range elems {
		if err := eachMember(e.Content, func(k string, v json.RawMessage) {
			if _, seen := values[k]; !seen {
				keys = append(keys, k)
			}
			values[k] = v
		}); err != nil {
			return nil, fmt.Errorf("sqlstore: merge aggregate element %s: %w", e.ItemHash, err)
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, fmt.Errorf("sqlstore: merge aggregate: %w", err)
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		b.Write(values[k])
	}
	b.WriteByte('}')
	var compact bytes.Buffer
	compact.Grow(b.Len())
	if err := json.Compact(&compact, b.Bytes()); err != nil {
		return nil, fmt.Errorf("sqlstore: merge aggregate: %w", err)
	}
	first, last := elems[0], elems[len(elems)-1]
	return &store.Aggregate{
		Key: first.Key, Owner: first.Owner, Content: compact.Bytes(),
		CreationTime: first.CreationTime, LastUpdateTime: last.CreationTime,
		OriginalHash: first.ItemHash, LastRevisionHash: last.ItemHash,
	}, nil
}

// eachMember calls fn for each member of a JSON object, in order, with the
// value's raw text. It validates the whole document once, then walks the top
// level without decoding the values.
func eachMember(raw []byte, fn func(key string, value json.RawMessage)) error {
	if !json.Valid(raw) {
		return errors.New("content is not valid JSON")
	}
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errors.New("content is not a JSON object")
	}
	i = skipSpace(raw, i+1)
	for i < len(raw) && raw[i] != '}' {
		end := stringEnd(raw, i)
		var key string
		if err := json.Unmarshal(raw[i:end], &key); err != nil {
			return fmt.Errorf("content key: %w", err)
		}
		i = skipSpace(raw, end)
		i = skipSpace(raw, i+1) // the colon
		vend := valueEnd(raw, i)
		fn(key, raw[i:vend])
		i = skipSpace(raw, vend)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the JSON string starting at b[i] ('"').
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index after the JSON value starting at b[i], in a
// document already known to be valid.
func valueEnd(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i = stringEnd(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// recompute rebuilds the aggregate (owner, key) from its elements inside a
// write transaction, deleting it when no element is left. It returns the new
// record, nil when deleted.
func recompute(ctx context.Context, q querier, owner, key string) (*store.Aggregate, error) {
	elems, err := listAggregateElements(ctx, q, owner, key)
	if err != nil {
		return nil, err
	}
	a, err := MergeElements(elems)
	if err != nil {
		return nil, err
	}
	if a == nil {
		_, err := q.ExecContext(ctx, "DELETE FROM aggregates WHERE owner = $1 AND key = $2", owner, key)
		return nil, wrap(err, "delete empty aggregate")
	}
	return a, putAggregate(ctx, q, a)
}

// refreshDirty recomputes the dirty aggregates among list, in one write
// transaction, and returns the list with fresh records (aggregates left with
// no element are dropped).
func (db *DB) refreshDirty(ctx context.Context, list []*store.Aggregate) ([]*store.Aggregate, error) {
	dirty := false
	for _, a := range list {
		dirty = dirty || a.Dirty
	}
	if !dirty {
		return list, nil
	}
	if db.isClosed() {
		return nil, ErrClosed
	}
	if err := db.lockWrite(ctx); err != nil {
		return nil, err
	}
	defer db.unlockWrite()
	out := make([]*store.Aggregate, 0, len(list))
	err := db.inTx(ctx, func(t *sql.Tx) error {
		out = out[:0]
		for _, a := range list {
			if !a.Dirty {
				out = append(out, a)
				continue
			}
			// Another writer may have recomputed it meanwhile.
			cur, err := getAggregate(ctx, t, a.Owner, a.Key)
			if err == store.ErrNotFound {
				continue
			}
			if err != nil {
				return err
			}
			if !cur.Dirty {
				out = append(out, cur)
				continue
			}
			fresh, err := recompute(ctx, t, a.Owner, a.Key)
			if err != nil {
				return err
			}
			if fresh != nil {
				out = append(out, fresh)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetAggregates returns an owner's aggregates in key order, restricted to keys
// when given, with dirty ones recomputed (and saved) first. Recomputing takes
// the write lock, so inside an Update function use Tx.GetAggregate instead.
func (db *DB) GetAggregates(ctx context.Context, owner string, keys []string) ([]*store.Aggregate, error) {
	var b builder
	w := where{"owner = " + b.arg(owner)}
	if len(keys) > 0 {
		w = append(w, "key IN "+b.list(distinct(keys)))
	}
	list, err := db.queryAggregates(ctx, "SELECT "+aggregateCols+" FROM aggregates"+w.String()+" ORDER BY key", b.args)
	if err != nil {
		return nil, err
	}
	return db.refreshDirty(ctx, list)
}

func (db *DB) queryAggregates(ctx context.Context, query string, args []any) ([]*store.Aggregate, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap(err, "query aggregates")
	}
	defer rows.Close()
	out := []*store.Aggregate{}
	for rows.Next() {
		a, err := scanAggregate(rows)
		if err != nil {
			return nil, wrap(err, "query aggregates")
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err(), "query aggregates")
}

func aggregateFilterSQL(b *builder, f store.AggregateFilter) where {
	var w where
	if len(f.Owners) > 0 {
		w = append(w, "owner IN "+b.list(f.Owners))
	}
	if len(f.Keys) > 0 {
		w = append(w, "key IN "+b.list(f.Keys))
	}
	return w
}

// QueryAggregates lists aggregates by last update time (SortBy
// "last_modified", the default) or creation time ("creation_time") in
// f.SortOrder, ties by owner then key ascending, with dirty ones recomputed.
// Page mode uses p.Size and p.Number. In cursor mode Cursor.Time is the sort
// time of the last row seen and Cursor.Hash is its owner + "/" + key (owners
// hold no "/"): the rows after it are listed (AggregateCursor builds it).
func (db *DB) QueryAggregates(ctx context.Context, f store.AggregateFilter, p store.Page) ([]*store.Aggregate, error) {
	timeCol := "last_update_time"
	switch f.SortBy {
	case "", "last_modified":
	case "creation_time":
		timeCol = "creation_time"
	default:
		return nil, fmt.Errorf("sqlstore: query aggregates: unknown sort %q", f.SortBy)
	}
	var b builder
	w := aggregateFilterSQL(&b, f)
	limit, cursorMode := pageLimit(p)
	if cursorMode && p.Cursor.Hash != "" {
		owner, key, ok := strings.Cut(p.Cursor.Hash, "/")
		if !ok {
			return nil, fmt.Errorf("sqlstore: query aggregates: cursor %q is not owner/key", p.Cursor.Hash)
		}
		t, o, k := b.arg(p.Cursor.Time), b.arg(owner), b.arg(key)
		cmp := "<"
		if f.SortOrder == store.Ascending {
			cmp = ">"
		}
		w = append(w, fmt.Sprintf("(%[1]s %[2]s %[3]s OR (%[1]s = %[3]s AND (owner > %[4]s OR (owner = %[4]s AND key > %[5]s))))",
			timeCol, cmp, t, o, k))
	}
	dir := "DESC"
	if f.SortOrder == store.Ascending {
		dir = "ASC"
	}
	b.WriteString("SELECT " + aggregateCols + " FROM aggregates" + w.String() + " ORDER BY " + timeCol + " " + dir + ", owner ASC, key ASC")
	if cursorMode {
		b.WriteString(" LIMIT " + b.arg(int64(limit)))
	} else {
		writeLimit(&b, p, limit, false)
	}
	list, err := db.queryAggregates(ctx, b.String(), b.args)
	if err != nil {
		return nil, err
	}
	return db.refreshDirty(ctx, list)
}

// AggregateCursor is the cursor QueryAggregates continues after a.
func AggregateCursor(a *store.Aggregate, sortBy string) store.Cursor {
	t := a.LastUpdateTime
	if sortBy == "creation_time" {
		t = a.CreationTime
	}
	return store.Cursor{Time: t, Hash: a.Owner + "/" + a.Key}
}

// CountAggregates counts the aggregates QueryAggregates would list without paging.
func (db *DB) CountAggregates(ctx context.Context, f store.AggregateFilter) (int64, error) {
	var b builder
	w := aggregateFilterSQL(&b, f)
	var n int64
	err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM aggregates"+w.String(), b.args...).Scan(&n)
	return n, wrap(err, "count aggregates")
}
