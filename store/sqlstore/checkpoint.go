package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"
)

// SQLite checkpoints run off the write path. The writer connection has
// wal_autocheckpoint off, so a commit only appends its pages to the WAL;
// a checkpointer goroutine, on a connection of its own, copies committed
// pages back into the database file (PASSIVE mode, which runs alongside
// writers and readers) with the fsyncs that go with it. Left alone, the WAL
// would then only restart when a checkpoint happened to finish between two
// writes; so once it holds restartFrames frames, the checkpointer finishes
// one pass under the write lock, after which the next write restarts the WAL
// from its beginning (journal_size_limit then truncates the file).
const (
	// checkpointEvery spaces background checkpoints.
	checkpointEvery = 50 * time.Millisecond
	// restartFrames is the WAL length (in frames) at which a checkpoint
	// finishes under the write lock so that the WAL restarts (16 MiB with 4
	// KiB pages).
	restartFrames = 4096
)

// checkpointer is the background checkpoint of a SQLite database.
type checkpointer struct {
	conn *sql.DB       // one connection, not query_only
	wake chan struct{} // a write committed
	stop chan struct{}
	done chan struct{}
	// restart is the WAL length (frames) that makes a pass finish under the
	// write lock: restartFrames, lowered by tests.
	restart atomic.Int64
	// finished counts the passes finished under the write lock.
	finished atomic.Int64
}

func newCheckpointer(conn *sql.DB) *checkpointer {
	c := &checkpointer{conn: conn, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	c.restart.Store(restartFrames)
	return c
}

// noteWrite tells the checkpointer that a write committed.
func (db *DB) noteWrite() {
	if db.ck == nil {
		return
	}
	select {
	case db.ck.wake <- struct{}{}:
	default:
	}
}

// checkpointLoop runs checkpoints after writes, until stop.
func (db *DB) checkpointLoop() {
	defer close(db.ck.done)
	ctx := context.Background()
	timer := time.NewTimer(checkpointEvery)
	defer timer.Stop()
	for {
		select {
		case <-db.ck.stop:
			return
		case <-db.ck.wake:
		}
		if err := db.checkpointOnce(ctx); err != nil {
			db.log.Warn("sqlite checkpoint failed", "err", err)
		}
		timer.Reset(checkpointEvery)
		select {
		case <-db.ck.stop:
			return
		case <-timer.C:
		}
	}
}

// checkpointOnce copies the committed WAL frames into the database file, and
// when the WAL has grown to the restart length finishes under the write lock:
// no commit can append meanwhile, so the checkpoint reaches the end of the
// WAL (unless a reader still needs older frames) and the next write restarts
// it from the beginning.
func (db *DB) checkpointOnce(ctx context.Context) error {
	frames, err := db.checkpoint(ctx)
	if err != nil || frames < db.ck.restart.Load() {
		return err
	}
	if err := db.lockWrite(ctx); err != nil {
		if err == ErrClosed {
			return nil
		}
		return err
	}
	defer db.unlockWrite()
	db.ck.finished.Add(1)
	_, err = db.checkpoint(ctx)
	return err
}

// checkpoint runs one PASSIVE checkpoint and returns the WAL's length in
// frames.
func (db *DB) checkpoint(ctx context.Context) (frames int64, err error) {
	var busy, log, done int64
	if err := db.ck.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		return 0, fmt.Errorf("sqlstore: checkpoint: %w", err)
	}
	return log, nil
}

// stopCheckpointer ends the checkpoint loop and closes its connection.
func (db *DB) stopCheckpointer() error {
	if db.ck == nil {
		return nil
	}
	close(db.ck.stop)
	<-db.ck.done
	if err := db.ck.conn.Close(); err != nil {
		return fmt.Errorf("sqlstore: close checkpointer: %w", err)
	}
	return nil
}
