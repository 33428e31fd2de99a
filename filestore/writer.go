package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Block writes run on a few goroutines, each creating its files in its own
// temporary directory (blocks/.put-<n>, which flatfs ignores) and renaming
// them into their shard. Measured on ext4: creating a file directly in one of
// the 1024 shard directories costs 0.4–0.9 ms of kernel CPU, against
// 40–240 µs in one directory (the inode is allocated near its parent and
// stays there when renamed), and one temporary directory per writer avoids
// contention on its lock. In flight at most blockWriters+blockQueue blocks
// (2–8 MiB with 256 KiB–1 MiB chunks).
const (
	blockWriters = 4
	blockQueue   = 4
)

// putDir is the temporary directory of block writer slot i.
func (s *Store) putDir(i int) string {
	return filepath.Join(s.dir, blocksDir, ".put-"+strconv.Itoa(i))
}

// resetPutDirs empties (or creates) the writers' temporary directories: at
// Open no add runs, so anything there is left over from a crash.
func (s *Store) resetPutDirs() error {
	for i := range blockWriters {
		d := s.putDir(i)
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// blockWriter stores the blocks of one add. put holds each block against
// sweeps before queueing it; close waits for every write and reports the first
// error. Order does not matter: nothing names the blocks until the manifest,
// written after close and a sync.
type blockWriter struct {
	s     *Store
	op    *addOp
	ctx   context.Context
	ch    chan blocks.Block
	wg    sync.WaitGroup
	once  sync.Once
	mu    sync.Mutex
	err   error
	cids  []cid.Cid // every block put, for the manifest (producer side only)
	track bool
}

func (s *Store) newBlockWriter(ctx context.Context, op *addOp, track bool) *blockWriter {
	w := &blockWriter{s: s, op: op, ctx: ctx, ch: make(chan blocks.Block, blockQueue), track: track}
	w.wg.Add(blockWriters)
	for i := range blockWriters {
		go w.run(i)
	}
	return w
}

func (w *blockWriter) run(slot int) {
	defer w.wg.Done()
	for b := range w.ch {
		if w.failed() != nil {
			continue // drain
		}
		if err := w.s.writeBlock(b, slot); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}
}

func (w *blockWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *blockWriter) put(b blocks.Block) error {
	if err := w.failed(); err != nil {
		return err
	}
	w.op.hold(b.Cid())
	if w.track {
		w.cids = append(w.cids, b.Cid())
	}
	select {
	case w.ch <- b:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

// close waits for the writes queued so far. It may be called more than once.
func (w *blockWriter) close() error {
	w.once.Do(func() { close(w.ch) })
	w.wg.Wait()
	return w.failed()
}

// writeBlock stores a block as the file flatfs (and kubo) would:
// blocks/<shard>/<base32 multihash>.data, shard next-to-last/2, through a
// temporary file in the writer slot's directory. With sync on, it starts the
// block's writeback (Linux; the add's final syncfs waits for it) or fsyncs the
// file and its directory (elsewhere).
func (s *Store) writeBlock(b blocks.Block, slot int) error {
	c := b.Cid()
	if c.Prefix().MhType == mh.IDENTITY {
		return nil // the CID is the data (idstore)
	}
	final := s.blockPath(c.Hash())
	dir := filepath.Dir(final)
	if _, err := os.Lstat(final); err == nil {
		return nil
	}
	if err := s.mkBlockDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.putDir(slot), "b-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	data := b.RawData()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write block %s: %w", c, err)
	}
	if !s.opts.NoSync {
		if haveSyncfs {
			startWriteback(f, 0, int64(len(data)))
		} else if err := fdatasync(f); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write block %s: %w", c, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("write block %s: %w", c, err)
	}
	ok = true
	if !s.opts.NoSync && !haveSyncfs {
		return syncDir(dir)
	}
	return nil
}

// blockPath is where flatfs keeps the block of multihash h:
// blocks/<shard>/<key>.data, key the base32 of h and shard its next-to-last
// two characters (next-to-last/2). Adds write block files and sweeps delete
// them here directly, not through flatfs: that leaves flatfs's disk-usage
// counter alone (it would go negative from deletes of blocks it did not count,
// and a non-positive counter makes flatfs re-measure the whole directory at
// every Open).
func (s *Store) blockPath(h mh.Multihash) string {
	key := dshelp.MultihashToDsKey(h).String()[1:]
	str := "___" + key
	shard := str[len(str)-3 : len(str)-1]
	return filepath.Join(s.dir, blocksDir, shard, key+".data")
}

// mkBlockDir creates a shard directory once (and durably: the directory entry
// must outlive a crash as much as the block in it).
func (s *Store) mkBlockDir(dir string) error {
	if _, done := s.blockDirs.Load(dir); done {
		return nil
	}
	err := os.Mkdir(dir, 0o755)
	switch {
	case err == nil && !haveSyncfs:
		// With syncfs, the add's final sync covers the new entry (before the
		// manifest names anything in it).
		if err := s.syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrExist):
		return err
	}
	s.blockDirs.Store(dir, struct{}{})
	return nil
}
