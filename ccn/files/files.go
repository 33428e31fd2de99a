// Package files is the core channel node's file service. It puts uploads in the
// local filestore and records them in the database with a grace-period pin,
// makes the file of a STORE message present before the message is processed
// (from the local store, then from the configured sources: peer nodes over
// bitswap or HTTP, an external kubo), serves the content of non-inline messages, and collects
// garbage: expired grace pins, then files no pin holds, then unused blocks
// (ccn-protocol.md §3.8, §3.9).
//
// Every byte that comes from outside the local store is re-hashed before it is
// kept or used.
//
// # Collection never takes bytes a row needs
//
// A file row with a pin must have its bytes. The garbage collector deletes a
// row only when no pin holds it (in a database transaction, and writes are
// serialized, so a STORE that pins the file either lands before and keeps
// it, or after and finds no row and retries), then deletes the bytes. It does
// both under the file's hash lock, which every add with a known hash, and
// EnsureFile, hold across "bytes in the filestore, then row and grace pin":
// so an add never records a row whose bytes the collector is deleting. An
// upload whose hash is only known once it is read (no want) cannot take the
// lock beforehand; instead the collector deletes bytes only while no such
// upload is in flight, and otherwise leaves them for its next run (bytes kept
// longer, never a row without bytes). A restart in between leaves those bytes
// on disk unreferenced, which is harmless: a later add of the same content
// reuses them.
//
// # Gateway
//
// The gateway serves any CID whose blocks are in the local blockstore, as
// kubo's does: a file the collector deleted stops being served once Sweep has
// removed its blocks. It has no exchange, so a block that is not local is not
// found at once rather than searched for.
package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/gateway"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/unixfs"
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

// Importer is an optional Pinner that cannot find by itself what this node
// keeps (an external kubo, while nodes do not exchange blocks): the service
// sends it the DAG of every ipfs file a STORE pins, as a CAR stream, and it
// imports and pins the root (kubo's dag/import).
type Importer interface {
	Import(ctx context.Context, car io.Reader) ([]string, error)
}

// DAGSource is an optional Source that returns the DAG of an ipfs hash as a
// CAR v1 stream whose single root is hash (blocks are verified by the file
// store on import; directories work too). limit bounds the blocks' total size;
// the service passes dagLimit of its own file limit. The service uses it
// instead of Fetch for the ipfs engine.
type DAGSource interface {
	FetchDAG(ctx context.Context, hash string, limit int64) (io.ReadCloser, error)
}

// Fanout is an optional Source that stands for several others, such as the
// peer nodes of ccn/peerfetch. The service asks each of them in turn and
// re-hashes what each returns, so that a peer that serves wrong bytes is
// passed over for the next one instead of ending the search at that source.
type Fanout interface {
	Sources(ctx context.Context, engine filestore.Engine, hash string) []Source
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
	// FetchTimeout bounds fetching one file from the sources. An EnsureFile
	// caller may stop waiting sooner; the fetch goes on, so that a retry
	// finds the file (or joins the fetch).
	FetchTimeout time.Duration
	// GCBatch is how many unpinned files the collector lists at a time.
	GCBatch int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{GracePeriod: 24 * time.Hour, GCPeriod: 24 * time.Hour, MaxContentSize: 100 << 20,
		MaxFetchSize: 1 << 30, FetchTimeout: 5 * time.Minute, GCBatch: 1000}
}

// withDefaults fills zero fields from DefaultConfig and refuses negative ones.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.GracePeriod < 0 || c.GCPeriod < 0 || c.MaxContentSize < 0 || c.MaxFetchSize < 0 || c.FetchTimeout < 0 || c.GCBatch < 0 {
		return c, errors.New("files: negative configuration value")
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = d.GracePeriod
	}
	if c.GCPeriod == 0 {
		c.GCPeriod = d.GCPeriod
	}
	if c.MaxContentSize == 0 {
		c.MaxContentSize = d.MaxContentSize
	}
	if c.MaxFetchSize == 0 {
		c.MaxFetchSize = d.MaxFetchSize
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = d.FetchTimeout
	}
	if c.GCBatch == 0 {
		c.GCBatch = d.GCBatch
	}
	return c, nil
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
	// Metrics receives the gateway's metrics; nil keeps them in a private
	// registry.
	Metrics prometheus.Registerer
}

// GCStats reports one garbage collection.
type GCStats struct {
	GracePinsExpired int
	FilesDeleted     int
	BytesDeleted     int64
	// FilesBusy counts the unpinned files left for the next collection
	// because an add or a fetch of the same hash was in progress.
	FilesBusy int
	Sweep     filestore.SweepStats
}

// Service is the file service. Its methods are safe for concurrent use.
type Service struct {
	files   *filestore.Store
	db      store.Store
	sources []Source
	now     func() time.Time
	log     *slog.Logger
	cfg     Config
	gateway http.Handler

	locks hashLocks

	// anonMu guards anon, the number of adds in flight whose hash is not
	// known beforehand, and orphans, the collected files whose bytes were
	// left for later because such an add was in flight.
	anonMu  sync.Mutex
	anon    int
	orphans map[string]bool

	// flights are the EnsureFile calls in progress, by hash.
	flightMu sync.Mutex
	flights  map[string]*flight

	// bg bounds the work that outlives a caller (fetches, pins); Close
	// cancels it and waits for bgWG.
	bg       context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
	gcMu     sync.Mutex // one collection at a time

	// testHookGC, when set, is called by Run after each collection;
	// testHookCollect as a collection is about to delete an unpinned file.
	testHookGC      func(GCStats, error)
	testHookCollect func(hash string)
}

// New returns a service.
func New(d Deps, cfg Config) (*Service, error) {
	if d.Files == nil {
		return nil, errors.New("files: no filestore")
	}
	if d.DB == nil {
		return nil, errors.New("files: no database")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{files: d.Files, db: d.DB, sources: d.Sources, now: d.Now, log: d.Log, cfg: cfg,
		orphans: map[string]bool{}, flights: map[string]*flight{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	reg := d.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if s.gateway, err = newGateway(d.Files, reg); err != nil {
		return nil, err
	}
	s.bg, s.bgCancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops the fetches and pins still running for callers that stopped
// waiting, and waits for them. Call it before closing the filestore and the
// database.
func (s *Service) Close() error {
	// Under flightMu, so that no EnsureFile starts a flight after it.
	s.flightMu.Lock()
	s.bgCancel()
	s.flightMu.Unlock()
	s.bgWG.Wait()
	return nil
}

// engineOf tells a file hash's engine by its shape: 64 lowercase hex digits
// for storage, a CID Aleph accepts for ipfs.
func engineOf(hash string) (filestore.Engine, error) {
	if message.IsHexHash(hash) {
		return filestore.EngineStorage, nil
	}
	if _, err := unixfs.ParseCID(hash); err != nil {
		return "", fmt.Errorf("%w: %w", filestore.ErrInvalidHash, err)
	}
	return filestore.EngineIPFS, nil
}

// AddStorage stores an upload in the storage engine (see filestore.PutStorage),
// records its file row and a grace-period pin, and returns the row.
func (s *Service) AddStorage(ctx context.Context, r io.Reader, limit int64, want string) (*store.File, error) {
	return s.addAndRecord(ctx, want, func(ctx context.Context) (filestore.Info, error) {
		return s.files.PutStorage(ctx, r, limit, want)
	})
}

// AddIPFS is AddStorage for the ipfs engine (filestore.AddUnixFS, kubo's
// default CIDv0 profile unless want implies another).
func (s *Service) AddIPFS(ctx context.Context, r io.Reader, limit int64, want string) (*store.File, error) {
	return s.addAndRecord(ctx, want, func(ctx context.Context) (filestore.Info, error) {
		return s.files.AddUnixFS(ctx, r, limit, want, nil)
	})
}

// AddCAR is AddStorage for a CAR upload (filestore.AddCAR).
func (s *Service) AddCAR(ctx context.Context, r io.Reader, limit int64, wantRoot string) (*store.File, error) {
	return s.addAndRecord(ctx, wantRoot, func(ctx context.Context) (filestore.Info, error) {
		return s.files.AddCAR(ctx, r, limit, wantRoot)
	})
}

// addAndRecord runs add and records its result, so that the collector never
// deletes the bytes of the row it records (see the package comment): with a
// known hash under that hash's lock, otherwise counted as an anonymous add.
func (s *Service) addAndRecord(ctx context.Context, want string, add func(context.Context) (filestore.Info, error)) (*store.File, error) {
	if want != "" {
		unlock, err := s.locks.lock(ctx, want)
		if err != nil {
			return nil, err
		}
		defer unlock()
		info, err := add(ctx)
		if err != nil {
			return nil, err
		}
		return s.record(ctx, info)
	}
	s.anonMu.Lock()
	s.anon++
	s.anonMu.Unlock()
	defer func() {
		s.anonMu.Lock()
		s.anon--
		s.anonMu.Unlock()
	}()
	info, err := add(ctx)
	if err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, info.Hash)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.record(ctx, info)
}

// record writes the file row of info and a grace-period pin in one
// transaction. The caller holds the hash's lock.
func (s *Service) record(ctx context.Context, info filestore.Info) (*store.File, error) {
	now := s.now()
	row := &store.File{Hash: info.Hash, Size: info.Size, Type: info.Kind}
	deleteBy := now.Add(s.cfg.GracePeriod)
	err := s.db.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutFile(ctx, row); err != nil {
			return err
		}
		return tx.InsertFilePin(ctx, &store.FilePin{FileHash: info.Hash, Type: store.PinGracePeriod,
			Created: float64(now.UnixMicro()) / 1e6, DeleteBy: &deleteBy})
	})
	if err != nil {
		return nil, fmt.Errorf("files: record %s: %w", info.Hash, err)
	}
	return row, nil
}

// known checks that hash is well formed and that the database knows the file.
func (s *Service) known(ctx context.Context, hash string) error {
	if _, err := engineOf(hash); err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if _, err := s.db.GetFile(ctx, hash); err != nil {
		return fmt.Errorf("files: file %s: %w", hash, err)
	}
	return nil
}

// Open opens a file the node keeps (store.ErrNotFound-wrapping error when the
// database does not know it; filestore errors otherwise).
func (s *Service) Open(ctx context.Context, hash string) (filestore.File, error) {
	if err := s.known(ctx, hash); err != nil {
		return nil, err
	}
	return s.files.Open(ctx, hash)
}

// WriteTar writes a directory (or file) the node keeps as a tar archive.
func (s *Service) WriteTar(ctx context.Context, hash string, w io.Writer) error {
	if err := s.known(ctx, hash); err != nil {
		return err
	}
	return s.files.WriteTar(ctx, hash, w)
}

// Gateway returns the read-only IPFS gateway handler for /ipfs/{cid}[/path]:
// directory listings, Range, ETag, Cache-Control: immutable.
func (s *Service) Gateway() http.Handler { return s.gateway }

// newGateway builds boxo's gateway over the local blockstore, offline.
func newGateway(fs *filestore.Store, reg prometheus.Registerer) (http.Handler, error) {
	backend, err := gateway.NewBlocksBackend(blockservice.New(fs.Blockstore(), nil))
	if err != nil {
		return nil, fmt.Errorf("files: gateway backend: %w", err)
	}
	h := gateway.NewHandler(gateway.Config{
		DeserializedResponses: true,
		NoDNSLink:             true,
		DisableHTMLErrors:     true,
		MetricsRegistry:       reg,
	}, backend)
	// Only immutable /ipfs/ paths: /ipns/ would resolve names over the network.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) < len("/ipfs/") || r.URL.Path[:len("/ipfs/")] != "/ipfs/" {
			http.Error(w, "not found: the gateway serves /ipfs/{cid}[/path]", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}
