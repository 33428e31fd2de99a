// Package supervisor is the compute node's pool of program executions
// (crn-compute.md §1.4–1.6): it resolves a PROGRAM, downloads its files into
// the cache, starts it on an executor backend with aleph-init as PID 1,
// configures it over the host↔guest protocol and forwards requests to it.
//
// One execution per program is created at a time (single-flight); it is kept
// warm and reused until it has been idle for IdleTimeout. Each request gets
// resources.seconds (504 beyond); a guest that dies or closes a request
// without an answer gives 502 and is booted again by the next request.
// Updates of the program's code, runtime, data or volumes, and FORGETs, stop
// it. Persistent programs (on.persistent) are started by Run and restarted
// after a crash; on.message subscriptions get matching messages as
// "aleph.message" scopes.
package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/api"
	"github.com/go-aleph/go-aleph/crn/cache"
	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/resolve"
	"github.com/go-aleph/go-aleph/message"
)

// Resolver resolves a PROGRAM item hash (resolve.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, itemHash string) (*resolve.Program, error)
}

// FetchFunc writes the file f to w; the cache checks its hash.
type FetchFunc func(ctx context.Context, f resolve.File, w io.Writer) error

// NetConfig is a prepared network for one execution.
type NetConfig struct {
	NSPath string   // network namespace the sandbox joins (netns mode)
	Tap    *os.File // tap device handed to the VM (tap mode)
	// GuestMAC is the address the guest's NIC must have (tap mode: the
	// host keeps a static neighbour entry for it).
	GuestMAC string
	IP       string   // guest address with prefix, "172.16.0.2/30"
	Route    string   // gateway, "172.16.0.1"
	DNS      []string // resolvers
	// Network and HostIP are reported in the execution lists.
	Network, HostIP string
	// Release tears the network down.
	Release func(ctx context.Context) error
}

// Network prepares networks for programs with environment.internet.
type Network interface {
	Attach(ctx context.Context, id string, mode executor.NetworkMode) (*NetConfig, error)
}

// Config configures a Pool.
type Config struct {
	// Executor is the default backend; Executors adds others by name, which
	// programs may require (resolve.Program.Executor).
	Executor  executor.Executor
	Executors map[string]executor.Executor
	Resolver  Resolver
	Files     *cache.Cache
	Fetch     FetchFunc
	// Init is the host path of the static aleph-init binary.
	Init string
	// StateDir holds the executions' working directories (removed at stop;
	// the executor cleans leftovers at node start).
	StateDir string
	// DataDir holds what survives restarts: persistent volumes and the list
	// of persistent programs.
	DataDir string
	// GuestAPI builds the per-VM guest API handler (nil: none).
	GuestAPI func(vmHash string) (http.Handler, error)
	// DropVM is called for a forgotten program (guest API cache cleanup).
	DropVM func(vmHash string)
	// Network gives programs with environment.internet a network; nil
	// refuses them.
	Network Network
	// IdleTimeout stops an on-demand execution idle that long (default 10 min).
	IdleTimeout time.Duration
	// ReadyTimeout bounds the wait for the guest's ready signal (default
	// 20 s), ConfigTimeout the configuration (default 60 s).
	ReadyTimeout, ConfigTimeout time.Duration
	// StopTimeout bounds the wait for in-flight requests of a stopping
	// execution (default 30 s).
	StopTimeout time.Duration
	// MaxInlineCode bounds zip and plain code and data archives, sent in the
	// configuration payload (default 10 MB, as aleph-vm).
	MaxInlineCode int64
	// MemoryMiB and VCPUs bound the sum over live executions (0: no bound);
	// beyond, creation fails with 503.
	MemoryMiB, VCPUs int
	// MaxCreations bounds executions being created at once (default 8).
	MaxCreations int
	// Discover lists programs to consider at start (persistent ones are
	// started); nil: only those recorded by earlier runs.
	Discover func(ctx context.Context) ([]string, error)
	Log      *slog.Logger
	Now      func() time.Time
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.IdleTimeout, 10*time.Minute)
	def(&c.ReadyTimeout, 20*time.Second)
	def(&c.ConfigTimeout, 60*time.Second)
	def(&c.StopTimeout, 30*time.Second)
	if c.MaxInlineCode <= 0 {
		c.MaxInlineCode = 10_000_000
	}
	if c.MaxCreations <= 0 {
		c.MaxCreations = 8
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Pool runs programs. It implements crn/api.Pool and crn/api.Control.
type Pool struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // the pool's lifetime: executions outlive requests
	cancel context.CancelFunc
	wg     sync.WaitGroup
	create chan struct{} // creation slots
	seq    atomic.Uint64 // execution dir names

	mu         sync.Mutex
	execs      map[string]*execution // live (starting or running) by hash
	history    []*execution          // recently stopped, newest last
	logs       map[string]*logBuffer // console lines by program
	logOrder   []string
	persistent map[string]bool             // programs to keep running
	subs       map[string]*resolve.Program // on.message subscribers
	draining   bool
	closed     bool
}

const (
	historySize = 64
	logPrograms = 256
)

// New returns a Pool; Run starts its background work.
func New(cfg Config) (*Pool, error) {
	cfg.defaults()
	switch {
	case cfg.Executor == nil:
		return nil, errors.New("supervisor: no executor")
	case cfg.Resolver == nil:
		return nil, errors.New("supervisor: no resolver")
	case cfg.Files == nil || cfg.Fetch == nil:
		return nil, errors.New("supervisor: no file cache")
	case cfg.Init == "":
		return nil, errors.New("supervisor: no aleph-init binary")
	case cfg.StateDir == "" || cfg.DataDir == "":
		return nil, errors.New("supervisor: no state or data dir")
	}
	if abs, err := filepath.Abs(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	} else if len(abs) > maxStateDir {
		return nil, fmt.Errorf("supervisor: state dir %s is longer than %d bytes: guest sockets would not fit in a socket address", abs, maxStateDir)
	}
	for _, d := range []string{cfg.StateDir, cfg.DataDir, filepath.Join(cfg.DataDir, "volumes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:        cfg,
		log:        cfg.Log,
		ctx:        ctx,
		cancel:     cancel,
		create:     make(chan struct{}, cfg.MaxCreations),
		execs:      map[string]*execution{},
		logs:       map[string]*logBuffer{},
		persistent: map[string]bool{},
		subs:       map[string]*resolve.Program{},
	}
	if err := p.loadPersistent(); err != nil {
		cancel()
		return nil, err
	}
	return p, nil
}

// Run starts the persistent programs (recorded ones and those Discover
// lists), then handles the node's events until ctx ends. events may be nil.
func (p *Pool) Run(ctx context.Context, events <-chan resolve.Event) error {
	if p.cfg.Discover != nil {
		hashes, err := p.cfg.Discover(ctx)
		if err != nil {
			p.log.Warn("discover programs", "err", err)
		}
		for _, h := range hashes {
			p.consider(ctx, h)
		}
	}
	p.mu.Lock()
	var start []string
	for h := range p.persistent {
		start = append(start, h)
	}
	p.mu.Unlock()
	sort.Strings(start)
	for _, h := range start {
		p.keepRunning(h)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				<-ctx.Done()
				return ctx.Err()
			}
			p.HandleEvent(ctx, ev)
		}
	}
}

// consider resolves a program found at start and registers what it asks
// for: a persistent start, message subscriptions.
func (p *Pool) consider(ctx context.Context, hash string) {
	prog, err := p.cfg.Resolver.Resolve(ctx, hash)
	if err != nil {
		p.log.Debug("skip program", "hash", hash, "err", err)
		return
	}
	p.register(prog)
}

// register records a program's triggers.
func (p *Pool) register(prog *resolve.Program) {
	p.mu.Lock()
	if len(prog.OnMessage) > 0 {
		p.subs[prog.Hash] = prog
	}
	newPersistent := prog.OnPersistent && !p.persistent[prog.Hash]
	if prog.OnPersistent {
		p.persistent[prog.Hash] = true
	}
	p.mu.Unlock()
	if newPersistent {
		p.savePersistent()
		p.keepRunning(prog.Hash)
	}
}

// HandleEvent applies one event of the node's stream.
func (p *Pool) HandleEvent(ctx context.Context, ev resolve.Event) {
	switch ev.Kind {
	case resolve.EventProgram:
		if ev.Replaces != "" {
			p.stopHash(ev.Replaces, "replaced by "+ev.Message.ItemHash)
		}
		if ev.Program != nil && (ev.Program.On.Persistent != nil && *ev.Program.On.Persistent || len(ev.Program.On.Message) > 0) {
			p.consider(ctx, ev.Message.ItemHash)
		}
	case resolve.EventRefUpdate:
		for _, ex := range p.live() {
			if ex.watches(ev.Ref) {
				p.stop(ex, "ref "+ev.Ref+" updated")
			}
		}
	case resolve.EventForget:
		for _, h := range ev.Forgotten {
			p.forgotten(h)
		}
	}
	if ev.Message != nil {
		p.deliver(ev.Message)
	}
}

// forgotten stops what depends on a forgotten message.
func (p *Pool) forgotten(hash string) {
	p.mu.Lock()
	delete(p.subs, hash)
	wasPersistent := p.persistent[hash]
	delete(p.persistent, hash)
	p.mu.Unlock()
	if wasPersistent {
		p.savePersistent()
	}
	for _, ex := range p.live() {
		if ex.hash == hash || ex.watches(hash) {
			p.stop(ex, "forgotten")
		}
	}
	if p.cfg.DropVM != nil {
		p.cfg.DropVM(hash)
	}
	// A forgotten program can never run again: its disks go with it.
	if err := os.RemoveAll(p.volumeDir(hash)); err != nil {
		p.log.Warn("remove volumes", "hash", hash, "err", err)
	}
}

// deliver runs matching on.message subscribers.
func (p *Pool) deliver(m *client.Message) {
	p.mu.Lock()
	var targets []*resolve.Program
	for _, prog := range p.subs {
		for _, sub := range prog.OnMessage {
			if resolve.MatchSubscription(sub, m) {
				targets = append(targets, prog)
				break
			}
		}
	}
	p.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	body := []byte(m.Raw)
	if len(body) == 0 {
		var err error
		if body, err = json.Marshal(m); err != nil {
			p.log.Warn("encode event", "err", err)
			return
		}
	}
	for _, prog := range targets {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.RunEvent(p.ctx, prog.Hash, body); err != nil {
				p.log.Warn("deliver message", "program", prog.Hash, "message", m.ItemHash, "err", err)
			}
		}()
	}
}

// live returns the live executions.
func (p *Pool) live() []*execution {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*execution, 0, len(p.execs))
	for _, ex := range p.execs {
		out = append(out, ex)
	}
	return out
}

func (p *Pool) stopHash(hash, reason string) bool {
	p.mu.Lock()
	ex := p.execs[hash]
	p.mu.Unlock()
	if ex == nil {
		return false
	}
	p.stop(ex, reason)
	return true
}

// Drain refuses new requests (503) and waits for the in-flight ones, at most
// until ctx ends.
func (p *Pool) Drain(ctx context.Context) {
	p.mu.Lock()
	p.draining = true
	p.mu.Unlock()
	for _, ex := range p.live() {
		ex.waitIdle(ctx)
	}
}

// Close stops every execution and waits for the pool's goroutines.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.draining = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, ex := range p.live() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stopWith(ctx, ex, "node stopping")
		}()
	}
	wg.Wait()
	p.cancel()
	p.wg.Wait()
	return nil
}

// Executions implements api.Pool.
func (p *Pool) Executions() []api.Execution {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]api.Execution, 0, len(p.execs)+len(p.history))
	seen := map[string]bool{}
	for _, ex := range p.execs {
		out = append(out, ex.view())
		seen[ex.hash] = true
	}
	for i := len(p.history) - 1; i >= 0; i-- {
		if ex := p.history[i]; !seen[ex.hash] {
			out = append(out, ex.view())
			seen[ex.hash] = true
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hash < out[j].Hash })
	return out
}

// Running reports whether the program has a live execution.
func (p *Pool) Running(hash string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ex := p.execs[hash]
	return ex != nil && ex.isStarted()
}

// persistent programs are listed in DataDir/persistent.json.
func (p *Pool) persistentFile() string { return filepath.Join(p.cfg.DataDir, "persistent.json") }

func (p *Pool) loadPersistent() error {
	b, err := os.ReadFile(p.persistentFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	var hashes []string
	if err := json.Unmarshal(b, &hashes); err != nil {
		return fmt.Errorf("supervisor: %s: %w", p.persistentFile(), err)
	}
	for _, h := range hashes {
		if message.IsItemHash(h) {
			p.persistent[h] = true
		}
	}
	return nil
}

func (p *Pool) savePersistent() {
	p.mu.Lock()
	hashes := make([]string, 0, len(p.persistent))
	for h := range p.persistent {
		hashes = append(hashes, h)
	}
	p.mu.Unlock()
	sort.Strings(hashes)
	b, _ := json.Marshal(hashes)
	tmp := p.persistentFile() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, p.persistentFile())
		if err != nil {
			p.log.Warn("save persistent programs", "err", err)
		}
	} else {
		p.log.Warn("save persistent programs", "err", err)
	}
}
