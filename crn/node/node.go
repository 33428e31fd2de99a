// Package node assembles a compute resource node: the CCN client, the
// program resolver and message watcher, the download cache, the executor
// backend, the guest API, the supervisor's pool and the HTTP API on port
// 4020. It owns their lifecycle: Start brings them up, Close drains the
// requests in flight and stops every execution.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/api"
	"github.com/go-aleph/go-aleph/crn/cache"
	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/executor/sandbox"
	"github.com/go-aleph/go-aleph/crn/guestapi"
	"github.com/go-aleph/go-aleph/crn/hostinfo"
	"github.com/go-aleph/go-aleph/crn/ownerauth"
	"github.com/go-aleph/go-aleph/crn/resolve"
	alephrt "github.com/go-aleph/go-aleph/crn/runtime"
	"github.com/go-aleph/go-aleph/crn/supervisor"
	"github.com/go-aleph/go-aleph/message"
)

// Config configures a compute node. Zero fields take the defaults of
// Default; Dev gives the local network's.
type Config struct {
	// CCN is the core channel node's API base URL.
	CCN string
	// Listen is the API address (aleph-vm: port 4020).
	Listen string
	// Domain is the public host name; programs answer on {base32}.{Domain}.
	Domain string
	// DataDir keeps the cache, persistent volumes, the node key and the
	// guest API cache; StateDir the executions' working dirs (cleaned at start).
	DataDir, StateDir string
	// CacheMaxBytes bounds the download cache (default 10 GiB).
	CacheMaxBytes int64
	// Init is the aleph-init binary (default: next to the executable, then PATH).
	Init string
	// Executor is the default backend ("sandbox", the default, or "qemu");
	// Executors lists every backend the node offers (default: Executor
	// alone). A program may require one (content.metadata.executor).
	Executor  string
	Executors []string
	// OCIRuntime is the sandbox's OCI runtime (runc or runsc).
	OCIRuntime string
	// KernelDir is the qemu backend's guest kernel (default
	// kernel.DefaultDir()) and QEMUAccel its accelerator (auto, kvm, tcg).
	KernelDir, QEMUAccel string
	// IdleTimeout stops idle on-demand programs (default 10 min).
	IdleTimeout time.Duration
	// Limits bound one program; PoolMemoryMiB and PoolVCPUs all of them
	// (default: RAM − 2 GiB, cores × 4).
	Limits                   resolve.Limits
	PoolMemoryMiB, PoolVCPUs int
	// Network gives programs with environment.internet a network; nil
	// refuses them.
	Network supervisor.Network
	// CheckProgram is the program /status/check/program runs.
	CheckProgram string
	// DefaultRuntime is advertised in /status/config (a go-aleph extension
	// the CLI reads).
	DefaultRuntime string
	// NodeKey is the hex secp256k1 key the guest API signs with; empty: the
	// key in DataDir/node.key, created on first start.
	NodeKey string `json:"-"` // never served by /about/config
	// Discover lists the CCN's programs at start, so that persistent ones
	// run (dev networks; production nodes get theirs from the scheduler).
	Discover bool
	Version  string
}

// Default is the production configuration.
func Default() Config {
	return Config{
		CCN:           "http://127.0.0.1:4024",
		Listen:        "0.0.0.0:4020",
		Domain:        "localhost",
		DataDir:       "/var/lib/aleph/crn",
		StateDir:      "/run/aleph-crn",
		CacheMaxBytes: 10 << 30,
		Executor:      sandbox.Name,
		IdleTimeout:   10 * time.Minute,
		Limits:        resolve.Limits{MemoryMiB: 4096, VCPUs: 4, DiskMiB: 10 << 10},
	}
}

// Dev is the configuration of `alephd dev`'s compute node.
func Dev(dataDir string) Config {
	c := Default()
	c.Listen = "127.0.0.1:4020"
	c.DataDir = dataDir
	c.StateDir = filepath.Join(dataDir, "run")
	c.CacheMaxBytes = 2 << 30
	c.Discover = true
	return c
}

// Node is a running compute node.
type Node struct {
	cfg  Config
	log  *slog.Logger
	cli  *client.Client
	pool *supervisor.Pool
	ex   executor.Executor   // the default backend
	exs  []executor.Executor // every backend, the default first
	gc   *guestapi.Cache
	fc   *cache.Cache
	h    http.Handler

	ln     net.Listener
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds the node; nothing runs until Start.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Node, err error) {
	def := Default()
	if cfg.Executor == "" {
		cfg.Executor = def.Executor
	}
	if cfg.Listen == "" {
		cfg.Listen = def.Listen
	}
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = def.CacheMaxBytes
	}
	if cfg.DataDir == "" || cfg.StateDir == "" || cfg.CCN == "" {
		return nil, errors.New("crn: data dir, state dir and ccn url are required")
	}
	if cfg.PoolMemoryMiB == 0 {
		cfg.PoolMemoryMiB = poolMemory()
	}
	if cfg.PoolVCPUs == 0 {
		cfg.PoolVCPUs = goruntime.NumCPU() * 4
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Init == "" {
		if cfg.Init, err = alephrt.FindInit(); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{cfg.DataDir, cfg.StateDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("crn: %w", err)
		}
	}
	n := &Node{cfg: cfg, log: log}
	n.cli = client.New(cfg.CCN)
	key, err := nodeKey(cfg)
	if err != nil {
		return nil, err
	}
	signer, err := evm.AccountFromHex(key)
	if err != nil {
		return nil, fmt.Errorf("crn: node key: %w", err)
	}
	signed := client.New(cfg.CCN, client.WithSigner(signer))

	n.exs, err = openExecutors(ctx, cfg, filepath.Join(cfg.StateDir, "executions"), log)
	if err != nil {
		return nil, err
	}
	n.ex = n.exs[0]
	defer func() {
		if err != nil {
			n.closeExecutors()
		}
	}()
	execDir := filepath.Join(cfg.StateDir, "executions")
	if n.fc, err = cache.Open(ctx, cache.Config{Dir: filepath.Join(cfg.DataDir, "cache"), MaxBytes: cfg.CacheMaxBytes, Log: log}); err != nil {
		return nil, fmt.Errorf("crn: %w", err)
	}
	defer func() {
		if err != nil {
			n.fc.Close()
		}
	}()
	if n.gc, err = guestapi.OpenCache(filepath.Join(cfg.DataDir, "guest-cache.db"), guestapi.CacheConfig{}); err != nil {
		return nil, fmt.Errorf("crn: %w", err)
	}
	defer func() {
		if err != nil {
			n.gc.Close()
		}
	}()
	others := map[string]executor.Executor{}
	for _, e := range n.exs[1:] {
		others[e.Name()] = e
	}
	scfg := supervisor.Config{
		Executor:  n.ex,
		Executors: others,
		Resolver:  resolve.New(n.cli, cfg.Limits, log),
		Files:     n.fc,
		Fetch: func(ctx context.Context, f resolve.File, w io.Writer) error {
			_, err := n.cli.DownloadFile(ctx, f.FileHash, w, 0)
			return err
		},
		Init:     cfg.Init,
		StateDir: execDir,
		DataDir:  cfg.DataDir,
		GuestAPI: func(vm string) (http.Handler, error) {
			return guestapi.New(guestapi.Config{VMHash: vm, Cache: n.gc, Signer: signer, CCN: cfg.CCN,
				Publisher: guestapi.ClientPublisher{Client: signed, Sync: true}, Log: log})
		},
		DropVM: func(vm string) {
			if err := n.gc.DropVM(vm); err != nil {
				log.Warn("drop guest cache", "vm", vm, "err", err)
			}
		},
		Network:     cfg.Network,
		IdleTimeout: cfg.IdleTimeout,
		MemoryMiB:   cfg.PoolMemoryMiB,
		VCPUs:       cfg.PoolVCPUs,
		Log:         log,
	}
	if cfg.Discover {
		scfg.Discover = n.discover
	}
	if n.pool, err = supervisor.New(scfg); err != nil {
		return nil, err
	}
	token := make([]byte, 16)
	rand.Read(token)
	n.h = api.New(api.Deps{
		Pool:       n.pool,
		Control:    n.pool,
		Authorized: ownerauth.NewAuthorizer(n.cli).Authorized,
		Version:    cfg.Version,
		Domain:     cfg.Domain,
		LoginToken: hex.EncodeToString(token),
		Usage: func(now time.Time) (hostinfo.Usage, error) {
			return hostinfo.Read(now, cfg.DataDir, 0)
		},
		SelfCheck:    n.selfCheck,
		PublicConfig: n.publicConfig(),
		Settings:     cfg,
		Log:          log,
	})
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "login_token"), []byte(hex.EncodeToString(token)), 0o600); err != nil {
		log.Warn("write login token", "err", err)
	}
	return n, nil
}

// Start listens and starts the background work.
func (n *Node) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("crn: listen: %w", err)
	}
	n.ln = ln
	n.srv = &http.Server{Handler: n.h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	events := make(chan resolve.Event, 64)
	w := resolve.NewWatcher(resolve.WatcherConfig{Client: n.cli, Log: n.log})
	n.wg.Add(4)
	go func() { defer n.wg.Done(); _ = n.srv.Serve(ln) }()
	go func() { defer n.wg.Done(); _ = w.Run(rctx, events) }()
	go func() { defer n.wg.Done(); _ = n.pool.Run(rctx, events) }()
	go func() { defer n.wg.Done(); n.gc.Run(rctx, 0) }()
	n.log.Info("compute node listening", "url", n.URL(), "ccn", n.cfg.CCN, "executor", n.cfg.Executor)
	return nil
}

// URL is the API's base URL.
func (n *Node) URL() string {
	if n.ln == nil {
		return ""
	}
	return "http://" + n.ln.Addr().String()
}

// Pool is the node's program pool.
func (n *Node) Pool() *supervisor.Pool { return n.pool }

// Handler is the node's HTTP API (for in-process tests).
func (n *Node) Handler() http.Handler { return n.h }

// Close drains requests, stops every execution and closes the stores.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	n.pool.Drain(ctx)
	if n.srv != nil {
		if err := n.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, n.pool.Close(ctx))
	// The event loop may be stopping an execution (a FORGET, an update) right
	// now: wait for it before the executors close, so that its images are
	// released by then and unmounted with the rest.
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	errs = append(errs, n.closeExecutors())
	errs = append(errs, n.fc.Close(), n.gc.Close())
	return errors.Join(errs...)
}

// selfCheck runs the check program end to end through the pool.
func (n *Node) selfCheck(ctx context.Context) error {
	if n.cfg.CheckProgram == "" {
		return errors.New("no check program configured")
	}
	for _, path := range []string{"/", "/cgi-bin/env"} {
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/vm/"+n.cfg.CheckProgram+path, nil)
		w := httptest.NewRecorder()
		n.pool.ServeProgram(w, r, n.cfg.CheckProgram, path)
		if w.Code != http.StatusOK {
			return fmt.Errorf("check program %s: %d %s", path, w.Code, strings.TrimSpace(w.Body.String()))
		}
		if path == "/cgi-bin/env" && !strings.Contains(w.Body.String(), "ALEPH_API_HOST=") {
			return fmt.Errorf("check program: environment lacks ALEPH_API_HOST")
		}
	}
	return nil
}

func (n *Node) publicConfig() any {
	return map[string]any{
		"DOMAIN_NAME": n.cfg.Domain,
		"node_hash":   nil,
		"version":     n.cfg.Version,
		"references": map[string]any{
			"API_SERVER":          n.cfg.CCN,
			"CHECK_FASTAPI_VM_ID": n.cfg.CheckProgram,
			"DEFAULT_RUNTIME_ID":  n.cfg.DefaultRuntime,
		},
		"security": map[string]any{
			"USE_JAILER": false, "PRINT_SYSTEM_LOGS": false, "WATCH_FOR_UPDATES": true,
			"ALLOW_VM_NETWORKING": n.cfg.Network != nil, "USE_DEVELOPER_SSH_KEYS": false,
		},
		"computing": map[string]any{
			"ENABLE_QEMU_SUPPORT": false, "INSTANCE_DEFAULT_HYPERVISOR": "firecracker",
			"ENABLE_CONFIDENTIAL_COMPUTING": false, "ENABLE_GPU_SUPPORT": false,
			"EXECUTOR": n.cfg.Executor,
		},
	}
}

// discover lists the CCN's PROGRAM messages (at most 10,000).
func (n *Node) discover(ctx context.Context) ([]string, error) {
	var out []string
	for m, err := range n.cli.AllMessages(ctx, client.MessageFilter{Types: []message.Type{message.TypeProgram}}, 200) {
		if err != nil {
			return out, err
		}
		out = append(out, m.ItemHash)
		if len(out) >= 10_000 {
			break
		}
	}
	return out, nil
}

// nodeKey returns the configured key or the one kept in the data dir.
func nodeKey(cfg Config) (string, error) {
	if cfg.NodeKey != "" {
		return strings.TrimPrefix(cfg.NodeKey, "0x"), nil
	}
	p := filepath.Join(cfg.DataDir, "node.key")
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	k := make([]byte, 32)
	rand.Read(k)
	if err := os.WriteFile(p, []byte(hex.EncodeToString(k)), 0o600); err != nil {
		return "", fmt.Errorf("crn: node key: %w", err)
	}
	return hex.EncodeToString(k), nil
}

// poolMemory is the host's RAM less 2 GiB for the host, in MiB.
func poolMemory() int {
	u, err := hostinfo.Read(time.Now(), "/", 0)
	if err != nil || u.Mem.TotalKB == 0 {
		return 0
	}
	mib := int(u.Mem.TotalKB*1000/(1<<20)) - 2048
	return max(mib, 512)
}
