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

	"github.com/ipfs/boxo/blockstore"

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
	BytesRemoved               int64
}

// Store is a file store rooted in a directory. Its methods are safe for
// concurrent use.
type Store struct {
	// implementation fields
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	return nil, errors.New("filestore: not implemented")
}

// Close releases the store.
func (s *Store) Close() error { return nil }

// PutStorage streams r into the storage engine. It reads at most limit bytes
// (limit ≤ 0: no limit; more → *TooLargeError) and, when want is not empty,
// fails with *MismatchError unless the sha256 hex of the bytes is want. Adding
// content that is already stored succeeds (and verifies the bytes).
func (s *Store) PutStorage(ctx context.Context, r io.Reader, limit int64, want string) (Info, error) {
	return Info{}, errors.New("filestore: not implemented")
}

// AddUnixFS imports r as one UnixFS file (no directory wrapping) and keeps its
// blocks. Without want it uses profile p (nil means unixfs.KuboV0, what
// `ipfs add` gives). With want (a CID), the profile is the one that CID implies
// (unixfs.ParseCID and the candidates of unixfs.Verify: a CIDv1 may be either
// of two profiles), and the result must be want (*MismatchError otherwise).
// limit is as for PutStorage.
func (s *Store) AddUnixFS(ctx context.Context, r io.Reader, limit int64, want string, p *unixfs.Profile) (Info, error) {
	return Info{}, errors.New("filestore: not implemented")
}

// AddCAR imports a CARv1 (or v2) stream whose single root must be wantRoot when
// wantRoot is set, checks every block against its CID and that the root's DAG
// is complete, and keeps its blocks. The root may be a UnixFS file or
// directory.
func (s *Store) AddCAR(ctx context.Context, r io.Reader, limit int64, wantRoot string) (Info, error) {
	return Info{}, errors.New("filestore: not implemented")
}

// Stat describes stored content, or fails with ErrNotFound.
func (s *Store) Stat(ctx context.Context, hash string) (Info, error) {
	return Info{}, errors.New("filestore: not implemented")
}

// Open opens a stored file for reading and seeking (ErrIsDir for a directory).
func (s *Store) Open(ctx context.Context, hash string) (File, error) {
	return nil, errors.New("filestore: not implemented")
}

// WriteTar writes content as an uncompressed tar archive (a directory with its
// tree, or a single file), the way `ipfs get --archive` does.
func (s *Store) WriteTar(ctx context.Context, hash string, w io.Writer) error {
	return errors.New("filestore: not implemented")
}

// Delete removes content. For ipfs content it drops the root; its blocks are
// removed by the next Sweep unless another root uses them. Deleting absent
// content is not an error.
func (s *Store) Delete(ctx context.Context, hash string) error {
	return errors.New("filestore: not implemented")
}

// Sweep removes the blocks that no stored root uses. Adds in progress are
// waited for (and wait for it), so a sweep never removes a block of a root
// being added.
func (s *Store) Sweep(ctx context.Context) (SweepStats, error) {
	return SweepStats{}, errors.New("filestore: not implemented")
}

// Blockstore exposes the ipfs engine's blocks (read side: the gateway; later,
// bitswap). Writes through it are not tracked as roots.
func (s *Store) Blockstore() blockstore.Blockstore { return nil }
