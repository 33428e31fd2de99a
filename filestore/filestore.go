// Package filestore keeps content-addressed files on local disk, with no IPFS
// daemon: the "storage" engine addresses a file by the sha256 of its bytes,
// the "ipfs" engine by its UnixFS CID, and keeps the DAG's blocks so that any
// file or directory is served by CID and by path (boxo's blockstore over a
// kubo-compatible flatfs directory).
//
// Writes stream and are atomic: content goes to a temporary file or to blocks
// that no root lists, and becomes visible only when it is complete and its hash
// checks out. An interrupted or mismatched upload leaves nothing a reader can
// see; Sweep removes the blocks it left. The package knows nothing of
// messages, pins or HTTP: callers decide what to keep (Delete) and when to
// collect (Sweep).
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	flatfs "github.com/ipfs/go-ds-flatfs"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/go-aleph/go-aleph/unixfs"
)

// Engine is a file's addressing scheme: the STORE item_type.
type Engine string

// The engines.
const (
	EngineStorage Engine = "storage" // sha256 hex of the bytes
	EngineIPFS    Engine = "ipfs"    // UnixFS CID (v0 or v1)
)

// Kinds of content.
const (
	KindFile = "file"
	KindDir  = "dir"
)

// Info describes stored content.
type Info struct {
	// Hash is the sha256 hex (storage) or the CID string as given or computed (ipfs).
	Hash   string
	Engine Engine
	// Kind is KindFile or KindDir.
	Kind string
	// Size is the file's byte length; for a directory, the sum of its files' sizes.
	Size int64
}

// Errors. Each is wrapped with context; test with errors.Is / errors.As.
var (
	// ErrNotFound: no such content in this store.
	ErrNotFound = errors.New("filestore: not found")
	// ErrInvalidHash: the hash is neither a lowercase sha256 hex nor a CID Aleph accepts.
	ErrInvalidHash = errors.New("filestore: invalid hash")
	// ErrHashMismatch: the content does not hash to the expected value (see *MismatchError).
	ErrHashMismatch = errors.New("filestore: content does not match its hash")
	// ErrTooLarge: the content exceeds the caller's limit (see *TooLargeError).
	ErrTooLarge = errors.New("filestore: content too large")
	// ErrInvalidCAR: a CAR stream is malformed, has a root other than the one
	// expected, not exactly one root, a block whose bytes do not match its CID, or
	// misses blocks of the root's DAG.
	ErrInvalidCAR = errors.New("filestore: invalid CAR")
	// ErrIsDir: Open of a directory (use WriteTar or the gateway).
	ErrIsDir = errors.New("filestore: is a directory")
	// ErrTruncated: the reader failed or ended before the content was complete
	// (for example a client that went away mid-upload); nothing was kept.
	ErrTruncated = errors.New("filestore: upload interrupted")
)

// MismatchError says what the content hashed to.
type MismatchError struct{ Want, Got string }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("filestore: content hashes to %s, not %s", e.Got, e.Want)
}

// Unwrap makes errors.Is(err, ErrHashMismatch) hold.
func (e *MismatchError) Unwrap() error { return ErrHashMismatch }

// TooLargeError gives the limit that was exceeded.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("filestore: content exceeds %d bytes", e.Limit)
}

// Unwrap makes errors.Is(err, ErrTooLarge) hold.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Options tune a Store.
type Options struct {
	// NoSync skips fsync: content is not durable across a machine crash when an
	// add returns. For tests and benchmarks only.
	NoSync bool
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
}

// File is an open stored file.
type File interface {
	io.ReadSeekCloser
	Info() Info
}

// SweepStats reports what Sweep removed.
type SweepStats struct {
	BlocksKept, BlocksRemoved int
	BytesRemoved              int64
}

// Store is a file store rooted in a directory. Its methods are safe for
// concurrent use.
//
// Layout under the directory: storage/<hh>/<sha256> (one file per storage
// hash, hh its first two hex digits); blocks/ (a kubo-compatible flatfs
// datastore, shard next-to-last/2, keys by multihash, with the block writers'
// temporary directories blocks/.put-<n>); roots/<cid> (one manifest per ipfs
// root: kind, size and every block CID of its DAG); tmp/ (uploads in
// progress); lock (held while open) and unclean (present while open).
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger

	flat  *flatfs.Datastore
	bs    blockstore.Blockstore // identity-aware, over flat
	dag   ipld.DAGService
	sys   *sysState // platform handles: lock file, blocks dir for syncfs
	holds holds     // blocks that adds in progress use (see gc.go)
	// blockDirs are the shard directories known to exist (writeBlock).
	blockDirs sync.Map
	sweepM    sync.Mutex
	locks     [lockStripes]sync.Mutex // per-hash commit/delete locks

	closeOnce sync.Once
	closeErr  error
}

// Subdirectories of the store.
const (
	storageDir = "storage"
	blocksDir  = "blocks"
	rootsDir   = "roots"
	tmpDir     = "tmp"
	dirtyFile  = "unclean" // present while the store is open; at Open it means a crash
)

// Open opens (creating if needed) the store in dir. Only one process may have
// a store open (a lock file says so on Unix). If the previous process did not
// Close the store (a crash), Open first sweeps the blocks that no root lists:
// blocks written without a manifest may be torn.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{dir: dir, opts: opts, log: opts.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.holds.n = make(map[string]int)
	for _, d := range []string{"", storageDir, rootsDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
		}
	}
	sys, err := openSys(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
	}
	s.sys = sys
	ok := false
	defer func() {
		if !ok {
			s.closeAll()
		}
	}()
	// No add can be in progress: whatever tmp/ holds is left over.
	if err := clearDir(filepath.Join(dir, tmpDir)); err != nil {
		return nil, fmt.Errorf("filestore: open %s: clear tmp: %w", dir, err)
	}
	// Adds write block files themselves (writeBlock) and sync them, and
	// sweeps delete them; flatfs serves reads and listing.
	flat, err := flatfs.CreateOrOpen(filepath.Join(dir, blocksDir), flatfs.NextToLast(2), false)
	if err != nil {
		return nil, fmt.Errorf("filestore: open %s: blocks: %w", dir, err)
	}
	s.flat = flat
	if err := s.sys.openBlocks(filepath.Join(dir, blocksDir)); err != nil {
		return nil, fmt.Errorf("filestore: open %s: blocks: %w", dir, err)
	}
	if err := s.resetPutDirs(); err != nil {
		return nil, fmt.Errorf("filestore: open %s: blocks: %w", dir, err)
	}
	s.bs = blockstore.NewIdStore(blockstore.NewBlockstore(flat, blockstore.NoPrefix()))
	s.dag = merkledag.NewDAGService(blockservice.New(s.bs, nil))

	dirty := filepath.Join(dir, dirtyFile)
	if _, err := os.Stat(dirty); err == nil {
		s.log.Warn("filestore was not closed cleanly; removing blocks no root lists", "dir", dir)
		st, err := s.Sweep(context.Background())
		if err != nil {
			return nil, fmt.Errorf("filestore: open %s: recovery sweep: %w", dir, err)
		}
		s.log.Info("filestore recovery sweep done", "kept", st.BlocksKept, "removed", st.BlocksRemoved)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
	}
	if err := s.writeSmall(dirty, nil); err != nil {
		return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
	}
	if err := s.syncDir(dir); err != nil {
		return nil, fmt.Errorf("filestore: open %s: %w", dir, err)
	}
	ok = true
	return s, nil
}

// Close releases the store. Call it after every other call has returned.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		err := os.Remove(filepath.Join(s.dir, dirtyFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			s.closeErr = fmt.Errorf("filestore: close: %w", err)
		}
		if err := s.closeAll(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("filestore: close: %w", err)
		}
	})
	return s.closeErr
}

func (s *Store) closeAll() error {
	var errs []error
	if s.flat != nil {
		errs = append(errs, s.flat.Close())
	}
	if s.sys != nil {
		errs = append(errs, s.sys.close())
	}
	return errors.Join(errs...)
}

// PutStorage streams r into the storage engine. It reads at most limit bytes
// (limit ≤ 0: no limit; more → *TooLargeError) and, when want is not empty,
// fails with *MismatchError unless the sha256 hex of the bytes is want. Adding
// content that is already stored succeeds (and verifies the bytes).
//
// For every add: ctx is checked between reads (a Read that blocks is ended by
// its reader, say an HTTP server's timeout); a reader error ends the add with
// ErrTruncated wrapping it; on any failure nothing becomes visible and no
// temporary file is left (blocks of an ipfs add wait for Sweep). Unless
// Options.NoSync, content is durable when an add returns.
func (s *Store) PutStorage(ctx context.Context, r io.Reader, limit int64, want string) (Info, error) {
	return s.putStorage(ctx, r, limit, want)
}

// AddUnixFS imports r as one UnixFS file (no directory wrapping) and keeps its
// blocks. Without want it uses profile p (nil means unixfs.KuboV0, what
// `ipfs add` gives). With want (a CID) and a nil p, the profile is the one
// that CID implies (a CIDv0 is KuboV0; a CIDv1 may be KuboV1 or V1_2025, so
// the input is staged in a temporary file and imported with each until one
// gives want); with want and p, only p is tried. The result must be want
// (*MismatchError otherwise). limit is as for PutStorage. Info.Hash is want as
// given, or the root CID's default string (base58 "Qm…" for v0, base32 for v1).
func (s *Store) AddUnixFS(ctx context.Context, r io.Reader, limit int64, want string, p *unixfs.Profile) (Info, error) {
	return s.addUnixFS(ctx, r, limit, want, p)
}

// AddCAR imports a CARv1 (or v2) stream whose single root must be wantRoot when
// wantRoot is set, checks every block against its CID and that the root's DAG
// is complete, and keeps its blocks. The root may be a UnixFS file or
// directory. limit counts the CAR's bytes. A directory's Size is the sum of the
// sizes of the distinct files in its tree.
func (s *Store) AddCAR(ctx context.Context, r io.Reader, limit int64, wantRoot string) (Info, error) {
	return s.addCAR(ctx, r, limit, wantRoot)
}

// Stat describes stored content, or fails with ErrNotFound.
//
// Hashes are keys exactly as given: a storage hash must be 64 lowercase hex
// digits, and an ipfs CID is looked up as written, so a CIDv0 "Qm…" and the
// same DAG's CIDv1 "bafy…" are different keys (each exists if it was added
// under that string). A malformed hash fails with ErrInvalidHash.
func (s *Store) Stat(ctx context.Context, hash string) (Info, error) {
	k, err := parseKey(hash)
	if err != nil {
		return Info{}, err
	}
	if k.engine == EngineStorage {
		return s.statStorage(k)
	}
	return s.statRoot(k)
}

// Open opens a stored file for reading and seeking (ErrIsDir for a directory).
// For an ipfs file, ctx bounds the reads made through the returned File.
func (s *Store) Open(ctx context.Context, hash string) (File, error) {
	k, err := parseKey(hash)
	if err != nil {
		return nil, err
	}
	if k.engine == EngineStorage {
		return s.openStorage(k)
	}
	return s.openIPFS(ctx, k)
}

// WriteTar writes content as an uncompressed tar archive (a directory with its
// tree, or a single file), the way `ipfs get --archive` does: the top entry
// is named by the hash as given. Entries carry the UnixFS mode and mtime when
// the DAG has them (0644/0755 and the Unix epoch otherwise), so the archive of
// a hash is always the same bytes.
func (s *Store) WriteTar(ctx context.Context, hash string, w io.Writer) error {
	k, err := parseKey(hash)
	if err != nil {
		return err
	}
	return s.writeTar(ctx, k, w)
}

// Delete removes content. For ipfs content it drops the root; its blocks are
// removed by the next Sweep unless another root uses them. Deleting absent
// content is not an error.
func (s *Store) Delete(ctx context.Context, hash string) error {
	k, err := parseKey(hash)
	if err != nil {
		return err
	}
	if k.engine == EngineStorage {
		return s.deleteStorage(k)
	}
	return s.deleteRoot(k)
}

// Sweep removes the blocks that no stored root uses, and temporary files older
// than an hour. It runs alongside adds: a block that an add in progress has
// written or reused is kept, as is every block of a root whose add completes
// while the sweep runs. One sweep runs at a time.
func (s *Store) Sweep(ctx context.Context) (SweepStats, error) {
	return s.sweep(ctx)
}

// Blockstore exposes the ipfs engine's blocks (read side: the gateway; later,
// bitswap). Writes through it are not tracked as roots, and Sweep removes
// them unless a root lists them.
func (s *Store) Blockstore() blockstore.Blockstore { return s.bs }
