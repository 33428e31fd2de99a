package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// Page sizes in cursor mode.
const (
	defaultCursorPage = 20
	maxCursorPage     = 200
)

// pageLimit returns the row limit of a page (0 for no limit) and whether it is
// in cursor mode.
func pageLimit(p store.Page) (int, bool) {
	if p.Cursor != nil {
		switch {
		case p.Size <= 0:
			return defaultCursorPage, true
		case p.Size > maxCursorPage:
			return maxCursorPage, true
		}
		return p.Size, true
	}
	if p.Size < 0 {
		return 0, false
	}
	return p.Size, false
}

// writeLimit appends LIMIT (one extra row in cursor mode, to know whether a
// next page exists) and, in page mode, OFFSET.
func writeLimit(b *builder, p store.Page, limit int, cursorMode bool) {
	switch {
	case cursorMode:
		b.WriteString(" LIMIT " + b.arg(int64(limit+1)))
	case limit > 0:
		number := max(p.Number, 1)
		b.WriteString(" LIMIT " + b.arg(int64(limit)) + " OFFSET " + b.arg(int64(number-1)*int64(limit)))
	}
}

// orderBy orders by time in the given direction, ties by hash ascending.
func orderBy(timeCol, hashCol string, o store.SortOrder) string {
	if o == store.Ascending {
		return " ORDER BY " + timeCol + " ASC, " + hashCol + " ASC"
	}
	return " ORDER BY " + timeCol + " DESC, " + hashCol + " ASC"
}

// keyset is the cursor-mode condition selecting the rows after c in the order
// orderBy gives. The leading inclusive bound on time lets both planners use it
// as an index range.
func keyset(b *builder, timeCol, hashCol string, o store.SortOrder, c store.Cursor) string {
	t, h := b.arg(c.Time), b.arg(c.Hash)
	if o == store.Ascending {
		return fmt.Sprintf("%s >= %s AND (%s > %s OR %s > %s)", timeCol, t, timeCol, t, hashCol, h)
	}
	return fmt.Sprintf("%s <= %s AND (%s < %s OR %s > %s)", timeCol, t, timeCol, t, hashCol, h)
}

// statusCondition turns a status filter into a condition on messages.status.
// The messages table only holds processed and removing messages, so a filter
// naming neither matches nothing (none=true). Values are inlined, so that the
// partial index on removing messages applies.
func statusCondition(statuses []message.Status) (cond string, none bool) {
	if len(statuses) == 0 {
		return "", false
	}
	p := slices.Contains(statuses, message.StatusProcessed)
	r := slices.Contains(statuses, message.StatusRemoving)
	switch {
	case p && r:
		return "", false
	case p:
		return "m.status = 'processed'", false
	case r:
		return "m.status = 'removing'", false
	}
	return "", true
}

func chainStrings(cs []message.Chain) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

func typeStrings(ts []message.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// messageFilterSQL writes the conditions of a MessageFilter over messages (alias
// m). With tagJoin the caller joins message_tags (alias t) on the single tag
// of the filter, and the time bounds apply to t.time. none reports a filter
// that can match no stored message.
func messageFilterSQL(b *builder, f store.MessageFilter, tagJoin bool) (w where, none bool) {
	in := func(col string, vals []string) {
		if len(vals) > 0 {
			w = append(w, col+" IN "+b.list(vals))
		}
	}
	in("m.item_hash", f.Hashes)
	in("m.sender", f.Senders)
	in("m.owner", f.Owners)
	in("m.content_ref", f.Refs)
	in("m.content_item_hash", f.ContentHashes)
	in("m.content_key", f.ContentKeys)
	in("m.content_type", f.ContentTypes)
	in("m.chain", chainStrings(f.Chains))
	in("m.channel", f.Channels)
	in("m.type", typeStrings(f.Types))
	in("m.payment_type", f.PaymentTypes)
	timeCol := "m.time"
	switch {
	case tagJoin:
		w = append(w, "t.tag = "+b.arg(f.Tags[0]))
		timeCol = "t.time"
	case len(f.Tags) > 0:
		w = append(w, "m.item_hash IN (SELECT item_hash FROM message_tags WHERE tag IN "+b.list(f.Tags)+")")
	}
	cond, none := statusCondition(f.Statuses)
	if cond != "" {
		w = append(w, cond)
	}
	if f.StartDate > 0 {
		w = append(w, timeCol+" >= "+b.arg(f.StartDate))
	}
	if f.EndDate > 0 {
		w = append(w, timeCol+" < "+b.arg(f.EndDate))
	}
	return w, none
}

// QueryMessages lists messages by (time, item_hash) in f.SortOrder (ties by
// item_hash ascending). Page mode uses LIMIT/OFFSET; cursor mode (p.Cursor set;
// a cursor with an empty Hash is the first page) uses keyset pagination on
// (time, item_hash) and returns the next cursor, nil at the end. A filter on
// one tag walks the tag's (tag, time, item_hash) index instead of the
// messages' indexes.
func (db *DB) QueryMessages(ctx context.Context, f store.MessageFilter, p store.Page) ([]*store.Message, *store.Cursor, error) {
	var b builder
	tagJoin := len(distinct(f.Tags)) == 1
	w, none := messageFilterSQL(&b, f, tagJoin)
	if none {
		return []*store.Message{}, nil, nil
	}
	from, timeCol, hashCol := " FROM messages m", "m.time", "m.item_hash"
	if tagJoin {
		from, timeCol, hashCol = " FROM message_tags t JOIN messages m ON m.item_hash = t.item_hash", "t.time", "t.item_hash"
	}
	limit, cursorMode := pageLimit(p)
	if cursorMode && p.Cursor.Hash != "" {
		w = append(w, keyset(&b, timeCol, hashCol, f.SortOrder, *p.Cursor))
	}
	b.WriteString("SELECT " + prefixed("m.", messageCols) + from + w.String())
	b.WriteString(orderBy(timeCol, hashCol, f.SortOrder))
	writeLimit(&b, p, limit, cursorMode)
	rows, err := db.r.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, nil, wrap(err, "query messages")
	}
	defer rows.Close()
	out := []*store.Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, nil, wrap(err, "query messages")
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, wrap(err, "query messages")
	}
	var next *store.Cursor
	if cursorMode && len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = &store.Cursor{Time: last.Time.Seconds(), Hash: last.ItemHash}
	}
	return out, next, nil
}

// prefixed qualifies a comma-separated column list with an alias.
func prefixed(alias, cols string) string {
	var b []byte
	start := 0
	for i := 0; i <= len(cols); i++ {
		if i == len(cols) || cols[i] == ',' {
			col := cols[start:i]
			for len(col) > 0 && col[0] == ' ' {
				col = col[1:]
			}
			if len(b) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, alias...)
			b = append(b, col...)
			start = i + 1
		}
	}
	return string(b)
}

// countable reports whether the counters can answer a filter: only types,
// statuses, and either senders or owners.
func countable(f store.MessageFilter) bool {
	return len(f.Hashes) == 0 && len(f.Refs) == 0 && len(f.ContentHashes) == 0 && len(f.ContentKeys) == 0 &&
		len(f.ContentTypes) == 0 && len(f.Chains) == 0 && len(f.Channels) == 0 && len(f.Tags) == 0 &&
		len(f.PaymentTypes) == 0 && f.StartDate == 0 && f.EndDate == 0 && (len(f.Senders) == 0 || len(f.Owners) == 0)
}

// CountMessages counts the messages QueryMessages would list without paging:
// from message_counts when the filter has only types, statuses and senders or
// owners, with COUNT(*) otherwise.
func (db *DB) CountMessages(ctx context.Context, f store.MessageFilter) (int64, error) {
	var b builder
	if !countable(f) {
		w, none := messageFilterSQL(&b, f, false)
		if none {
			return 0, nil
		}
		var n int64
		err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages m"+w.String(), b.args...).Scan(&n)
		return n, wrap(err, "count messages")
	}
	statuses := []string{}
	for _, s := range []message.Status{message.StatusProcessed, message.StatusRemoving} {
		if len(f.Statuses) == 0 || slices.Contains(f.Statuses, s) {
			statuses = append(statuses, string(s))
		}
	}
	if len(statuses) == 0 {
		return 0, nil
	}
	w := where{"status IN " + b.list(statuses)}
	switch {
	case len(f.Senders) > 0:
		w = append(w, "kind = 's'", "address IN "+b.list(distinct(f.Senders)))
	case len(f.Owners) > 0:
		w = append(w, "kind = 'o'", "address IN "+b.list(distinct(f.Owners)))
	default:
		w = append(w, "kind = ''", "address = ''")
	}
	if len(f.Types) > 0 {
		w = append(w, "type IN "+b.list(distinct(typeStrings(f.Types))))
	}
	var n sql.NullInt64
	err := db.r.QueryRowContext(ctx, "SELECT SUM(n) FROM message_counts"+w.String(), b.args...).Scan(&n)
	return n.Int64, wrap(err, "count messages")
}

// MessageHashes lists item hashes with a status (all when empty) by reception
// time in order, ties by hash; start ≤ reception time < end in unix seconds (0
// is unbounded). It pages with p.Size and p.Number; a cursor is ignored.
func (db *DB) MessageHashes(ctx context.Context, status message.Status, start, end float64, order store.SortOrder, p store.Page) ([]string, error) {
	var b builder
	var w where
	if status != "" {
		w = append(w, "status = "+b.arg(string(status)))
	}
	if start > 0 {
		w = append(w, "reception_time >= "+b.arg(int64(start*1e9)))
	}
	if end > 0 {
		w = append(w, "reception_time < "+b.arg(int64(end*1e9)))
	}
	b.WriteString("SELECT item_hash FROM message_status" + w.String() + orderBy("reception_time", "item_hash", order))
	p.Cursor = nil
	limit, _ := pageLimit(p)
	writeLimit(&b, p, limit, false)
	rows, err := db.r.QueryContext(ctx, b.String(), b.args...)
	return collectStrings(rows, err, "message hashes")
}

// Channels lists the distinct channels of stored (processed or removing)
// messages, in bytewise order. It walks the channel index with one lookup per
// channel (a loose index scan), so its cost grows with the number of channels,
// not of messages.
func (db *DB) Channels(ctx context.Context) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `WITH RECURSIVE c (channel) AS (
		SELECT MIN(channel) FROM messages WHERE channel IS NOT NULL
		UNION ALL
		SELECT (SELECT MIN(m.channel) FROM messages m WHERE m.channel > c.channel) FROM c WHERE c.channel IS NOT NULL
	) SELECT channel FROM c WHERE channel IS NOT NULL`)
	return collectStrings(rows, err, "channels")
}

// AddressChannels lists the distinct channels of an owner's stored messages.
func (db *DB) AddressChannels(ctx context.Context, owner string) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT DISTINCT channel FROM messages WHERE owner = $1 AND channel IS NOT NULL ORDER BY channel", owner)
	return collectStrings(rows, err, "address channels")
}

// AddressStats counts processed messages by type for each sender address (as
// pyaleph's address stats do), from the counters. With no addresses it lists
// every sender in bytewise order. Addresses without processed messages are
// left out.
func (db *DB) AddressStats(ctx context.Context, addresses []string) ([]*store.AddressStats, error) {
	var b builder
	w := where{"kind = 's'", "status = 'processed'", "n > 0"}
	addresses = distinct(addresses)
	if len(addresses) > 0 {
		w = append(w, "address IN "+b.list(addresses))
	}
	rows, err := db.r.QueryContext(ctx, "SELECT address, type, n FROM message_counts"+w.String()+" ORDER BY address, type", b.args...)
	if err != nil {
		return nil, wrap(err, "address stats")
	}
	defer rows.Close()
	byAddr := map[string]*store.AddressStats{}
	var order []string
	for rows.Next() {
		var (
			addr, typ string
			n         int64
		)
		if err := rows.Scan(&addr, &typ, &n); err != nil {
			return nil, wrap(err, "address stats")
		}
		s := byAddr[addr]
		if s == nil {
			s = &store.AddressStats{Address: addr, ByType: map[message.Type]int64{}}
			byAddr[addr] = s
			order = append(order, addr)
		}
		s.ByType[message.Type(typ)] += n
		s.Messages += n
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "address stats")
	}
	if len(addresses) > 0 {
		order = order[:0]
		for _, a := range addresses {
			if byAddr[a] != nil {
				order = append(order, a)
			}
		}
	}
	out := make([]*store.AddressStats, 0, len(order))
	for _, a := range order {
		out = append(out, byAddr[a])
	}
	return out, nil
}
