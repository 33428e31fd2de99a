package files

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-aleph/go-aleph/store"
)

// CollectGarbage runs one collection: expire grace pins, delete the files no
// pin holds (row, then bytes, then the Pinner's copy), then sweep blocks.
// Collections do not overlap.
func (s *Service) CollectGarbage(ctx context.Context) (GCStats, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st GCStats
	err := s.db.Update(ctx, func(tx store.Tx) error {
		n, err := tx.ExpireGracePins(ctx, s.now())
		st.GracePinsExpired = n
		return err
	})
	if err != nil {
		return st, fmt.Errorf("files: gc: expire grace pins: %w", err)
	}
	if err := s.collectOrphans(ctx, &st); err != nil {
		return st, err
	}
	for {
		var batch []*store.File
		err := s.db.Update(ctx, func(tx store.Tx) error {
			var err error
			batch, err = tx.UnpinnedFiles(ctx, s.cfg.GCBatch)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("files: gc: list unpinned files: %w", err)
		}
		deleted := 0
		for _, f := range batch {
			ok, err := s.collect(ctx, f, &st)
			if err != nil {
				return st, err
			}
			if ok {
				deleted++
			}
		}
		// A listed file is deleted, was pinned since or is busy (and about
		// to be pinned), so the next list moves on; a batch that deleted
		// nothing means the rest is pinned or busy.
		if len(batch) < s.cfg.GCBatch || deleted == 0 {
			break
		}
	}
	sw, err := s.files.Sweep(ctx)
	st.Sweep = sw
	if err != nil {
		return st, fmt.Errorf("files: gc: sweep: %w", err)
	}
	return st, nil
}

// collect deletes one unpinned file under its hash lock: the row if still
// unpinned, then the bytes and the pinners' copies. A file whose lock is held
// is being added or fetched, and about to get a fresh grace pin: it is left
// alone rather than waited for (an upload from a slow client may hold it for
// long).
func (s *Service) collect(ctx context.Context, f *store.File, st *GCStats) (bool, error) {
	if s.testHookCollect != nil {
		s.testHookCollect(f.Hash)
	}
	unlock, ok := s.locks.tryLock(f.Hash)
	if !ok {
		st.FilesBusy++
		return false, nil
	}
	defer unlock()
	var deleted bool
	err := s.db.Update(ctx, func(tx store.Tx) error {
		var err error
		deleted, err = tx.DeleteFileIfUnpinned(ctx, f.Hash)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("files: gc: delete %s: %w", f.Hash, err)
	}
	if !deleted {
		return false, nil
	}
	st.FilesDeleted++
	st.BytesDeleted += f.Size
	s.deleteBytes(ctx, f.Hash)
	return true, nil
}

// deleteBytes removes the bytes of a file whose row is gone, unless an add of
// unknown hash is in flight (it may be adding these very bytes): then they
// are left for the next collection. The caller holds the hash's lock.
func (s *Service) deleteBytes(ctx context.Context, hash string) {
	s.anonMu.Lock()
	if s.anon > 0 {
		s.orphans[hash] = true
		s.anonMu.Unlock()
		return
	}
	// Holding anonMu keeps such adds from starting until the bytes are gone.
	err := s.files.Delete(ctx, hash)
	delete(s.orphans, hash)
	s.anonMu.Unlock()
	if err != nil {
		s.log.Warn("gc: delete file bytes", "hash", hash, "err", err)
	}
	if engine, err := engineOf(hash); err == nil {
		for _, src := range s.sources {
			if p, ok := src.(Pinner); ok {
				if err := p.Unpin(ctx, engine, hash); err != nil {
					s.log.Warn("gc: unpin", "hash", hash, "source", src.Name(), "err", err)
				}
			}
		}
	}
}

// collectOrphans retries the byte deletions an earlier collection left: the
// bytes go unless a row came back for them.
func (s *Service) collectOrphans(ctx context.Context, st *GCStats) error {
	s.anonMu.Lock()
	hashes := make([]string, 0, len(s.orphans))
	for h := range s.orphans {
		hashes = append(hashes, h)
	}
	s.anonMu.Unlock()
	for _, h := range hashes {
		unlock, ok := s.locks.tryLock(h)
		if !ok {
			continue // busy: next time
		}
		_, err := s.db.GetFile(ctx, h)
		switch {
		case err == nil:
			s.anonMu.Lock()
			delete(s.orphans, h)
			s.anonMu.Unlock()
		case errors.Is(err, store.ErrNotFound):
			s.deleteBytes(ctx, h)
		default:
			unlock()
			return fmt.Errorf("files: gc: get %s: %w", h, err)
		}
		unlock()
	}
	return nil
}

// Run collects garbage every GCPeriod until ctx ends, the first time one
// period after it starts.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.GCPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		start := time.Now()
		st, err := s.CollectGarbage(ctx)
		if err != nil && ctx.Err() != nil {
			return nil // cut short by the shutdown
		}
		if s.testHookGC != nil {
			s.testHookGC(st, err)
		}
		if err != nil {
			s.log.Error("garbage collection failed", "err", err)
			continue
		}
		s.log.Info("garbage collected", "grace_pins_expired", st.GracePinsExpired, "files_deleted", st.FilesDeleted,
			"bytes_deleted", st.BytesDeleted, "blocks_removed", st.Sweep.BlocksRemoved, "block_bytes_removed", st.Sweep.BytesRemoved,
			"took", time.Since(start))
	}
}
