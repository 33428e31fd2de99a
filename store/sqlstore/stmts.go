package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// maxCachedStmts bounds the writer's statement cache. Every text the package
// runs in a write transaction is a constant or a multi-row statement of one of
// a few chunk sizes, so the bound is only a guard: texts beyond it run
// prepared for their transaction alone.
const maxCachedStmts = 1024

// prepared returns the statement for text bound to t. A statement seen for
// the first time is prepared on the transaction (the writer may have no other
// connection to prepare it on) and remembered; prepareWanted then prepares it
// on the writer for later transactions, which bind it without parsing the SQL
// again (database/sql keeps the statement prepared per connection).
func (db *DB) prepared(ctx context.Context, t *sql.Tx, text string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	stmt, ok := db.stmts[text]
	if !ok && len(db.stmts)+len(db.wanted) < maxCachedStmts {
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
	if len(db.wanted) == 0 || db.stmts == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
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

// maxChunkRows and maxChunkParams bound one multi-row statement.
const (
	maxChunkRows   = 256
	maxChunkParams = 2048
)

// chunkSize is the number of rows of the next multi-row statement for n rows
// of arity parameters each: the largest power of two ≤ n within the bounds.
// Batches are written in chunks of a few fixed sizes, so that their
// statements are prepared once and reused.
func chunkSize(n, arity int) int {
	limit := min(n, maxChunkRows, max(1, maxChunkParams/max(arity, 1)))
	size := 1
	for size*2 <= limit {
		size *= 2
	}
	return size
}

// eachChunk calls fn with the consecutive [start, start+size) chunks of n rows.
func eachChunk(n, arity int, fn func(start, size int) error) error {
	for start := 0; start < n; {
		size := chunkSize(n-start, arity)
		if err := fn(start, size); err != nil {
			return err
		}
		start += size
	}
	return nil
}

// param is the placeholder of the i-th (1-based) parameter of a generated
// statement. SQLite gets anonymous "?" placeholders: binding a numbered one
// looks its number up in a list of every numbered parameter, which makes wide
// multi-row statements quadratic to bind (sqlite3VListNumToName).
func (d dialect) param(i int) string {
	if d.name == sqliteDialect.name {
		return "?"
	}
	return "$" + strconv.Itoa(i)
}

// values returns "($1, …, $k), ($k+1, …)" for rows of k parameters each.
func (d dialect) values(rows, k int) string {
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
			b.WriteString(d.param(i*k + j + 1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// placeholders returns "($1, $2, …, $n)".
func (d dialect) placeholders(n int) string {
	return d.values(1, n)
}

// maxReadStmts bounds the reader statement cache (constant texts only).
const maxReadStmts = 64

// cachedReader is a querier over the readers that runs constant texts
// prepared: the hot single-row reads (a status at every submission, the
// queue) then skip parsing.
type cachedReader struct{ db *DB }

// readStmt returns the reader statement for text, preparing it the first
// time; nil when it cannot be cached.
func (db *DB) readStmt(ctx context.Context, text string) *sql.Stmt {
	db.rmu.Lock()
	s, ok := db.rstmts[text]
	full := db.rstmts == nil || len(db.rstmts) >= maxReadStmts
	db.rmu.Unlock()
	if ok || full {
		return s
	}
	s, err := db.r.PrepareContext(ctx, text)
	if err != nil {
		return nil
	}
	db.rmu.Lock()
	defer db.rmu.Unlock()
	if old, ok := db.rstmts[text]; ok || db.rstmts == nil {
		s.Close()
		return old
	}
	db.rstmts[text] = s
	return s
}

// closeReadStmts closes the reader statements; later reads run unprepared.
func (db *DB) closeReadStmts() {
	db.rmu.Lock()
	defer db.rmu.Unlock()
	for _, s := range db.rstmts {
		s.Close()
	}
	db.rstmts = nil
}

func (c cachedReader) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := c.db.readStmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return c.db.r.ExecContext(ctx, query, args...)
}

func (c cachedReader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := c.db.readStmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return c.db.r.QueryContext(ctx, query, args...)
}

func (c cachedReader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := c.db.readStmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return c.db.r.QueryRowContext(ctx, query, args...)
}
