package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/go-aleph/go-aleph/store"
)

const postCols = "item_hash, owner, type, ref, amends, channel, content, creation_time, latest_amend, tags"

func scanPost(s scanner) (*store.Post, error) {
	var (
		p                                  store.Post
		ref, amends, channel, latest, tags sql.NullString
		content                            string
	)
	if err := s.Scan(&p.ItemHash, &p.Owner, &p.Type, &ref, &amends, &channel, &content, &p.CreationTime, &latest, &tags); err != nil {
		return nil, err
	}
	p.Ref, p.Amends, p.Channel, p.LatestAmend = str(ref), str(amends), str(channel), str(latest)
	p.Content = []byte(content)
	var err error
	if p.Tags, err = parseList(tags); err != nil {
		return nil, err
	}
	return &p, nil
}

func getPost(ctx context.Context, q querier, itemHash string) (*store.Post, error) {
	p, err := scanPost(q.QueryRowContext(ctx, "SELECT "+postCols+" FROM posts WHERE item_hash = $1", itemHash))
	if err != nil {
		return nil, notFound(err, "get post")
	}
	return p, nil
}

// insertPost adds a post record. An original's view (last update time and
// tags) starts as its own; SetLatestAmend moves it to an amend.
func insertPost(ctx context.Context, q querier, p *store.Post) error {
	if p == nil || p.ItemHash == "" {
		return fmt.Errorf("sqlstore: insert post: no item hash")
	}
	tags, err := jsonList(p.Tags)
	if err != nil {
		return err
	}
	content := string(p.Content)
	if content == "" {
		content = "null"
	}
	ok, err := execAffected(ctx, q, `INSERT INTO posts (item_hash, owner, type, ref, amends, channel, content, creation_time,
		latest_amend, tags, last_updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $8) ON CONFLICT (item_hash) DO NOTHING`,
		p.ItemHash, p.Owner, p.Type, nullStr(p.Ref), nullStr(p.Amends), nullStr(p.Channel), content, p.CreationTime,
		nullStr(p.LatestAmend), tags)
	if err != nil {
		return wrap(err, "insert post")
	}
	if !ok {
		return store.ErrConflict
	}
	if p.Amends != "" {
		return nil
	}
	if p.LatestAmend != "" {
		return setLatestAmend(ctx, q, p.ItemHash, p.LatestAmend)
	}
	return insertPostTags(ctx, q, p.ItemHash, p.Tags)
}

func insertPostTags(ctx context.Context, q querier, original string, tags []string) error {
	for _, tag := range distinct(tags) {
		if _, err := q.ExecContext(ctx, "INSERT INTO post_tags (item_hash, tag) VALUES ($1, $2)", original, tag); err != nil {
			return wrap(err, "insert post tag")
		}
	}
	return nil
}

func listAmends(ctx context.Context, q querier, original string) ([]*store.Post, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+postCols+" FROM posts WHERE amends = $1 ORDER BY creation_time, item_hash", original)
	if err != nil {
		return nil, wrap(err, "list amends")
	}
	defer rows.Close()
	out := []*store.Post{}
	for rows.Next() {
		p, err := scanPost(rows)
		if err != nil {
			return nil, wrap(err, "list amends")
		}
		out = append(out, p)
	}
	return out, wrap(rows.Err(), "list amends")
}

// setLatestAmend points an original at its latest amend ("" for none) and moves
// its view (last update time, tags) to that version.
func setLatestAmend(ctx context.Context, q querier, original, amend string) error {
	var (
		updated float64
		tags    []string
	)
	orig, err := getPost(ctx, q, original)
	if err != nil {
		return err
	}
	updated, tags = orig.CreationTime, orig.Tags
	if amend != "" {
		a, err := getPost(ctx, q, amend)
		if err == store.ErrNotFound {
			return fmt.Errorf("sqlstore: set latest amend of %s: amend %s: %w", original, amend, err)
		}
		if err != nil {
			return err
		}
		updated, tags = a.CreationTime, a.Tags
	}
	if _, err := q.ExecContext(ctx, "UPDATE posts SET latest_amend = $2, last_updated = $3 WHERE item_hash = $1",
		original, nullStr(amend), updated); err != nil {
		return wrap(err, "set latest amend")
	}
	if _, err := q.ExecContext(ctx, "DELETE FROM post_tags WHERE item_hash = $1", original); err != nil {
		return wrap(err, "set latest amend")
	}
	return insertPostTags(ctx, q, original, tags)
}

// postFilterSQL writes the conditions of a PostFilter over originals (alias p).
func postFilterSQL(b *builder, f store.PostFilter) where {
	w := where{"p.amends IS NULL"}
	if len(f.Owners) > 0 {
		w = append(w, "p.owner IN "+b.list(f.Owners))
	}
	if len(f.Hashes) > 0 {
		w = append(w, "p.item_hash IN "+b.list(f.Hashes))
	}
	if len(f.Refs) > 0 {
		w = append(w, "p.ref IN "+b.list(f.Refs))
	}
	if len(f.Types) > 0 {
		w = append(w, "p.type IN "+b.list(f.Types))
	}
	if len(f.Channels) > 0 {
		w = append(w, "p.channel IN "+b.list(f.Channels))
	}
	if len(f.Tags) > 0 {
		w = append(w, "p.item_hash IN (SELECT item_hash FROM post_tags WHERE tag IN "+b.list(f.Tags)+")")
	}
	if f.StartDate > 0 {
		w = append(w, "p.last_updated >= "+b.arg(f.StartDate))
	}
	if f.EndDate > 0 {
		w = append(w, "p.last_updated < "+b.arg(f.EndDate))
	}
	return w
}

// QueryPosts lists original posts with their latest amend merged, ordered by
// last update time (the latest amend's content.time, else the original's) with
// the original hash as tie-break. In cursor mode it returns the next cursor
// (last update time, original hash), nil at the end.
func (db *DB) QueryPosts(ctx context.Context, f store.PostFilter, p store.Page) ([]*store.PostView, *store.Cursor, error) {
	var b builder
	w := postFilterSQL(&b, f)
	limit, cursorMode := pageLimit(p)
	if cursorMode && p.Cursor.Hash != "" {
		w = append(w, keyset(&b, "p.last_updated", "p.item_hash", f.SortOrder, *p.Cursor))
	}
	b.WriteString("SELECT p.item_hash, p.latest_amend, p.last_updated FROM posts p" + w.String())
	b.WriteString(orderBy("p.last_updated", "p.item_hash", f.SortOrder))
	writeLimit(&b, p, limit, cursorMode)

	type row struct {
		hash, latest string
		updated      float64
	}
	rows, err := db.r.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, nil, wrap(err, "query posts")
	}
	var list []row
	for rows.Next() {
		var (
			r      row
			latest sql.NullString
		)
		if err := rows.Scan(&r.hash, &latest, &r.updated); err != nil {
			rows.Close()
			return nil, nil, wrap(err, "query posts")
		}
		r.latest = str(latest)
		list = append(list, r)
	}
	if err := rows.Close(); err != nil {
		return nil, nil, wrap(err, "query posts")
	}
	if err := rows.Err(); err != nil {
		return nil, nil, wrap(err, "query posts")
	}
	var next *store.Cursor
	if cursorMode && len(list) > limit {
		list = list[:limit]
		last := list[len(list)-1]
		next = &store.Cursor{Time: last.updated, Hash: last.hash}
	}
	// Load the post records and messages of the page in two queries.
	var hashes []string
	for _, r := range list {
		hashes = append(hashes, r.hash)
		if r.latest != "" {
			hashes = append(hashes, r.latest)
		}
	}
	posts, msgs, err := db.loadPostsAndMessages(ctx, hashes)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*store.PostView, 0, len(list))
	for _, r := range list {
		v := &store.PostView{Original: posts[r.hash], OriginalMessage: msgs[r.hash]}
		if v.Original == nil {
			continue // deleted between the two queries
		}
		v.LatestMessage = v.OriginalMessage
		if r.latest != "" {
			v.Latest = posts[r.latest]
			if m := msgs[r.latest]; m != nil {
				v.LatestMessage = m
			}
		}
		out = append(out, v)
	}
	return out, next, nil
}

func (db *DB) loadPostsAndMessages(ctx context.Context, hashes []string) (map[string]*store.Post, map[string]*store.Message, error) {
	posts := map[string]*store.Post{}
	msgs := map[string]*store.Message{}
	if len(hashes) == 0 {
		return posts, msgs, nil
	}
	var b builder
	rows, err := db.r.QueryContext(ctx, "SELECT "+postCols+" FROM posts WHERE item_hash IN "+b.list(hashes), b.args...)
	if err != nil {
		return nil, nil, wrap(err, "load posts")
	}
	for rows.Next() {
		p, err := scanPost(rows)
		if err != nil {
			rows.Close()
			return nil, nil, wrap(err, "load posts")
		}
		posts[p.ItemHash] = p
	}
	if err := rows.Close(); err != nil {
		return nil, nil, wrap(err, "load posts")
	}
	ms, err := db.messagesByHash(ctx, hashes)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range ms {
		msgs[m.ItemHash] = m
	}
	return posts, msgs, nil
}

// messagesByHash loads the messages of the given hashes (missing ones are skipped).
func (db *DB) messagesByHash(ctx context.Context, hashes []string) ([]*store.Message, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	var b builder
	rows, err := db.r.QueryContext(ctx, "SELECT "+messageCols+" FROM messages WHERE item_hash IN "+b.list(hashes), b.args...)
	if err != nil {
		return nil, wrap(err, "load messages")
	}
	defer rows.Close()
	var out []*store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, wrap(err, "load messages")
		}
		out = append(out, m)
	}
	return out, wrap(rows.Err(), "load messages")
}

// CountPosts counts the originals QueryPosts would list without paging.
func (db *DB) CountPosts(ctx context.Context, f store.PostFilter) (int64, error) {
	var b builder
	w := postFilterSQL(&b, f)
	var n int64
	err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM posts p"+w.String(), b.args...).Scan(&n)
	return n, wrap(err, "count posts")
}

// PostTypes lists the distinct post types of an owner's posts (amends included).
func (db *DB) PostTypes(ctx context.Context, owner string) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT DISTINCT type FROM posts WHERE owner = $1 ORDER BY type", owner)
	return collectStrings(rows, err, "post types")
}
