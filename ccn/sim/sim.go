// Package sim runs a network of full core channel nodes in one process on
// libp2p's mock network (each node with its own SQLite store, pipeline and
// HTTP API; links with a set latency) and measures the p2p layer at scale:
// how fast a message submitted to one node is processed by every other
// (gossip), and how long anti-entropy takes to reconcile two halves of the
// network after a partition heals.
package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/node"
	"github.com/go-aleph/go-aleph/internal/loadgen"
)

// Limits on a simulation's size.
const (
	MaxNodes    = 1000
	MaxMessages = 1_000_000
	MaxLatency  = 10 * time.Second
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("sim: invalid config")

// Config describes a simulation.
type Config struct {
	Nodes   int           // full nodes, 2 to MaxNodes
	Degree  int           // random links per node (at least); the graph is connected
	Latency time.Duration // one-way latency of every link
	// Messages are injected at Rate per second through random nodes' HTTP
	// APIs, for the propagation measurement; 0 skips it.
	Messages int
	Rate     float64
	// PartitionMessages are written on each side of a partition; 0 skips
	// the partition.
	PartitionMessages int
	// Dir holds the nodes' data directories.
	Dir string
	// Log receives the simulation's progress; NodeLog the nodes' own logs
	// (both discarded when nil).
	Log     *slog.Logger
	NodeLog *slog.Logger
	// Seed fixes the graph and the choice of nodes; 0 picks one.
	Seed uint64
	// SyncInterval spaces each node's anti-entropy sessions (default 2 s).
	SyncInterval time.Duration
	// Timeout bounds each wait: propagation, each side agreeing, convergence
	// after the heal (default 5 min).
	Timeout time.Duration
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 2 || c.Nodes > MaxNodes:
		return fmt.Errorf("%w: %d nodes, want 2 to %d", ErrConfig, c.Nodes, MaxNodes)
	case c.Degree < 1 || c.Degree >= c.Nodes:
		return fmt.Errorf("%w: degree %d, want 1 to %d for %d nodes", ErrConfig, c.Degree, c.Nodes-1, c.Nodes)
	case c.Latency < 0 || c.Latency > MaxLatency:
		return fmt.Errorf("%w: latency %v, want 0 to %v", ErrConfig, c.Latency, MaxLatency)
	case c.Messages < 0 || c.Messages > MaxMessages:
		return fmt.Errorf("%w: %d messages, want 0 to %d", ErrConfig, c.Messages, MaxMessages)
	case c.Messages > 0 && !(c.Rate > 0 && c.Rate <= 100_000):
		return fmt.Errorf("%w: rate %v messages/s, want more than 0 and at most 100000", ErrConfig, c.Rate)
	case c.PartitionMessages < 0 || c.PartitionMessages > MaxMessages:
		return fmt.Errorf("%w: %d partition messages, want 0 to %d", ErrConfig, c.PartitionMessages, MaxMessages)
	case c.Dir == "":
		return fmt.Errorf("%w: a data directory is required", ErrConfig)
	case c.SyncInterval < 0 || c.Timeout < 0:
		return fmt.Errorf("%w: sync interval and timeout must not be negative", ErrConfig)
	}
	return nil
}

// Result is what a simulation measured.
type Result struct {
	Nodes      int
	Degree     int
	Links      int // links in the graph
	CrossLinks int // links cut by the partition
	Latency    time.Duration
	Seed       uint64
	// Startup is the time to start and connect every node and get a first
	// message to all of them.
	Startup time.Duration

	Messages int
	Rate     float64
	// Propagation is processed-on-node minus submit time over every
	// (message, node other than the one it was submitted to) pair.
	Propagation Percentiles

	PartitionMessages int
	// PartitionSettle is the time from the first write during the partition
	// until each side agreed internally.
	PartitionSettle time.Duration
	// ConvergenceAfterHeal is the time from the heal until every node had
	// the same anti-entropy set (fingerprint and size).
	ConvergenceAfterHeal time.Duration
	// FinalLen is the size of every node's set at the end; DigestsChecked
	// nodes were confirmed to have the same state digest.
	FinalLen       int
	DigestsChecked int

	RSSAfterStart int64         // resident bytes once every node ran
	PeakRSS       int64         // the process's peak resident bytes
	CPU           time.Duration // process CPU time (user + system) over the run
	Wall          time.Duration
	Goroutines    int // after startup
}

// warmups are sent once the graph is connected, to be sure gossip reaches
// every node before anything is measured.
const warmups = 3

// The channels of the simulation's messages, one per phase.
const (
	chanWarmup      = "SIM-WARMUP"
	chanPropagation = "SIM-PROPAGATION"
	chanSideA       = "SIM-SIDE-A"
	chanSideB       = "SIM-SIDE-B"
)

// sim is one run's state.
type sim struct {
	cfg   Config
	log   *slog.Logger
	rng   *rand.Rand
	g     *graph
	mn    mocknet.Mocknet
	hosts []host.Host
	nodes []*node.Node
	subs  []*events.Subscription
	hc    *http.Client
	res   *Result
}

// Run starts the network, measures it and shuts it down.
func Run(ctx context.Context, cfg Config) (_ *Result, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 2 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64() | 1
	}
	s := &sim{cfg: cfg, log: cfg.Log, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	g, err := randomGraph(cfg.Nodes, cfg.Degree, s.rng)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s.g = g
	s.res = &Result{Nodes: cfg.Nodes, Degree: cfg.Degree, Links: len(g.edges), CrossLinks: len(g.cross()),
		Latency: cfg.Latency, Seed: cfg.Seed, Messages: cfg.Messages, Rate: cfg.Rate, PartitionMessages: cfg.PartitionMessages}
	s.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4 * cfg.Nodes, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	defer s.hc.CloseIdleConnections()

	// Sign everything first: signing is not what is measured.
	s.log.Info("signing messages", "count", warmups+cfg.Messages+2*cfg.PartitionMessages)
	warm, err := sign(warmups, chanWarmup)
	if err != nil {
		return nil, err
	}
	prop, err := sign(cfg.Messages, chanPropagation)
	if err != nil {
		return nil, err
	}
	sideA, err := sign(cfg.PartitionMessages, chanSideA)
	if err != nil {
		return nil, err
	}
	sideB, err := sign(cfg.PartitionMessages, chanSideB)
	if err != nil {
		return nil, err
	}

	cpu0, wall0 := cpuTime(), time.Now()
	s.mn = mocknet.New()
	s.mn.SetLinkDefaults(mocknet.LinkOptions{Latency: cfg.Latency})
	followCtx, stopFollow := context.WithCancel(ctx)
	var followers sync.WaitGroup
	defer func() {
		stopFollow()
		followers.Wait()
		if cerr := s.close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	if err := s.start(ctx); err != nil {
		return nil, err
	}
	warmT := newTracker(cfg.Nodes, hashes(warm))
	propT := newTracker(cfg.Nodes, hashes(prop))
	for i, sub := range s.subs {
		followers.Add(1)
		go func() {
			defer followers.Done()
			follow(followCtx, i, sub, warmT, propT)
		}()
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	if err := s.inject(ctx, warm, warmT, 0); err != nil {
		return nil, fmt.Errorf("sim: warm-up: %w", err)
	}
	if err := s.waitTracker(ctx, warmT); err != nil {
		return nil, fmt.Errorf("sim: warm-up: %w", err)
	}
	s.res.Startup = time.Since(wall0)
	s.res.RSSAfterStart = readMemStatus().RSS
	s.res.Goroutines = runtime.NumGoroutine()
	s.log.Info("network up", "nodes", cfg.Nodes, "links", s.res.Links, "took", s.res.Startup,
		"rss_mib", s.res.RSSAfterStart>>20, "goroutines", s.res.Goroutines)

	if cfg.Messages > 0 {
		if err := s.inject(ctx, prop, propT, cfg.Rate); err != nil {
			return nil, fmt.Errorf("sim: propagation: %w", err)
		}
		if err := s.waitTracker(ctx, propT); err != nil {
			return nil, fmt.Errorf("sim: propagation: %w", err)
		}
		s.res.Propagation = percentiles(propT.latencies())
		s.log.Info("propagation", "p50", s.res.Propagation.P50, "p90", s.res.Propagation.P90,
			"p99", s.res.Propagation.P99, "max", s.res.Propagation.Max, "samples", s.res.Propagation.Samples)
	}
	// The partition is judged by the anti-entropy sets.
	for _, sub := range s.subs {
		sub.Close()
	}
	followers.Wait()

	base := warmups + cfg.Messages
	if cfg.PartitionMessages > 0 {
		if err := s.partition(ctx, sideA, sideB, base); err != nil {
			return nil, err
		}
	} else {
		s.res.FinalLen = base
	}
	s.res.PeakRSS = readMemStatus().Peak
	s.res.CPU = cpuTime() - cpu0
	s.res.Wall = time.Since(wall0)
	return s.res, nil
}

func sign(n int, channel string) ([]loadgen.Post, error) {
	if n == 0 {
		return nil, nil
	}
	posts, err := loadgen.Posts(n, 16, channel, false)
	if err != nil {
		return nil, fmt.Errorf("sim: sign %d messages: %w", n, err)
	}
	return posts, nil
}

func hashes(posts []loadgen.Post) []string {
	out := make([]string, len(posts))
	for i, p := range posts {
		out[i] = p.Message.ItemHash
	}
	return out
}

// nodeConfig keeps a node small: a hundred of them share two cores.
func (s *sim) nodeConfig(dir string) config.Config {
	c := config.Dev(dir)
	c.API.Listen = "127.0.0.1:0"
	// Small SQLite caches and few readers: each node holds a few thousand messages.
	c.DB = filepath.Join(dir, "aleph.db") + "?writer_cache_kib=2048&reader_cache_kib=1024&read_conns=2"
	c.Storage.NoSync = true
	c.Pipeline.SyncTimeout = config.Duration(10 * time.Second)
	c.P2P.SyncInterval = config.Duration(s.cfg.SyncInterval)
	// ALIVE records make every node dial every other it hears of; on the mock
	// network only linked peers can connect, so these dials fail and are
	// kept rare.
	c.P2P.AliveInterval = config.Duration(time.Minute)
	c.P2P.ReconnectDelay = config.Duration(10 * time.Second)
	return c
}

// start creates a mock peer and a full node on it for every graph node.
func (s *sim) start(ctx context.Context) error {
	nodeLog := s.cfg.NodeLog
	if nodeLog == nil {
		nodeLog = slog.New(slog.DiscardHandler)
	}
	s.log.Info("starting nodes", "nodes", s.cfg.Nodes)
	for i := range s.cfg.Nodes {
		h, err := s.mn.GenPeer()
		if err != nil {
			return fmt.Errorf("sim: mock peer %d: %w", i, err)
		}
		s.hosts = append(s.hosts, h)
		dir := filepath.Join(s.cfg.Dir, fmt.Sprintf("node-%03d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("sim: node %d: %w", i, err)
		}
		n, err := node.New(ctx, s.nodeConfig(dir), nodeLog.With("node", i), node.WithHost(h))
		if err != nil {
			return fmt.Errorf("sim: node %d: %w", i, err)
		}
		// Subscribe before the node runs, so that no event is missed.
		sub := n.Events().Subscribe(8192)
		if err := n.Start(ctx); err != nil {
			sub.Close()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			n.Close(cctx)
			cancel()
			return fmt.Errorf("sim: start node %d: %w", i, err)
		}
		s.nodes = append(s.nodes, n)
		s.subs = append(s.subs, sub)
	}
	return nil
}

// connect links and dials every edge of the graph.
func (s *sim) connect(ctx context.Context) error {
	for _, e := range s.g.edges {
		if _, err := s.mn.LinkPeers(s.hosts[e.a].ID(), s.hosts[e.b].ID()); err != nil {
			return fmt.Errorf("sim: link %d-%d: %w", e.a, e.b, err)
		}
	}
	return s.dial(ctx, s.g.edges)
}

// dial connects the ends of each edge, a few at a time.
func (s *sim) dial(ctx context.Context, edges []edge) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	sem := make(chan struct{}, 16)
	errs := make([]error, len(edges))
	var wg sync.WaitGroup
	for i, e := range edges {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			b := s.hosts[e.b]
			if err := s.nodes[e.a].P2P().Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				errs[i] = fmt.Errorf("sim: connect %d to %d: %w", e.a, e.b, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// inject posts each message to a random node, at rate per second (0: all at
// once, a few at a time), recording submit times in t.
func (s *sim) inject(ctx context.Context, posts []loadgen.Post, t *tracker, rate float64) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	sem := make(chan struct{}, 64)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	var err error
loop:
	for i, p := range posts {
		if rate > 0 {
			timer.Reset(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
			select {
			case <-ctx.Done():
				err = ctx.Err()
				break loop
			case err = <-errc:
				break loop
			case <-timer.C:
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		case err = <-errc:
			break loop
		}
		target := s.rng.IntN(len(s.nodes))
		t.submit(i, target, time.Now())
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if perr := s.post(ctx, s.nodes[target].URL(), p.Body); perr != nil {
				select {
				case errc <- fmt.Errorf("message %d to node %d: %w", i, target, perr):
				default:
				}
			}
		}()
	}
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// post submits one message body and checks that it was accepted.
func (s *sim) post(ctx context.Context, base string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v0/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

func (s *sim) waitTracker(ctx context.Context, t *tracker) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return t.wait(ctx)
}

// close shuts every node down, then the mock hosts.
func (s *sim) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, sub := range s.subs {
		sub.Close()
	}
	errs := make([]error, len(s.nodes))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, n := range s.nodes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := n.Close(ctx); err != nil {
				errs[i] = fmt.Errorf("sim: close node %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	for _, h := range s.hosts {
		h.Close()
	}
	if s.mn != nil {
		s.mn.Close()
	}
	return errors.Join(errs...)
}
