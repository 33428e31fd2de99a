// Package node assembles a core channel node from its parts: the store, the
// file store and file service, the signature registry, the processing
// pipeline, the event bus and the HTTP API.
// It owns their lifecycle: Start brings them up, Close shuts them down
// gracefully (HTTP first, so in-flight requests finish, then the pipeline, then
// the store).
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/ccn/antientropy"
	"github.com/go-aleph/go-aleph/ccn/blockx"
	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/ccn/kubo"
	"github.com/go-aleph/go-aleph/ccn/p2p"
	"github.com/go-aleph/go-aleph/ccn/peerfetch"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/store"
	_ "github.com/go-aleph/go-aleph/store/sqlstore" // registers the sqlite and postgres backends
)

// Version is reported by /api/v0/version; cmd/alephd sets it at build time.
var Version = "0.0.0-dev"

// Node is a running core channel node.
type Node struct {
	cfg   config.Config
	log   *slog.Logger
	now   func() time.Time
	store store.Store
	fs    *filestore.Store
	files *files.Service
	bus   *events.Bus
	pipe  *pipeline.Pipeline
	srv   *http.Server
	ln    net.Listener
	reg   *prometheus.Registry

	// The network face; nil when p2p is disabled.
	host  host.Host // given by WithHost
	p2p   *p2p.Node
	bx    *blockx.Exchange
	syncs *antientropy.Service

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	runErr error
}

// Option adjusts a node before it starts.
type Option func(*Node)

// WithHost runs the node's p2p face on an existing libp2p host (libp2p's
// mock network in simulations) instead of a new TCP host. The node does not
// close it.
func WithHost(h host.Host) Option { return func(n *Node) { n.host = h } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(n *Node) { n.now = now } }

// New opens the store (running migrations) and builds every part. Nothing runs
// until Start.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, now: time.Now, bus: events.NewBus()}
	for _, o := range opts {
		o(n)
	}
	if cfg.DB == "" && cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	st, err := store.Open(ctx, cfg.DatabaseDSN())
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", store.BackendFor(cfg.DatabaseDSN()), err)
	}
	n.store = st
	built := false
	defer func() {
		if !built {
			n.closeOpened()
		}
	}()
	n.reg = prometheus.NewRegistry()
	if err := n.openP2P(ctx, cfg, log); err != nil {
		return nil, err
	}
	if err := n.openFiles(ctx, cfg, log); err != nil {
		return nil, err
	}
	pc := pipeline.DefaultConfig()
	pc.MaxRetries = cfg.Pipeline.MaxRetries
	pc.MaxBackoff = time.Duration(cfg.Pipeline.MaxBackoff)
	pc.SyncTimeout = time.Duration(cfg.Pipeline.SyncTimeout)
	pc.BatchSize = cfg.Pipeline.BatchSize
	pc.GracePeriod = time.Duration(cfg.Storage.GracePeriod)
	verifier := all.NewRegistry()
	tombs := antientropy.NewTombstones(100_000, 10*time.Minute, n.now)
	n.pipe, err = pipeline.New(pipeline.Deps{
		Store:      st,
		Verifier:   verifier,
		Fetcher:    n.files,
		Files:      n.files,
		Bus:        n.bus,
		Now:        n.now,
		Log:        log.With("part", "pipeline"),
		Announce:   n.announce,
		Tombstones: tombs,
	}, pc)
	if err != nil {
		return nil, fmt.Errorf("build pipeline: %w", err)
	}
	if n.p2p != nil {
		n.syncs, err = antientropy.New(antientropy.Deps{
			Host: n.p2p.Host(), Store: st, Submitter: n.pipe, Bus: n.bus, Allowed: n.p2p.Allowed,
			Verify: verifier.Verify, Tombstones: tombs,
			Metrics: n.reg, Log: log.With("part", "antientropy"), Now: n.now,
		}, antientropy.Config{Interval: time.Duration(cfg.P2P.SyncInterval)})
		if err != nil {
			return nil, fmt.Errorf("build anti-entropy: %w", err)
		}
	}
	reg := n.reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	handler := api.New(api.Deps{
		Submitter: n.pipe,
		Store:     st,
		Bus:       n.bus,
		Metrics:   reg,
		Version:   Version,
		Now:       n.now,
		Log:       log.With("part", "api"),
		Files:     n.files,
		Verifier:  verifier,
	}, api.Config{
		BodyLimit:                cfg.API.BodyLimit,
		MaxWebsockets:            cfg.API.MaxWebsockets,
		MessageTopic:             cfg.Topic,
		MaxUnauthenticatedUpload: int64(cfg.Storage.MaxUnauthenticatedUploadFileSize),
		MaxStorageFile:           int64(cfg.Storage.MaxFileSize),
		MaxIPFSFile:              int64(cfg.IPFS.MaxUploadFileSize),
		MaxCARFile:               int64(cfg.IPFS.MaxUploadCARSize),
	})
	n.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	built = true
	return n, nil
}

// submitter hands gossiped messages to the pipeline, which is built after
// the host (the file service needs the host, the pipeline the file service).
type submitter struct{ n *Node }

func (s submitter) Submit(ctx context.Context, raw []byte, opts pipeline.SubmitOptions) (pipeline.SubmitResult, error) {
	return s.n.pipe.Submit(ctx, raw, opts)
}

// openP2P starts the libp2p host and joins the topics (loops run from Start).
func (n *Node) openP2P(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if !cfg.P2P.Enabled {
		return nil
	}
	var key crypto.PrivKey
	if n.host == nil {
		k, err := p2p.LoadOrCreateKey(cfg.P2PKeyFile())
		if err != nil {
			return err
		}
		key = k
	}
	pn, err := p2p.New(ctx, p2p.Config{
		Listen:            cfg.P2P.Listen,
		Bootstrap:         cfg.P2P.Peers,
		AllowPeers:        cfg.P2P.AllowPeers,
		Topic:             cfg.Topic,
		AliveTopic:        cfg.P2P.AliveTopic,
		AliveInterval:     time.Duration(cfg.P2P.AliveInterval),
		ReconnectInterval: time.Duration(cfg.P2P.ReconnectDelay),
		AnnounceHTTP:      cfg.P2P.AnnounceHTTP,
		PeerRate:          float64(cfg.P2P.PeerRate),
		PeerBurst:         cfg.P2P.PeerBurst,
		Version:           Version,
	}, p2p.Deps{Key: key, Host: n.host, Submitter: submitter{n}, Metrics: p2p.NewMetrics(n.reg), Log: log.With("part", "p2p"), Now: n.now})
	if err != nil {
		return err
	}
	n.p2p = pn
	return nil
}

// closeOpened closes the parts New opened before it failed.
func (n *Node) closeOpened() {
	if n.files != nil {
		n.files.Close()
	}
	if n.fs != nil {
		n.fs.Close()
	}
	n.closeP2P()
	n.store.Close()
}

func (n *Node) closeP2P() {
	if n.bx != nil {
		n.bx.Close()
	}
	if n.p2p != nil {
		n.p2p.Close()
	}
}

// announce gossips a message the API accepted.
func (n *Node) announce(raw []byte) {
	if n.p2p != nil {
		n.p2p.Publish(raw)
	}
}

// openFiles opens the file store and builds the file service, with an
// external kubo as a source and pinner when ipfs.api is set, and the peers
// (bitswap and their HTTP APIs) when p2p is enabled.
func (n *Node) openFiles(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	fs, err := filestore.Open(cfg.FilesDir(), filestore.Options{NoSync: cfg.Storage.NoSync, Log: log.With("part", "filestore")})
	if err != nil {
		return fmt.Errorf("open file store: %w", err)
	}
	var sources []files.Source
	if cfg.IPFS.API != "" {
		sources = append(sources, kubo.New(cfg.IPFS.API, nil))
	}
	if n.p2p != nil {
		bx, err := blockx.New(context.WithoutCancel(ctx), n.p2p.Host(), fs.Blockstore(), blockx.Config{Metrics: n.reg}, log.With("part", "bitswap"))
		if err != nil {
			fs.Close()
			return fmt.Errorf("start block exchange: %w", err)
		}
		n.bx = bx
		sources = append(sources, bx, peerfetch.New(n.p2p.HTTPPeers, nil, log.With("part", "peerfetch")))
	}
	fc := files.DefaultConfig()
	fc.GracePeriod = time.Duration(cfg.Storage.GracePeriod)
	fc.GCPeriod = time.Duration(cfg.Storage.GCPeriod)
	fc.MaxFetchSize = int64(cfg.IPFS.MaxUploadFileSize)
	svc, err := files.New(files.Deps{Files: fs, DB: n.store, Sources: sources, Now: n.now, Log: log.With("part", "files")}, fc)
	if err != nil {
		fs.Close()
		return fmt.Errorf("build file service: %w", err)
	}
	n.fs, n.files = fs, svc
	return nil
}

// Start listens on the configured address and runs the API and the pipeline in
// the background. Use Err or Close to learn how they ended.
func (n *Node) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.cfg.API.Listen, err)
	}
	n.ln = ln
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	// Shutdown does not wait for hijacked (websocket) connections; their handlers
	// end when this context is cancelled, right after Shutdown returns.
	n.srv.BaseContext = func(net.Listener) context.Context { return runCtx }
	n.wg.Add(3)
	go func() {
		defer n.wg.Done()
		if err := n.files.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			n.fail(fmt.Errorf("file service: %w", err))
		}
	}()
	go func() {
		defer n.wg.Done()
		if err := n.pipe.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			n.fail(fmt.Errorf("pipeline: %w", err))
		}
	}()
	go func() {
		defer n.wg.Done()
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.fail(fmt.Errorf("http server: %w", err))
		}
	}()
	if n.p2p != nil {
		if n.cfg.P2P.AnnounceHTTP == "" {
			if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil && !net.ParseIP(host).IsUnspecified() {
				n.p2p.SetAnnounceHTTP(n.URL())
			}
		}
		if err := n.syncs.Start(runCtx); err != nil {
			cancel()
			n.srv.Close()
			n.wg.Wait()
			return err
		}
		n.p2p.Run(runCtx)
		n.log.Info("p2p host started", "peer_id", n.p2p.ID(), "addrs", n.p2p.Addrs())
	}
	n.log.Info("core channel node started", "url", n.URL(), "db", store.BackendFor(n.cfg.DatabaseDSN()), "version", Version)
	return nil
}

func (n *Node) fail(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runErr == nil {
		n.runErr = err
		n.log.Error("node part stopped", "err", err)
	}
}

// Err returns the first error a background part stopped with, or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runErr
}

// URL returns the API's base URL, such as http://127.0.0.1:4024.
func (n *Node) URL() string {
	if n.ln == nil {
		return ""
	}
	return "http://" + n.ln.Addr().String()
}

// Events returns the node's event bus: what became of each message.
func (n *Node) Events() *events.Bus { return n.bus }

// P2P returns the node's network face, nil when p2p is disabled.
func (n *Node) P2P() *p2p.Node { return n.p2p }

// AntiEntropy returns the anti-entropy service, nil when p2p is disabled.
func (n *Node) AntiEntropy() *antientropy.Service { return n.syncs }

// Store returns the node's store (for tools and tests).
func (n *Node) Store() store.Store { return n.store }

// Close shuts down gracefully: the HTTP server stops accepting and waits for
// in-flight requests (bounded by ctx), then the pipeline finishes its batch, then
// the store closes. Acknowledged messages are already committed, so nothing is lost.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	if n.ln != nil {
		if err := n.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			n.srv.Close()
		}
	}
	// The network goes first: its validators and sessions submit to the pipeline.
	if n.syncs != nil {
		n.syncs.Close()
	}
	n.closeP2P()
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	if err := n.files.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close file service: %w", err))
	}
	if err := n.fs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close file store: %w", err))
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	if err := n.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
