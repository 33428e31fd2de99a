package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// Database drivers: "pgx" (PostgreSQL) and "sqlite" (modernc, pure Go).
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/go-aleph/go-aleph/store"
)

func init() {
	store.Register("sqlite", func(ctx context.Context, dsn string) (store.Store, error) {
		return openStore(ctx, dsn)
	})
	store.Register("postgres", func(ctx context.Context, dsn string) (store.Store, error) {
		return openStore(ctx, dsn)
	})
}

// openStore adapts Open to store.Opener without returning a typed nil.
func openStore(ctx context.Context, dsn string) (store.Store, error) {
	db, err := Open(ctx, dsn, Options{})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// ErrClosed is returned by calls on a closed DB.
var ErrClosed = errors.New("sqlstore: closed")

// Options tune a DB. Zero fields take the defaults.
type Options struct {
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock used for bookkeeping timestamps (migrations); nil means time.Now.
	Now func() time.Time
	// EnqueueBatch caps how many pending messages one group commit writes (default 1024).
	EnqueueBatch int
	// MaxConns is the PostgreSQL pool size (default 10).
	MaxConns int

	// SQLite only; each can also be set in the DSN query (see Open).

	// Synchronous is "NORMAL" (the default) or "FULL".
	Synchronous string
	// WriterCacheKiB bounds the writer connection's page cache (default 16384).
	WriterCacheKiB int
	// ReaderCacheKiB bounds each reader connection's page cache (default 8192).
	ReaderCacheKiB int
	// ReadConns is the number of read-only connections (default 4).
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process (default 10 s).
	BusyTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.EnqueueBatch <= 0 {
		o.EnqueueBatch = 1024
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10
	}
	if o.Synchronous == "" {
		o.Synchronous = "NORMAL"
	}
	if o.WriterCacheKiB <= 0 {
		o.WriterCacheKiB = 16384
	}
	if o.ReaderCacheKiB <= 0 {
		o.ReaderCacheKiB = 8192
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
}

// DB is an open store.Store over SQLite or PostgreSQL.
type DB struct {
	d   dialect
	w   *sql.DB // writes; on SQLite a single connection
	r   *sql.DB // reads; on SQLite a pool of read-only connections, on PostgreSQL w
	log *slog.Logger

	// wsem serializes write transactions (Update, group commits, aggregate
	// recomputes). It is a channel so that waiting honours contexts.
	wsem chan struct{}

	ck            *checkpointer // SQLite only
	enq           chan *enqueueRequest
	maxBatch      int
	received      atomic.Int64 // Enqueue requests the committer has taken
	rmu           sync.Mutex
	rstmts        map[string]*sql.Stmt // reader statements of constant texts
	stmtMu        sync.Mutex
	stmts         map[string]*sql.Stmt // writer statements, prepared once
	wanted        map[string]bool      // statements to prepare on the writer
	commits       atomic.Int64         // group commits written
	closeMu       sync.RWMutex
	closed        bool
	committerDone chan struct{}
	closing       chan struct{} // closed when Close has stopped the committer
}

var _ store.Store = (*DB)(nil)

// Open opens the backend a DSN names (store.BackendFor): "postgres://…" or
// "postgresql://…" for PostgreSQL, and "sqlite:///abs/path.db" or a plain file
// path for SQLite. A SQLite DSN may end in a query with the options synchronous
// (normal or full), writer_cache_kib, reader_cache_kib, read_conns and
// busy_timeout_ms, which override o. The migrations run before Open returns.
func Open(ctx context.Context, dsn string, o Options) (*DB, error) {
	if store.BackendFor(dsn) == "postgres" {
		return OpenPostgres(ctx, dsn, o)
	}
	path, err := parseSQLiteDSN(dsn, &o)
	if err != nil {
		return nil, err
	}
	return OpenSQLite(ctx, path, o)
}

// parseSQLiteDSN strips the sqlite:// scheme and applies the query options.
func parseSQLiteDSN(dsn string, o *Options) (string, error) {
	path := dsn
	if strings.HasPrefix(path, "sqlite://") {
		path = strings.TrimPrefix(path, "sqlite://")
	} else if strings.HasPrefix(path, "sqlite:") {
		path = strings.TrimPrefix(path, "sqlite:")
	}
	path, query, _ := strings.Cut(path, "?")
	if path == "" {
		return "", fmt.Errorf("sqlstore: sqlite dsn %q has no file path", dsn)
	}
	if query == "" {
		return path, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("sqlstore: sqlite dsn query: %w", err)
	}
	intOpt := func(key string, dst *int) error {
		v := q.Get(key)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("sqlstore: sqlite dsn option %s=%q: want a positive integer", key, v)
		}
		*dst = n
		return nil
	}
	for key := range q {
		switch key {
		case "synchronous":
			s := strings.ToUpper(q.Get(key))
			if s != "NORMAL" && s != "FULL" {
				return "", fmt.Errorf("sqlstore: sqlite dsn option synchronous=%q: want normal or full", q.Get(key))
			}
			o.Synchronous = s
		case "writer_cache_kib":
			if err := intOpt(key, &o.WriterCacheKiB); err != nil {
				return "", err
			}
		case "reader_cache_kib":
			if err := intOpt(key, &o.ReaderCacheKiB); err != nil {
				return "", err
			}
		case "read_conns":
			if err := intOpt(key, &o.ReadConns); err != nil {
				return "", err
			}
		case "busy_timeout_ms":
			var ms int
			if err := intOpt(key, &ms); err != nil {
				return "", err
			}
			o.BusyTimeout = time.Duration(ms) * time.Millisecond
		default:
			return "", fmt.Errorf("sqlstore: unknown sqlite dsn option %q", key)
		}
	}
	return path, nil
}

// OpenSQLite opens (creating it and its parent directories if needed) the
// SQLite database at path, in WAL mode with one writer connection and
// o.ReadConns read-only connections.
func OpenSQLite(ctx context.Context, path string, o Options) (*DB, error) {
	o.defaults()
	if path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlstore: sqlite path %q: want a plain file path", path)
	}
	if s := strings.ToUpper(o.Synchronous); s != "NORMAL" && s != "FULL" {
		return nil, fmt.Errorf("sqlstore: sqlite synchronous %q: want NORMAL or FULL", o.Synchronous)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sqlstore: create database directory: %w", err)
		}
	}
	busy := strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)
	common := url.Values{}
	common.Add("_pragma", "busy_timeout("+busy+")")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "mmap_size(0)")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = append([]string(nil), v...)
	}
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "synchronous("+strings.ToUpper(o.Synchronous)+")")
	wq.Add("_pragma", "cache_size(-"+strconv.Itoa(o.WriterCacheKiB)+")")
	wq.Add("_pragma", "journal_size_limit(67108864)")
	// Checkpoints run on their own connection (checkpoint.go).
	wq.Add("_pragma", "wal_autocheckpoint(0)")
	// Statement journals (multi-row upserts) stay in memory instead of temp files.
	wq.Add("_pragma", "temp_store(MEMORY)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	if n, err := migrate(ctx, w, sqliteDialect, o.Now); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: %w", err)
	} else if n > 0 {
		o.Logger.Info("applied migrations", "backend", "sqlite", "count", n, "path", path)
	}

	rq := url.Values{}
	for k, v := range common {
		rq[k] = append([]string(nil), v...)
	}
	rq.Add("_pragma", "cache_size(-"+strconv.Itoa(o.ReaderCacheKiB)+")")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite readers: %w", err)
	}
	r.SetMaxOpenConns(o.ReadConns)
	r.SetMaxIdleConns(o.ReadConns)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite readers %s: %w", path, err)
	}

	cq := url.Values{}
	for k, v := range common {
		cq[k] = append([]string(nil), v...)
	}
	ck, err := sql.Open("sqlite", path+"?"+cq.Encode())
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite checkpointer: %w", err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	ck.SetConnMaxLifetime(0)
	ck.SetConnMaxIdleTime(0)
	if err := ck.PingContext(ctx); err != nil {
		ck.Close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite checkpointer %s: %w", path, err)
	}
	db := newDB(sqliteDialect, w, r, o)
	db.ck = newCheckpointer(ck)
	go db.checkpointLoop()
	return db, nil
}

// OpenPostgres connects to PostgreSQL through pgx (database/sql) with a pool of
// o.MaxConns connections.
func OpenPostgres(ctx context.Context, dsn string, o Options) (*DB, error) {
	o.defaults()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	db.SetMaxOpenConns(o.MaxConns)
	db.SetMaxIdleConns(o.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: connect postgres: %w", err)
	}
	if n, err := migrate(ctx, db, postgresDialect, o.Now); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: %w", err)
	} else if n > 0 {
		o.Logger.Info("applied migrations", "backend", "postgres", "count", n)
	}
	return newDB(postgresDialect, db, db, o), nil
}

func newDB(d dialect, w, r *sql.DB, o Options) *DB {
	db := &DB{
		d:             d,
		w:             w,
		r:             r,
		log:           o.Logger,
		wsem:          make(chan struct{}, 1),
		enq:           make(chan *enqueueRequest, 256),
		maxBatch:      o.EnqueueBatch,
		committerDone: make(chan struct{}),
		closing:       make(chan struct{}),
		stmts:         map[string]*sql.Stmt{},
		rstmts:        map[string]*sql.Stmt{},
		wanted:        map[string]bool{},
	}
	go db.commitLoop()
	return db
}

// Backend names the backend: "sqlite" or "postgres".
func (db *DB) Backend() string { return db.d.name }

// Close stops the group committer after it has written every Enqueue already
// accepted, waits for the write in progress, then closes the connections.
// Writes after Close return ErrClosed.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if db.closed {
		db.closeMu.Unlock()
		return nil
	}
	db.closed = true
	close(db.enq)
	db.closeMu.Unlock()
	<-db.committerDone
	// Wait for the write in progress, if any, and refuse later ones.
	close(db.closing)
	db.wsem <- struct{}{}

	var errs []error
	db.stmtMu.Lock()
	for _, s := range db.stmts {
		s.Close()
	}
	db.stmts = nil
	db.stmtMu.Unlock()
	db.closeReadStmts()
	if err := db.stopCheckpointer(); err != nil {
		errs = append(errs, err)
	}
	if db.d.name == sqliteDialect.name {
		// Keep the planner's statistics fresh for the next start (cheap when
		// nothing changed much).
		if _, err := db.w.Exec("PRAGMA optimize"); err != nil {
			db.log.Warn("sqlite optimize failed", "err", err)
		}
	}
	if db.r != db.w {
		if err := db.r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sqlstore: close readers: %w", err))
		}
	}
	if err := db.w.Close(); err != nil {
		errs = append(errs, fmt.Errorf("sqlstore: close: %w", err))
	}
	return errors.Join(errs...)
}

// isClosed reports whether Close has been called.
func (db *DB) isClosed() bool {
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	return db.closed
}

// lockWrite takes the write lock, or fails when ctx ends or Close starts first.
func (db *DB) lockWrite(ctx context.Context) error {
	select {
	case db.wsem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sqlstore: wait for write lock: %w", ctx.Err())
	case <-db.closing:
		return ErrClosed
	}
	select {
	case <-db.closing:
		db.unlockWrite()
		return ErrClosed
	default:
		return nil
	}
}

func (db *DB) unlockWrite() { <-db.wsem }

// Update runs fn in one write transaction, committing if fn returns nil and
// rolling back otherwise (also if fn panics). Writes are serialized.
func (db *DB) Update(ctx context.Context, fn func(tx store.Tx) error) (err error) {
	if db.isClosed() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlstore: update: %w", err)
	}
	if err := db.lockWrite(ctx); err != nil {
		return err
	}
	defer db.unlockWrite()
	err = db.inTx(ctx, func(sqlTx *sql.Tx) error {
		t := &tx{db: db, q: sqlTx}
		defer func() { t.done = true }()
		return fn(t)
	})
	db.prepareWanted(ctx)
	return err
}

// inTx runs fn in a transaction on the writer; the caller holds the write lock.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(sqlTx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	db.noteWrite()
	committed = true
	return nil
}
