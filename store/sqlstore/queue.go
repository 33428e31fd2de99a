package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// pendingCols are the columns scanPending reads, in order.
const pendingCols = "id, item_hash, sender, signature, chain, type, channel, time_text, item_type, item_content, raw, content, " +
	"reception_time, next_attempt, retries, check_signature, origin, last_error"

func scanPending(s scanner) (*store.Pending, error) {
	var (
		p                                           store.Pending
		chain, typ, timeText, itemType, raw, origin string
		channel, itemContent, content               sql.NullString
		reception, next                             int64
		lastError                                   int
	)
	if err := s.Scan(&p.ID, &p.Message.ItemHash, &p.Message.Sender, &p.Message.Signature, &chain, &typ, &channel, &timeText,
		&itemType, &itemContent, &raw, &content, &reception, &next, &p.Retries, &p.CheckSignature, &origin, &lastError); err != nil {
		return nil, err
	}
	t, err := parseTime(timeText)
	if err != nil {
		return nil, err
	}
	p.Message.Chain, p.Message.Type, p.Message.ItemType, p.Message.Time = message.Chain(chain), message.Type(typ), message.ItemType(itemType), t
	p.Message.Channel, p.Message.ItemContent = str(channel), str(itemContent)
	p.Raw, p.Content = []byte(raw), rawOrNil(content)
	p.ReceptionTime, p.NextAttempt = fromNanos(reception), fromNanos(next)
	p.Origin, p.LastError = origin, message.ErrorCode(lastError)
	return &p, nil
}

func collectPending(rows *sql.Rows, err error, what string) ([]*store.Pending, error) {
	if err != nil {
		return nil, wrap(err, what)
	}
	defer rows.Close()
	out := []*store.Pending{}
	for rows.Next() {
		p, err := scanPending(rows)
		if err != nil {
			return nil, wrap(err, what)
		}
		out = append(out, p)
	}
	return out, wrap(rows.Err(), what)
}

// Due returns up to limit pending messages with NextAttempt ≤ now, in
// (NextAttempt, ID) order.
func (db *DB) Due(ctx context.Context, now time.Time, limit int) ([]*store.Pending, error) {
	if limit <= 0 {
		return []*store.Pending{}, nil
	}
	rows, err := db.reads().QueryContext(ctx, "SELECT "+pendingCols+" FROM pending_messages WHERE next_attempt <= $1 ORDER BY next_attempt, id LIMIT $2",
		nanos(now), limit)
	return collectPending(rows, err, "due pending")
}

// NextDue returns the earliest NextAttempt in the queue, or ok=false when empty.
func (db *DB) NextDue(ctx context.Context) (time.Time, bool, error) {
	var n sql.NullInt64
	if err := db.reads().QueryRowContext(ctx, "SELECT MIN(next_attempt) FROM pending_messages").Scan(&n); err != nil {
		return time.Time{}, false, wrap(err, "next due")
	}
	if !n.Valid {
		return time.Time{}, false, nil
	}
	return fromNanos(n.Int64), true, nil
}

// PendingCount returns the queue length.
func (db *DB) PendingCount(ctx context.Context) (int64, error) {
	var n int64
	err := db.reads().QueryRowContext(ctx, "SELECT COUNT(*) FROM pending_messages").Scan(&n)
	return n, wrap(err, "pending count")
}

// PendingByHash lists the queued copies of an item hash, by id.
func (db *DB) PendingByHash(ctx context.Context, itemHash string) ([]*store.Pending, error) {
	rows, err := db.reads().QueryContext(ctx, "SELECT "+pendingCols+" FROM pending_messages WHERE item_hash = $1 ORDER BY id", itemHash)
	return collectPending(rows, err, "pending by hash")
}

// enqueueRequest is one Enqueue call waiting for the group committer.
type enqueueRequest struct {
	ctx    context.Context
	ps     []*store.Pending
	queued []bool
	err    error
	done   chan struct{}
}

// Enqueue durably adds pending messages (group commit: concurrent calls are
// written by one committer goroutine in shared transactions, and each call
// returns once its rows are committed). It skips any whose (sender, item_hash,
// signature) is already queued, and sets the status of the ones it queues to
// pending unless the hash has a status other than rejected. Queued inputs get
// their ID set. If ctx ends while the call waits, Enqueue returns ctx's error;
// rows already handed to a transaction may still be committed. Enqueue must not
// be called from inside an Update function: the commit waits for the write lock
// that Update holds.
func (db *DB) Enqueue(ctx context.Context, ps []*store.Pending) ([]bool, error) {
	for i, p := range ps {
		if p == nil || p.Message.ItemHash == "" || p.Message.Sender == "" {
			return nil, fmt.Errorf("sqlstore: enqueue: input %d has no item hash or sender", i)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: enqueue: %w", err)
	}
	if len(ps) == 0 {
		return []bool{}, nil
	}
	req := &enqueueRequest{ctx: ctx, ps: ps, done: make(chan struct{})}
	db.closeMu.RLock()
	if db.closed {
		db.closeMu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case db.enq <- req:
		db.closeMu.RUnlock()
	case <-ctx.Done():
		db.closeMu.RUnlock()
		return nil, fmt.Errorf("sqlstore: enqueue: %w", ctx.Err())
	}
	select {
	case <-req.done:
		return req.queued, req.err
	case <-ctx.Done():
		return nil, fmt.Errorf("sqlstore: enqueue: %w", ctx.Err())
	}
}

// commitLoop is the group committer: it takes the first waiting request, adds
// whatever else is waiting (up to maxBatch messages), writes them all in one
// transaction and answers each caller. Before closing a batch it yields the
// processor once (runtime.Gosched): callers that are ready to run get to queue
// their requests, so a batch closes when its callers are idle, not after a
// timer. It exits when Close has closed the channel and every accepted request
// is answered.
func (db *DB) commitLoop() {
	defer close(db.committerDone)
	var carry *enqueueRequest
	for {
		first := carry
		carry = nil
		if first == nil {
			r, ok := <-db.enq
			if !ok {
				return
			}
			first = r
			db.received.Add(1)
		}
		batch := []*enqueueRequest{first}
		n := len(first.ps)
		yielded := false
	drain:
		for n < db.maxBatch {
			select {
			case r, ok := <-db.enq:
				if !ok {
					break drain
				}
				db.received.Add(1)
				if n+len(r.ps) > db.maxBatch {
					carry = r
					break drain
				}
				batch = append(batch, r)
				n += len(r.ps)
				yielded = false
			default:
				if yielded {
					break drain
				}
				runtime.Gosched()
				yielded = true
			}
		}
		db.commitBatch(batch)
	}
}

// commitBatch writes the live requests of a batch in one transaction. If that
// fails, each request is retried alone so that one bad input fails only its
// own call.
func (db *DB) commitBatch(batch []*enqueueRequest) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("sqlstore: enqueue: %w", err)
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if err := db.writeRequests(live); err == nil || len(live) == 1 {
		for _, r := range live {
			if err != nil {
				r.err, r.queued = err, nil
			}
			close(r.done)
		}
		return
	}
	for _, r := range live {
		r.err = db.writeRequests([]*enqueueRequest{r})
		if r.err != nil {
			r.queued = nil
		}
		close(r.done)
	}
}

// writeRequests writes the requests' rows in one transaction and fills each
// request's queued flags.
func (db *DB) writeRequests(reqs []*enqueueRequest) error {
	// The transaction does not use a caller's context: it serves several
	// callers, and Close waits for it. Timeouts come from busy_timeout and
	// the connection.
	ctx := context.Background()
	if err := db.lockWrite(ctx); err != nil {
		return err
	}
	defer db.unlockWrite()

	type key struct{ sender, hash, sig string }
	var (
		rows  []*store.Pending
		index = map[key]int{} // first input position of each key in rows
		slots = make([][]int, len(reqs))
	)
	for i, r := range reqs {
		r.queued = make([]bool, len(r.ps))
		slots[i] = make([]int, len(r.ps))
		for j, p := range r.ps {
			k := key{p.Message.Sender, p.Message.ItemHash, p.Message.Signature}
			if _, dup := index[k]; dup {
				slots[i][j] = -1 // a later copy in the same batch is never queued
				continue
			}
			index[k] = len(rows)
			slots[i][j] = len(rows)
			rows = append(rows, p)
		}
	}
	ids := make([]int64, len(rows))
	var err error
	if db.d.name == postgresDialect.name {
		err = db.enqueuePostgres(ctx, rows, ids)
	} else {
		err = db.inTx(ctx, func(t *sql.Tx) error {
			stmt := func(ctx context.Context, text string) (*sql.Stmt, error) { return db.prepared(ctx, t, text) }
			return db.enqueueTx(ctx, stmt, rows, ids)
		})
	}
	db.prepareWanted(ctx)
	if err != nil {
		return err
	}
	db.commits.Add(1)
	for i, r := range reqs {
		for j, p := range r.ps {
			if s := slots[i][j]; s >= 0 && ids[s] != 0 {
				r.queued[j] = true
				p.ID = ids[s]
			}
		}
	}
	return nil
}

// enqueueStatusSuffix makes the status insert of Enqueue set hashes pending
// unless their status exists and is not rejected, and return the hashes set.
const enqueueStatusSuffix = " ON CONFLICT (item_hash) DO UPDATE SET status = excluded.status, reception_time = excluded.reception_time" +
	" WHERE message_status.status = 'rejected' RETURNING item_hash"

// enqueueTx writes the queue rows, their statuses and the deletion of the
// rejections they replace, in the caller's transaction, and records the id of
// each row inserted (0 for rows already queued).
func (db *DB) enqueueTx(ctx context.Context, stmt stmtFunc, rows []*store.Pending, ids []int64) error {
	if err := db.insertPending(ctx, stmt, rows, ids); err != nil {
		return err
	}
	// Statuses of the queued rows, one per hash (the first queued row's
	// reception time), in hash order.
	first := map[string]*store.Pending{}
	for i, p := range rows {
		if ids[i] != 0 {
			if _, ok := first[p.Message.ItemHash]; !ok {
				first[p.Message.ItemHash] = p
			}
		}
	}
	hashes := sortedKeys(first)
	sts := make([][]any, len(hashes))
	for i, h := range hashes {
		sts[i] = []any{h, string(message.StatusPending), nanos(first[h].ReceptionTime)}
	}
	var set []any // hashes whose status is now pending
	err := db.d.insertRows(ctx, stmt, "message_status", statusCols, sts, enqueueStatusSuffix, func(rows *sql.Rows) error {
		var h string
		err := rows.Scan(&h)
		set = append(set, h)
		return err
	})
	if err != nil {
		return wrap(err, "enqueue statuses")
	}
	// A hash set back from rejected to pending loses its rejection record.
	err = db.d.inList(ctx, stmt, "DELETE FROM rejected_messages WHERE item_hash", "text", set, "", nil)
	return wrap(err, "enqueue: delete old rejections")
}

// enqueuePostgres does what enqueueTx does in one statement (a statement is
// its own transaction), whose data-modifying parts are chained by WITH: on
// PostgreSQL each statement is a round trip, and admission waits for them.
func (db *DB) enqueuePostgres(ctx context.Context, rows []*store.Pending, ids []int64) error {
	args, pos := pendingArgs(rows)
	sel, params, err := pgUnnest(pendingInsertCols, args)
	if err != nil {
		return wrap(err, "enqueue")
	}
	text := `WITH ins AS (
		INSERT INTO pending_messages (` + strings.Join(colNames(pendingInsertCols), ", ") + `) ` + sel + `
		ON CONFLICT (sender, item_hash, signature) DO NOTHING
		RETURNING id, sender, item_hash, signature, reception_time
	), firsts AS (
		SELECT DISTINCT ON (item_hash) item_hash, reception_time FROM ins ORDER BY item_hash, id
	), st AS (
		INSERT INTO message_status (item_hash, status, reception_time)
		SELECT item_hash, 'pending', reception_time FROM firsts ORDER BY item_hash` + enqueueStatusSuffix + `
	), rj AS (
		DELETE FROM rejected_messages WHERE item_hash IN (SELECT item_hash FROM st)
	)
	SELECT id, sender, item_hash, signature FROM ins`
	res, err := db.w.QueryContext(ctx, text, params...)
	if err != nil {
		return wrap(err, "enqueue")
	}
	defer res.Close()
	for res.Next() {
		if err := scanInserted(res, pos, ids); err != nil {
			return wrap(err, "enqueue")
		}
	}
	return wrap(res.Err(), "enqueue")
}

// pendingInsertCols are the columns Enqueue writes, with their types.
var pendingInsertCols = []col{{"item_hash", "text"}, {"sender", "text"}, {"signature", "text"}, {"chain", "text"},
	{"type", "text"}, {"channel", "text"}, {"time_text", "text"}, {"item_type", "text"}, {"item_content", "text"},
	{"raw", "text"}, {"content", "text"}, {"reception_time", "int8"}, {"next_attempt", "int8"}, {"retries", "int4"},
	{"check_signature", "bool"}, {"origin", "text"}, {"last_error", "int4"}}

// pendingArgs returns the values of the queue rows, in pendingInsertCols
// order, and the position of each (sender, item hash, signature).
func pendingArgs(rows []*store.Pending) ([][]any, map[string]int) {
	args := make([][]any, len(rows))
	pos := make(map[string]int, len(rows))
	for i, p := range rows {
		m := &p.Message
		var itemContent any
		if m.ItemType == message.ItemInline || m.ItemContent != "" {
			itemContent = m.ItemContent
		}
		args[i] = []any{m.ItemHash, m.Sender, m.Signature, string(m.Chain), string(m.Type), nullStr(m.Channel),
			timeText(m.Time), string(m.ItemType), itemContent, string(p.Raw), nullRaw(p.Content),
			nanos(p.ReceptionTime), nanos(p.NextAttempt), p.Retries, p.CheckSignature, p.Origin, int(p.LastError)}
		pos[m.Sender+"\x00"+m.ItemHash+"\x00"+m.Signature] = i
	}
	return args, pos
}

// scanInserted reads a returned (id, sender, item_hash, signature) row into
// ids at the position of its key.
func scanInserted(res *sql.Rows, pos map[string]int, ids []int64) error {
	var (
		id                      int64
		sender, hash, signature string
	)
	if err := res.Scan(&id, &sender, &hash, &signature); err != nil {
		return err
	}
	i, ok := pos[sender+"\x00"+hash+"\x00"+signature]
	if !ok {
		return errors.New("insert returned an unknown row")
	}
	ids[i] = id
	return nil
}

// insertPending inserts rows, skipping queued ones (ON CONFLICT DO NOTHING),
// and records the id of each row inserted (0 for skipped ones).
func (db *DB) insertPending(ctx context.Context, stmt stmtFunc, rows []*store.Pending, ids []int64) error {
	args, pos := pendingArgs(rows)
	err := db.d.insertRows(ctx, stmt, "pending_messages", pendingInsertCols, args,
		" ON CONFLICT (sender, item_hash, signature) DO NOTHING RETURNING id, sender, item_hash, signature",
		func(res *sql.Rows) error { return scanInserted(res, pos, ids) })
	return wrap(err, "enqueue")
}
