// Package files is the core channel node's file service. It puts uploads in the
// local filestore and records them in the database with a grace-period pin,
// makes the file of a STORE message present before the message is processed
// (from the local store, then from the configured sources: an external kubo,
// and, later, peers), serves the content of non-inline messages, and collects
// garbage: expired grace pins, then files no pin holds, then unused blocks
// (ccn-protocol.md §3.8, §3.9).
//
// Every byte that comes from outside the local store is re-hashed before it is
// kept or used.
package files

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// ErrUnavailable is wrapped when a file or content cannot be found locally nor
// at any source; the pipeline retries the message with FILE_UNAVAILABLE (4) or
// CONTENT_UNAVAILABLE (3).
var ErrUnavailable = errors.New("files: unavailable")

// Source is somewhere else a file may be found: an external kubo node, and in
// the peer-to-peer issue, other core channel nodes. Fetch returns the bytes of
// the file hash (engine "storage": sha256 hex; "ipfs": a CID), at most limit
// bytes; the service re-hashes whatever it returns. An error wrapping
// ErrUnavailable means "not here"; other errors are logged.
type Source interface {
	Name() string
	Fetch(ctx context.Context, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error)
}

// Pinner is an optional Source that also keeps copies: the service asks it to
// pin every file a STORE pins, and to unpin what the garbage collector deletes
// (kubo's pin add / pin rm).
type Pinner interface {
	Pin(ctx context.Context, engine filestore.Engine, hash string) error
	Unpin(ctx context.Context, engine filestore.Engine, hash string) error
}

// Config tunes the service. Zero fields take DefaultConfig's values.
type Config struct {
	// GracePeriod is how long an upload no message pins, or a file whose last
	// pin was forgotten, is kept (pyaleph storage.grace_period: 24 h).
	GracePeriod time.Duration
	// GCPeriod is how often the garbage collector runs (pyaleph: 24 h; the first
	// run comes one period after start).
	GCPeriod time.Duration
	// MaxContentSize bounds the content of a non-inline message (pyaleph's
	// IPFS cat limit: 100 MiB).
	MaxContentSize int64
	// MaxFetchSize bounds a STORE file fetched from a source (the authenticated
	// ipfs upload limit: 1 GiB).
	MaxFetchSize int64
	// FetchTimeout bounds fetching one file from the sources.
	FetchTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{GracePeriod: 24 * time.Hour, GCPeriod: 24 * time.Hour, MaxContentSize: 100 << 20,
		MaxFetchSize: 1 << 30, FetchTimeout: 5 * time.Minute}
}

// Deps are the parts the service works with.
type Deps struct {
	// Files keeps the bytes; required.
	Files *filestore.Store
	// DB keeps file rows and pins; required.
	DB store.Store
	// Sources are tried in order when a file is not local.
	Sources []Source
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
}

// GCStats reports one garbage collection.
type GCStats struct {
	GracePinsExpired int
	FilesDeleted     int
	BytesDeleted     int64
	Sweep            filestore.SweepStats
}

// Service is the file service.
type Service struct {
	// implementation fields
}

// New returns a service.
func New(d Deps, cfg Config) (*Service, error) { return nil, errors.New("files: not implemented") }

// AddStorage stores an upload in the storage engine (see filestore.PutStorage),
// records its file row and a grace-period pin, and returns the row.
func (s *Service) AddStorage(ctx context.Context, r io.Reader, limit int64, want string) (*store.File, error) {
	return nil, errors.New("files: not implemented")
}

// AddIPFS is AddStorage for the ipfs engine (filestore.AddUnixFS, kubo's
// default CIDv0 profile unless want implies another).
func (s *Service) AddIPFS(ctx context.Context, r io.Reader, limit int64, want string) (*store.File, error) {
	return nil, errors.New("files: not implemented")
}

// AddCAR is AddStorage for a CAR upload (filestore.AddCAR).
func (s *Service) AddCAR(ctx context.Context, r io.Reader, limit int64, wantRoot string) (*store.File, error) {
	return nil, errors.New("files: not implemented")
}

// Open opens a file the node keeps (store.ErrNotFound-wrapping error when the
// database does not know it; filestore errors otherwise).
func (s *Service) Open(ctx context.Context, hash string) (filestore.File, error) {
	return nil, errors.New("files: not implemented")
}

// WriteTar writes a directory (or file) the node keeps as a tar archive.
func (s *Service) WriteTar(ctx context.Context, hash string, w io.Writer) error {
	return errors.New("files: not implemented")
}

// Gateway returns the read-only IPFS gateway handler for /ipfs/{cid}[/path]:
// directory listings, Range, ETag, Cache-Control: immutable.
func (s *Service) Gateway() http.Handler { return http.NotFoundHandler() }

// FetchContent implements pipeline.ContentFetcher: the content of a storage or
// ipfs message, from the local store or a source, at most MaxContentSize bytes,
// re-hashed.
func (s *Service) FetchContent(ctx context.Context, itemType message.ItemType, itemHash string) ([]byte, error) {
	return nil, errors.New("files: not implemented")
}

// EnsureFile implements pipeline.FileProvider: it makes the file of a STORE
// present locally (fetching and re-hashing it from a source if needed), makes
// sure its file row exists, and returns the row.
func (s *Service) EnsureFile(ctx context.Context, engine filestore.Engine, hash string) (*store.File, error) {
	return nil, errors.New("files: not implemented")
}

// CollectGarbage runs one collection: expire grace pins, delete the files no
// pin holds (row, then bytes, then the Pinner's copy), then sweep blocks.
func (s *Service) CollectGarbage(ctx context.Context) (GCStats, error) {
	return GCStats{}, errors.New("files: not implemented")
}

// Run collects garbage every GCPeriod until ctx ends.
func (s *Service) Run(ctx context.Context) error { <-ctx.Done(); return nil }
