package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	mh "github.com/multiformats/go-multihash"
)

// Sweep and adds run concurrently. Safety rests on holds: an add registers a
// block's multihash here before it writes it or relies on it being there, and
// Sweep deletes a block only while holding holds.mu and only if no add holds
// it. An add that ends while a sweep runs keeps its holds until the sweep ends,
// since the sweep may have listed the manifests before that add wrote its own.
//
// Why not a lock that makes sweeps and adds exclude each other: an upload from
// a slow client can last minutes, and a sweep waiting for it (RWMutex) would
// block every new upload behind it.
type holds struct {
	mu       sync.Mutex
	n        map[string]int // multihash bytes → adds holding it
	sweeping bool
	deferred []*addOp // ended during the sweep
}

// addOp is one add in progress.
type addOp struct {
	s    *Store
	keys []string
}

func (s *Store) beginAdd() *addOp { return &addOp{s: s} }

// hold protects c's block from sweeps until the add ends.
func (o *addOp) hold(c cid.Cid) {
	k := string(c.Hash())
	h := &o.s.holds
	h.mu.Lock()
	h.n[k]++
	h.mu.Unlock()
	o.keys = append(o.keys, k)
}

// end releases the add's holds, after the sweep in progress if there is one.
func (o *addOp) end() {
	h := &o.s.holds
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sweeping {
		h.deferred = append(h.deferred, o)
		return
	}
	o.releaseLocked()
}

func (o *addOp) releaseLocked() {
	h := &o.s.holds
	for _, k := range o.keys {
		if h.n[k]--; h.n[k] <= 0 {
			delete(h.n, k)
		}
	}
	o.keys = nil
}

// staleTmp is the age past which Sweep removes a file in tmp/: no upload
// leaves its temporary file untouched that long.
const staleTmp = time.Hour

func (s *Store) sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	s.sweepM.Lock()
	defer s.sweepM.Unlock()

	h := &s.holds
	h.mu.Lock()
	h.sweeping = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.sweeping = false
		for _, o := range h.deferred {
			o.releaseLocked()
		}
		h.deferred = nil
		h.mu.Unlock()
	}()

	live, err := s.liveSet()
	if err != nil {
		return st, fmt.Errorf("filestore: sweep: %w", err)
	}
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := s.flat.Query(qctx, query.Query{KeysOnly: true, ReturnsSizes: true})
	if err != nil {
		return st, fmt.Errorf("filestore: sweep: list blocks: %w", err)
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			return st, fmt.Errorf("filestore: sweep: list blocks: %w", r.Error)
		}
		h, err := dshelp.DsKeyToMultihash(ds.RawKey(r.Key))
		if err != nil {
			continue // not a block
		}
		if _, ok := live[string(h)]; ok {
			st.BlocksKept++
			continue
		}
		removed, err := s.removeUnheld(h)
		if err != nil {
			return st, fmt.Errorf("filestore: sweep: remove block: %w", err)
		}
		if removed {
			st.BlocksRemoved++
			st.BytesRemoved += int64(r.Size)
		} else {
			st.BlocksKept++
		}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := s.removeStaleTmp(time.Now().Add(-staleTmp)); err != nil {
		return st, fmt.Errorf("filestore: sweep: %w", err)
	}
	return st, nil
}

// removeUnheld deletes a block unless an add holds it.
func (s *Store) removeUnheld(h mh.Multihash) (bool, error) {
	hs := &s.holds
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.n[string(h)] > 0 {
		return false, nil
	}
	err := os.Remove(s.blockPath(h))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// liveSet is the union of the multihashes of every manifest's blocks. A
// manifest that cannot be read stops the sweep: its blocks are unknown.
func (s *Store) liveSet() (map[string]struct{}, error) {
	dir := filepath.Join(s.dir, rootsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	live := make(map[string]struct{})
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		m, err := decodeManifest(b)
		if err != nil {
			return nil, fmt.Errorf("root %s: %w", e.Name(), err)
		}
		for _, c := range m.cids {
			live[string(c.Hash())] = struct{}{}
		}
	}
	return live, nil
}

func (s *Store) removeStaleTmp(before time.Time) error {
	dir := filepath.Join(s.dir, tmpDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(before) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
		s.log.Info("filestore: removed stale temporary file", "name", e.Name(), "modified", fi.ModTime())
	}
	return nil
}
