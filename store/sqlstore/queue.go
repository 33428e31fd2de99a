package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// pendingCols are the columns scanPending reads, in order.
const pendingCols = "id, item_hash, sender, signature, chain, type, channel, time_text, item_type, item_content, raw, content, " +
	"reception_time, next_attempt, retries, check_signature, origin, last_error"

// pendingInsertCols are the columns Enqueue writes, in order.
const pendingInsertCols = "item_hash, sender, signature, chain, type, channel, time_text, item_type, item_content, raw, content, " +
	"reception_time, next_attempt, retries, check_signature, origin, last_error"

const pendingInsertArity = 17

// enqueueChunk bounds the rows of one multi-row INSERT (17 parameters each).
// Larger chunks save little: modernc looks parameter names up linearly when
// binding, which makes very wide statements quadratic.
const enqueueChunk = 64

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
	rows, err := db.r.QueryContext(ctx, "SELECT "+pendingCols+" FROM pending_messages WHERE next_attempt <= $1 ORDER BY next_attempt, id LIMIT $2",
		nanos(now), limit)
	return collectPending(rows, err, "due pending")
}

// NextDue returns the earliest NextAttempt in the queue, or ok=false when empty.
func (db *DB) NextDue(ctx context.Context) (time.Time, bool, error) {
	var n sql.NullInt64
	if err := db.r.QueryRowContext(ctx, "SELECT MIN(next_attempt) FROM pending_messages").Scan(&n); err != nil {
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
	err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM pending_messages").Scan(&n)
	return n, wrap(err, "pending count")
}

// PendingByHash lists the queued copies of an item hash, by id.
func (db *DB) PendingByHash(ctx context.Context, itemHash string) ([]*store.Pending, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+pendingCols+" FROM pending_messages WHERE item_hash = $1 ORDER BY id", itemHash)
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
	err := db.inTx(ctx, func(t *sql.Tx) error {
		for start := 0; start < len(rows); {
			n := chunkSize(len(rows) - start)
			if err := db.insertPendingChunk(ctx, t, rows[start:start+n], ids[start:start+n]); err != nil {
				return err
			}
			start += n
		}
		// Statuses of the queued rows, one per hash, in hash order.
		first := map[string]*store.Pending{}
		for i, p := range rows {
			if ids[i] != 0 {
				if _, ok := first[p.Message.ItemHash]; !ok {
					first[p.Message.ItemHash] = p
				}
			}
		}
		hashes := make([]string, 0, len(first))
		for h := range first {
			hashes = append(hashes, h)
		}
		sort.Strings(hashes)
		for start := 0; start < len(hashes); {
			n := chunkSize(len(hashes) - start)
			stmt, err := db.prepared(ctx, t, statusSQL(n))
			if err != nil {
				return wrap(err, "enqueue statuses")
			}
			args := make([]any, 0, 2*n)
			for _, h := range hashes[start : start+n] {
				args = append(args, h, nanos(first[h].ReceptionTime))
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return wrap(err, "enqueue statuses")
			}
			start += n
		}
		return nil
	})
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

// chunkSize is the largest power of two ≤ min(n, enqueueChunk): batches are
// written in chunks of a few fixed sizes, so that their statements are
// prepared once and reused.
func chunkSize(n int) int {
	size := 1
	for size*2 <= min(n, enqueueChunk) {
		size *= 2
	}
	return size
}

// values returns "($1, …, $k), ($k+1, …)" for rows of k parameters each.
func values(rows, k int) string {
	var b strings.Builder
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range k {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(i*k + j + 1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// pendingSQL inserts n pending rows, skipping queued ones, and returns the
// inserted rows' keys.
func pendingSQL(n int) string {
	return "INSERT INTO pending_messages (" + pendingInsertCols + ") VALUES " + values(n, pendingInsertArity) +
		" ON CONFLICT (sender, item_hash, signature) DO NOTHING RETURNING id, sender, item_hash, signature"
}

// statusSQL sets n hashes (item_hash, reception_time pairs) pending, unless
// their status exists and is not rejected.
func statusSQL(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "($%d, 'pending', $%d)", 2*i+1, 2*i+2)
	}
	return "INSERT INTO message_status (item_hash, status, reception_time) VALUES " + b.String() +
		" ON CONFLICT (item_hash) DO UPDATE SET status = excluded.status, reception_time = excluded.reception_time" +
		" WHERE message_status.status = 'rejected'"
}

// prepared returns the statement for text bound to t. A statement seen for
// the first time is prepared on the transaction (the writer may have no other
// connection to prepare it on) and remembered; prepareWanted then prepares it
// on the writer for later transactions.
func (db *DB) prepared(ctx context.Context, t *sql.Tx, text string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	stmt, ok := db.stmts[text]
	if !ok {
		db.wanted[text] = true
	}
	db.stmtMu.Unlock()
	if ok {
		return t.StmtContext(ctx, stmt), nil
	}
	return t.PrepareContext(ctx, text)
}

// prepareWanted prepares on the writer the statements prepared() met for the
// first time. The caller holds the write lock, outside any transaction.
func (db *DB) prepareWanted(ctx context.Context) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	for text := range db.wanted {
		if _, ok := db.stmts[text]; ok {
			continue
		}
		stmt, err := db.w.PrepareContext(ctx, text)
		if err != nil {
			db.log.Warn("prepare statement", "err", err)
			continue
		}
		db.stmts[text] = stmt
	}
	clear(db.wanted)
}

// insertPendingChunk inserts rows with one multi-row INSERT … ON CONFLICT DO
// NOTHING and records the id of each row inserted (0 for skipped ones).
func (db *DB) insertPendingChunk(ctx context.Context, t *sql.Tx, rows []*store.Pending, ids []int64) error {
	args := make([]any, 0, len(rows)*pendingInsertArity)
	for _, p := range rows {
		m := &p.Message
		var itemContent any
		if m.ItemType == message.ItemInline || m.ItemContent != "" {
			itemContent = m.ItemContent
		}
		args = append(args, m.ItemHash, m.Sender, m.Signature, string(m.Chain), string(m.Type), nullStr(m.Channel),
			timeText(m.Time), string(m.ItemType), itemContent, string(p.Raw), nullRaw(p.Content),
			nanos(p.ReceptionTime), nanos(p.NextAttempt), p.Retries, p.CheckSignature, p.Origin, int(p.LastError))
	}
	stmt, err := db.prepared(ctx, t, pendingSQL(len(rows)))
	if err != nil {
		return wrap(err, "enqueue")
	}
	res, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return wrap(err, "enqueue")
	}
	defer res.Close()
	pos := make(map[string]int, len(rows))
	for i, p := range rows {
		pos[p.Message.Sender+"\x00"+p.Message.ItemHash+"\x00"+p.Message.Signature] = i
	}
	for res.Next() {
		var (
			id                      int64
			sender, hash, signature string
		)
		if err := res.Scan(&id, &sender, &hash, &signature); err != nil {
			return wrap(err, "enqueue")
		}
		i, ok := pos[sender+"\x00"+hash+"\x00"+signature]
		if !ok {
			return errors.New("sqlstore: enqueue: insert returned an unknown row")
		}
		ids[i] = id
	}
	return wrap(res.Err(), "enqueue")
}
