// Package sqlstore implements store.Store over database/sql for two backends:
// SQLite (modernc.org/sqlite, pure Go; the embedded default) and PostgreSQL
// (github.com/jackc/pgx/v5/stdlib). Importing the package registers both with
// store.Register, so store.Open accepts "postgres://…", "postgresql://…",
// "sqlite:///abs/path.db" or a plain file path.
//
// # One SQL dialect
//
// Every query is one SQL text with $N placeholders (the generated multi-row
// statements excepted, see Statements): modernc binds $N by number, as
// PostgreSQL does, and both accept INSERT … ON CONFLICT … DO UPDATE,
// RETURNING, partial indexes and recursive CTEs. What truly differs lives in
// dialect.go, a token map for the migrations' DDL: the identity column, the
// bytewise collation PostgreSQL needs for item_hash ordering to match SQLite's,
// and WITHOUT ROWID for small key-only SQLite tables. JSON is stored as TEXT on
// both backends, so every Content field is served back with the exact bytes
// stored; filters never look inside JSON because the fields they need are
// denormalised into columns (owner, content_type, content_ref, content_key,
// content_item_hash, payment_type, and message_tags / post_tags rows).
//
// Times: message.Time keeps its exact text (time_text) next to a DOUBLE
// PRECISION copy used for ordering; node-local instants (reception_time,
// next_attempt, delete_by) are unix nanoseconds in BIGINT on both backends.
//
// # Migrations
//
// The embedded migrations/NNNN_name.sql files run at Open, in one transaction,
// recorded in schema_migrations; on PostgreSQL an advisory lock serializes
// concurrent Opens. This is a 100-line runner rather than goose: goose runs SQL
// files verbatim, so the per-dialect DDL would need either two trees of
// migrations (two sequences to keep in step) or Go migrations wrapping
// templates, which is more code than the runner; goose's remaining features
// (down migrations, out-of-order detection, a CLI) are not needed by a node
// that only ever migrates forward at start.
//
// # SQLite
//
// The database runs in WAL mode with foreign keys on and busy_timeout set. One
// writer connection (BEGIN IMMEDIATE) serves Update and Enqueue, which an
// in-process lock serializes; a pool of query_only connections (ReadConns,
// default 4) serves reads, which WAL lets proceed while a write is in
// progress. Checkpoints are off the write path: the writer's
// wal_autocheckpoint is 0, and a goroutine on a connection of its own copies
// committed pages into the database file after writes (PASSIVE, at most every
// 50 ms), finishing a pass under the write lock once the WAL holds 4096
// frames so that the next write starts the WAL over (checkpoint.go). Page caches are bounded per connection (16 MiB for the writer, 8
// MiB per reader by default) and mmap is off, so memory does not grow with the
// database: with 1,000,000 messages the process stays well under 300 MiB.
//
// Durability: synchronous=NORMAL by default. In WAL mode a commit has written
// its frames to the WAL file (the operating system's page cache) when it
// returns, so a process crash or kill -9 loses nothing committed; only an
// operating-system crash or power loss can lose the last transactions (never
// corrupting the database). synchronous=FULL (DSN option "synchronous=full" or
// Options.Synchronous) also fsyncs the WAL at every commit. DSN options:
// synchronous, writer_cache_kib, reader_cache_kib, read_conns, busy_timeout_ms.
//
// # PostgreSQL
//
// A database/sql pool (Options.MaxConns) over pgx. Update runs in a
// transaction; the same in-process lock serializes Update, group commits and
// aggregate recomputes, so writes of one node never deadlock each other.
//
// # Group commit
//
// Enqueue is the admission hot path. Concurrent calls hand their messages to a
// single committer goroutine, which writes everything waiting (up to
// Options.EnqueueBatch messages) at once, and answers each caller after the
// commit: on SQLite one transaction of multi-row statements, on PostgreSQL one
// statement whose parts (queue rows, statuses, rejections of hashes set back
// to pending) are chained by WITH, a single round trip. Before closing a batch
// the committer yields the processor once, so that callers ready to run can
// join it: a batch closes when the committer is idle, not on a timer. Close
// stops the committer after answering every accepted call.
//
// # Statements
//
// A write transaction binds each SQL text once, from statements prepared once
// on the writer (stmts.go), so hot methods do not parse their SQL again; the
// constant-text reads (a status at every submission, the queue) are prepared
// on the readers too. The bulk methods of store.Tx write a processing batch
// with a few multi-row statements (multirow.go): on SQLite, VALUES lists of a
// few power-of-two sizes with anonymous "?" placeholders (numbered ones make
// binding a wide statement quadratic); on PostgreSQL, where each statement is
// a round trip, one statement whatever the number of rows, with one array per
// column expanded by unnest (and = ANY for lists), whose text never varies.
//
// # Queries
//
// Listings order by (time, item_hash) with ties by item_hash ascending in both
// directions. Every single-column filter has an index (column, time,
// item_hash) (partial where the column is sparse), so a page of 20 is an
// index-ordered scan of about 20 entries; the mixed direction of the
// descending order is handled by the planners' incremental sort on the time
// prefix. Cursor mode is keyset pagination on (time, item_hash); a cursor
// with an empty Hash asks for the first page, and sizes are capped at 200
// (0 means 20). CountMessages reads the message_counts counters when the filter
// has only types, statuses and senders or owners, and counts rows otherwise.
// QueryAggregates takes Cursor.Hash as owner + "/" + key (see AggregateCursor).
//
// Conventions beyond store.go: deletes of missing records are no-ops; SetStatus
// with a zero ReceptionTime keeps the stored one; PutForgotten appends only the
// FORGET hashes not listed yet; InsertMessage stores a zero Size as
// len(Content).
package sqlstore
