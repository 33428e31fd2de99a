package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/datastore/dshelp"
	cid "github.com/ipfs/go-cid"

	"github.com/go-aleph/go-aleph/unixfs"
)

// manifestCIDs returns the blocks a root lists.
func manifestCIDs(t testing.TB, s *Store, hash string) []cid.Cid {
	t.Helper()
	b, err := os.ReadFile(s.rootPath(hash))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m.cids
}

// rootPresent checks that every block a root lists is stored (usable from any
// goroutine).
func rootPresent(ctx context.Context, s *Store, hash string) error {
	b, err := os.ReadFile(s.rootPath(hash))
	if err != nil {
		return err
	}
	m, err := decodeManifest(b)
	if err != nil {
		return err
	}
	for _, c := range m.cids {
		if ok, err := s.Blockstore().Has(ctx, c); err != nil || !ok {
			return fmt.Errorf("block %s of root %s is missing (%v)", c, hash, err)
		}
	}
	return nil
}

func TestDeleteSweepKeepsSharedBlocks(t *testing.T) {
	s := newStore(t, Options{})
	ctx := testCtx(t)
	// b starts with the 1 MiB of a, so under KuboV0 they share four leaves.
	a := randBytes(20, 1<<20)
	b := append(bytes.Clone(a), randBytes(21, 300<<10)...)
	ia, err := s.AddUnixFS(ctx, bytes.NewReader(a), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := s.AddUnixFS(ctx, bytes.NewReader(b), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := manifestCIDs(t, s, ia.Hash), manifestCIDs(t, s, ib.Hash)
	inB := map[string]bool{}
	for _, c := range cb {
		inB[string(c.Hash())] = true
	}
	var onlyA, shared int
	for _, c := range ca {
		if inB[string(c.Hash())] {
			shared++
		} else {
			onlyA++
		}
	}
	if shared != 4 || onlyA != 1 {
		t.Fatalf("a has %d blocks shared with b and %d of its own, want 4 and 1", shared, onlyA)
	}
	total := blockCount(t, s)

	// A sweep with both roots removes nothing.
	st, err := s.Sweep(ctx)
	if err != nil || st.BlocksRemoved != 0 || st.BlocksKept != total {
		t.Fatalf("sweep = %+v, %v; want %d kept, none removed", st, err, total)
	}
	if err := s.Delete(ctx, ia.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, ia.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat after delete: %v", err)
	}
	st, err = s.Sweep(ctx)
	if err != nil || st.BlocksRemoved != onlyA || st.BlocksKept != total-onlyA || st.BytesRemoved <= 0 {
		t.Fatalf("sweep = %+v, %v; want %d removed", st, err, onlyA)
	}
	assertRootComplete(t, s, ib.Hash)
	if !bytes.Equal(readAll(t, s, ib.Hash), b) {
		t.Fatal("b differs after the sweep")
	}
	if err := s.Delete(ctx, ib.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := blockCount(t, s); n != 0 {
		t.Fatalf("%d blocks left", n)
	}
	// Storage files go with Delete.
	info, err := s.PutStorage(ctx, bytes.NewReader(a), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, info.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, info.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat storage after delete: %v", err)
	}
	assertClean(t, s)
}

func TestSweepRemovesStaleTmp(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	old := filepath.Join(s.dir, tmpDir, "put-old")
	recent := filepath.Join(s.dir, tmpDir, "put-recent")
	for _, p := range []string{old, recent} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, s, tmpDir); len(n) != 1 || n[0] != "put-recent" {
		t.Fatalf("tmp/ holds %v, want only put-recent", n)
	}
}

// TestSweepDuringAdds runs sweeps in a loop while adds run; whenever an add
// returns, every block its root lists must be there, and stay there. The adds
// include re-adding content whose root was just deleted (its blocks are
// garbage that a sweep may be removing), the case where an add finds a block
// already stored and relies on it.
func TestSweepDuringAdds(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	stop := make(chan struct{})
	var sweeps sync.WaitGroup
	sweeps.Add(1)
	sweepErr := make(chan error, 1)
	go func() {
		defer sweeps.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Sweep(ctx); err != nil {
				sweepErr <- err
				return
			}
		}
	}()

	const workers, rounds = 3, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Small chunks give many blocks per add; the content is shared by
			// rounds, so adds often find blocks a sweep is about to remove.
			p := unixfs.Profile{Name: "small", CIDVersion: 1, ChunkSize: 1 << 10, MaxLinks: 8, RawLeaves: true}
			data := randBytes(uint64(100+w), 40<<10)
			for r := range rounds {
				d := data
				if r%2 == 1 {
					d = append(bytes.Clone(data), byte(r))
				}
				info, err := s.AddUnixFS(ctx, bytes.NewReader(d), 0, "", &p)
				if err != nil {
					errs <- err
					return
				}
				if err := rootPresent(ctx, s, info.Hash); err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", w, r, err)
					return
				}
				if err := s.Delete(ctx, info.Hash); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	sweeps.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	select {
	case err := <-sweepErr:
		t.Fatalf("sweep: %v", err)
	default:
	}
	// Everything was deleted: a last sweep leaves no block.
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := blockCount(t, s); n != 0 {
		t.Fatalf("%d blocks left", n)
	}
}

// TestAddDeleteSameHash races adds and deletes of one root with sweeps: at the
// end, the root either exists with all its blocks or does not exist.
func TestAddDeleteSameHash(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	data := randBytes(30, 600<<10)
	c, _ := unixfs.SumBytes(data, unixfs.KuboV0)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, f := range []func() error{
		func() error {
			_, err := s.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
			return err
		},
		func() error { return s.Delete(ctx, c.String()) },
		func() error { _, err := s.Sweep(ctx); return err },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 30 {
				if err := f(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, c.String()); err == nil {
		assertRootComplete(t, s, c.String())
		if !bytes.Equal(readAll(t, s, c.String()), data) {
			t.Fatal("read back differs")
		}
	} else if !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	// An add after all that always leaves a complete root.
	if _, err := s.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil); err != nil {
		t.Fatal(err)
	}
	assertRootComplete(t, s, c.String())
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	data := randBytes(40, 500<<10)
	ii, err := s.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	is, err := s.PutStorage(ctx, bytes.NewReader(data), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	// One process at a time.
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v, want an in-use error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A block no root lists, and the marker an unclean shutdown leaves: the
	// next Open sweeps the stray block.
	s = openAt(t, dir, Options{})
	stray, _ := unixfs.SumBytes([]byte("stray"), unixfs.KuboV1)
	if err := s.Blockstore().Put(ctx, mustBlock(t, []byte("stray"), stray)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, dirtyFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir, Options{})
	if ok, _ := s.Blockstore().Has(ctx, stray); ok {
		t.Fatal("stray block survived the recovery sweep")
	}
	for _, h := range []string{ii.Hash, is.Hash} {
		if !bytes.Equal(readAll(t, s, h), data) {
			t.Fatalf("%s differs after reopen", h)
		}
	}
	assertRootComplete(t, s, ii.Hash)
}

// TestKuboLayout checks that blocks/ is a flatfs datastore as kubo lays it out.
func TestKuboLayout(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	info, err := s.AddUnixFS(testCtx(t), strings.NewReader("hello world\n"), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	shard, err := os.ReadFile(filepath.Join(s.dir, blocksDir, "SHARDING"))
	if err != nil || strings.TrimSpace(string(shard)) != "/repo/flatfs/shard/v1/next-to-last/2" {
		t.Fatalf("SHARDING = %q, %v", shard, err)
	}
	c, _ := cid.Decode(info.Hash)
	k := dshelp.MultihashToDsKey(c.Hash()).String()[1:] // "CIQ…"
	p := filepath.Join(s.dir, blocksDir, k[len(k)-3:len(k)-1], k+".data")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("block file: %v", err)
	}
}

func TestManifestCodec(t *testing.T) {
	c1, _ := unixfs.SumBytes([]byte("a"), unixfs.KuboV0)
	c2, _ := unixfs.SumBytes([]byte("b"), unixfs.KuboV1)
	m := manifest{kind: KindDir, size: 1 << 40, cids: sortCIDs([]cid.Cid{c2, c1, c2})}
	b := m.encode()
	got, err := decodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.kind != m.kind || got.size != m.size || len(got.cids) != 2 || !got.cids[0].Equals(m.cids[0]) || !got.cids[1].Equals(m.cids[1]) {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x40
		if _, err := decodeManifest(bad); err == nil {
			t.Fatalf("flipped byte %d: decoded without error", i)
		}
	}
	if _, err := decodeManifest(b[:len(b)-1]); err == nil {
		t.Fatal("truncated manifest decoded")
	}
}
