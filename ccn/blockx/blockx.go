// Package blockx ("block exchange") runs boxo's bitswap on the node's libp2p
// host, so that core channel nodes fetch ipfs files from each other and from
// standard IPFS peers such as kubo, and serve them every block of the local
// file store.
//
// There is no DHT: wants go to the peers the host is connected to (the
// node's p2p layer connects them). A fetch walks the DAG from its root
// (dag-pb and raw leaves, CIDv0 and v1) and streams it as a CAR v1, which the
// files service imports with filestore.AddCAR: that import checks every block
// against its CID and keeps them under the store's add and collection
// protocol. Bitswap itself never writes into the file store; see readOnly.
package blockx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/unixfs"
)

// Config tunes an Exchange. Zero fields take DefaultConfig's values.
type Config struct {
	// MaxBlockSize refuses a received block larger than this (IPFS caps
	// blocks at 2 MiB; bitswap messages at 4 MiB).
	MaxBlockSize int
	// MaxBlocks bounds the blocks of one fetch.
	MaxBlocks int
	// FetchTimeout bounds one Fetch or FetchDAG from its call to the end of
	// its stream.
	FetchTimeout time.Duration
	// StallTimeout is how long a fetch waits for the next block (the root
	// first) before it gives up: bitswap has no "not found", so a block no
	// peer has is a block that does not come.
	StallTimeout time.Duration
	// Window is how many blocks a fetch wants at once.
	Window int
	// Metrics receives the exchange's counters; nil keeps them private.
	Metrics prometheus.Registerer
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBlockSize: 2 << 20, MaxBlocks: 1 << 18, FetchTimeout: 5 * time.Minute,
		StallTimeout: 10 * time.Second, Window: 128}
}

func (c Config) withDefaults() (Config, error) {
	if c.MaxBlockSize < 0 || c.MaxBlocks < 0 || c.FetchTimeout < 0 || c.StallTimeout < 0 || c.Window < 0 {
		return c, errors.New("blockx: negative configuration value")
	}
	d := DefaultConfig()
	if c.MaxBlockSize == 0 {
		c.MaxBlockSize = d.MaxBlockSize
	}
	if c.MaxBlocks == 0 {
		c.MaxBlocks = d.MaxBlocks
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = d.FetchTimeout
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = d.StallTimeout
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	return c, nil
}

// Errors, wrapped with context.
var (
	// ErrLimit: a fetch went over the byte limit, MaxBlocks or MaxBlockSize.
	ErrLimit = errors.New("blockx: over limit")
	// ErrUnsupported: the DAG has a node that is neither dag-pb UnixFS nor raw.
	ErrUnsupported = errors.New("blockx: unsupported block")
	// ErrClosed: the exchange is closed.
	ErrClosed = errors.New("blockx: closed")
)

// Exchange is bitswap on a libp2p host over a file store's blocks. Its
// methods are safe for concurrent use.
type Exchange struct {
	h     host.Host
	local blockstore.Blockstore
	swap  *bitswap.Bitswap
	cfg   Config
	log   *slog.Logger
	m     *metrics

	// ctx ends every fetch when the exchange closes; wg counts the fetch
	// goroutines.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // guards wg.Add against Close
	wg     sync.WaitGroup
	closed bool
}

// New starts bitswap on h, serving the blocks of bs (the file store's
// Blockstore) to any peer and fetching from connected peers. ctx carries
// values only; Close stops the exchange.
func New(ctx context.Context, h host.Host, bs blockstore.Blockstore, cfg Config, log *slog.Logger) (*Exchange, error) {
	if h == nil {
		return nil, errors.New("blockx: no host")
	}
	if bs == nil {
		return nil, errors.New("blockx: no blockstore")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	e := &Exchange{h: h, local: bs, cfg: cfg, log: log, m: m}
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.swap = bitswap.New(e.ctx, bsnet.NewFromIpfsHost(h), nil, readOnly{bs},
		// Has calls on every received block only feed a statistic.
		bitswap.WithoutDuplicatedBlockStats(),
		// With no content routing, connected peers are the only source: send
		// wants again soon when a peer dropped or missed them (default 1 min).
		bitswap.RebroadcastDelay(time.Second),
	)
	return e, nil
}

// Name implements files.Source.
func (e *Exchange) Name() string { return "bitswap" }

// Close ends the fetches in progress, waits for them and stops bitswap. The
// host stays up: it belongs to the caller. Close the files service that uses
// the exchange first, and the host after.
func (e *Exchange) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.cancel()
	e.mu.Unlock()
	e.wg.Wait()
	return e.swap.Close()
}

// Fetch implements files.Source: the bytes of an ipfs file, walked in order
// from its DAG. The storage engine, and a root no connected peer sends within
// StallTimeout, give an error wrapping files.ErrUnavailable; a directory
// gives filestore.ErrIsDir (use FetchDAG). A file whose root declares more
// than limit bytes is refused at once.
func (e *Exchange) Fetch(ctx context.Context, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error) {
	if engine != filestore.EngineIPFS {
		return nil, fmt.Errorf("bitswap has no %s engine: %w", engine, files.ErrUnavailable)
	}
	return e.start(ctx, hash, limit, false)
}

// FetchDAG implements files.DAGSource: every block of the DAG of hash (a file
// or a directory), as a CAR v1 stream whose root is hash. limit bounds the
// blocks' total size (a file whose root declares more is refused at once).
func (e *Exchange) FetchDAG(ctx context.Context, hash string, limit int64) (io.ReadCloser, error) {
	return e.start(ctx, hash, limit, true)
}

// start gets the root of hash (locally or from a peer), checks it, and walks
// the DAG in a goroutine that writes the CAR (dag) or the file's bytes to the
// returned stream.
func (e *Exchange) start(ctx context.Context, hash string, limit int64, dag bool) (io.ReadCloser, error) {
	c, err := unixfs.ParseCID(hash)
	if err != nil {
		return nil, fmt.Errorf("blockx: fetch %q: %w: %w", hash, filestore.ErrInvalidHash, err)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, fmt.Errorf("blockx: fetch %s: %w: %w", hash, ErrClosed, files.ErrUnavailable)
	}
	e.wg.Add(1)
	e.mu.Unlock()
	fctx, cancel := context.WithTimeout(ctx, e.cfg.FetchTimeout)
	stop := context.AfterFunc(e.ctx, cancel)
	f := &fetch{e: e, ctx: fctx}
	if dag {
		f.limit = limit
	}
	fail := func(err error) (io.ReadCloser, error) {
		stop()
		cancel()
		e.wg.Done()
		e.m.fetch(err)
		return nil, err
	}
	if len(e.h.Network().Peers()) == 0 {
		if _, err := e.local.Get(fctx, c); err != nil {
			return fail(fmt.Errorf("blockx: fetch %s: no connected peer: %w", hash, files.ErrUnavailable))
		}
	}
	f.sess = e.swap.NewSession(fctx)
	root, err := f.getOne(c)
	if err != nil {
		return fail(fmt.Errorf("blockx: fetch %s: %w", hash, err))
	}
	n, err := decode(root)
	if err == nil {
		err = f.count(root)
	}
	switch {
	case err != nil:
	case !dag && !n.file:
		err = fmt.Errorf("%s: %w", hash, filestore.ErrIsDir)
	case n.file && limit > 0 && n.size > uint64(limit):
		err = fmt.Errorf("%s declares %d bytes: %w: %w", hash, n.size, ErrLimit, &filestore.TooLargeError{Limit: limit})
	}
	if err != nil {
		return fail(fmt.Errorf("blockx: fetch %s: %w", hash, err))
	}
	pr, pw := io.Pipe()
	// A writer blocked on a reader that neither reads nor closes is freed
	// when the fetch ends.
	unblock := context.AfterFunc(fctx, func() { pw.CloseWithError(fctx.Err()) })
	done := make(chan struct{})
	go func() {
		defer e.wg.Done()
		defer close(done)
		defer stop()
		defer cancel()
		defer unblock()
		var err error
		if dag {
			err = f.dag(root, pw)
		} else {
			err = f.file(root, limit, pw)
		}
		if err == nil && fctx.Err() != nil {
			err = fctx.Err()
		}
		if err != nil {
			err = fmt.Errorf("blockx: fetch %s: %w", hash, err)
		}
		e.log.Debug("fetch done", "hash", hash, "dag", dag, "blocks", f.blocks, "bytes", f.bytes, "err", err)
		e.m.fetch(err)
		pw.CloseWithError(err)
	}()
	return &stream{pr: pr, cancel: cancel, done: done}, nil
}

// stream is a fetch's output; Close ends the fetch and waits for it.
type stream struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *stream) Read(p []byte) (int, error) { return s.pr.Read(p) }

func (s *stream) Close() error {
	s.pr.CloseWithError(errors.New("blockx: stream closed"))
	s.cancel()
	<-s.done
	return nil
}

// readOnly is the blockstore bitswap sees: reads go to the file store, so
// every local block is served; writes are dropped, since blocks reach the
// file store only through its add protocol (AddCAR), never behind its back.
// (This bitswap client does not write received blocks anyway; the wrapper
// makes sure of it.)
type readOnly struct{ bs blockstore.Blockstore }

func (r readOnly) Has(ctx context.Context, c cid.Cid) (bool, error)         { return r.bs.Has(ctx, c) }
func (r readOnly) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) { return r.bs.Get(ctx, c) }
func (r readOnly) GetSize(ctx context.Context, c cid.Cid) (int, error)      { return r.bs.GetSize(ctx, c) }
func (r readOnly) Put(context.Context, blocks.Block) error                  { return nil }
func (r readOnly) PutMany(context.Context, []blocks.Block) error            { return nil }
func (r readOnly) DeleteBlock(context.Context, cid.Cid) error {
	return errors.New("blockx: the exchange does not delete blocks")
}
func (r readOnly) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	return nil, errors.New("blockx: the exchange does not list blocks")
}

var (
	_ files.Source          = (*Exchange)(nil)
	_ files.DAGSource       = (*Exchange)(nil)
	_ blockstore.Blockstore = readOnly{}
	_ exchange.Fetcher      = (*bitswap.Bitswap)(nil)
)
