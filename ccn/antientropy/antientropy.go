// Package antientropy makes core channel nodes converge: each node keeps the
// set of messages it has (processed or forgotten) keyed by (time, item_hash),
// and periodically, and whenever it connects to a node, runs a range-based set
// reconciliation session with a peer over a libp2p stream. The session tells
// both sides exactly which messages each lacks; the initiator then pulls what
// it misses and pushes what the peer misses, and both admit what they receive
// through Submit, which checks every signature. See docs/ANTI-ENTROPY.md.
package antientropy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/p2p/reconcile"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// ProtocolID is the libp2p stream protocol of a session.
const ProtocolID protocol.ID = "/aleph/sync/1.0.0"

// Store is what the service reads.
type Store interface {
	SyncItems(ctx context.Context, after *store.SyncKey, limit int) ([]store.SyncKey, error)
	GetMessage(ctx context.Context, itemHash string) (*store.Message, error)
	GetForgotten(ctx context.Context, itemHash string) (*store.Forgotten, error)
}

// Submitter admits batches of received messages; *pipeline.Pipeline is one.
type Submitter interface {
	SubmitMany(ctx context.Context, raws [][]byte, origin string) ([]pipeline.SubmitResult, error)
}

// Config tunes the service.
type Config struct {
	// Interval spaces sessions with a random peer.
	Interval time.Duration
	// SessionTimeout bounds one session, transfers included.
	SessionTimeout time.Duration
	// MaxTransfer bounds the messages moved each way in one session; the rest
	// waits for the next session.
	MaxTransfer int
	// MaxResponders bounds the sessions served at once.
	MaxResponders int
	// Retry is how long a requested message is not requested again while the
	// pipeline processes it.
	Retry     time.Duration
	Reconcile reconcile.Config
}

// DefaultConfig returns production settings.
func DefaultConfig() Config {
	return Config{
		Interval:       30 * time.Second,
		SessionTimeout: 2 * time.Minute,
		MaxTransfer:    50_000,
		MaxResponders:  4,
		Retry:          time.Minute,
		Reconcile:      reconcile.DefaultConfig(),
	}
}

// Deps are the service's collaborators.
type Deps struct {
	Host      host.Host
	Store     Store
	Submitter Submitter
	Bus       *events.Bus
	// Allowed, when set, filters the peers sessions run with.
	Allowed func(peer.ID) bool
	// Verify checks a signature (the chain registry's Verify); required to
	// accept forgotten skeletons into Tombstones.
	Verify     func(*message.Message) error
	Tombstones *Tombstones
	Metrics    prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
}

// Service runs sessions as initiator and responder.
type Service struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	now  func() time.Time
	m    *metrics

	setMu sync.RWMutex
	set   *reconcile.Set

	reqMu     sync.Mutex
	requested map[string]time.Time

	respSem chan struct{}
	trigger chan peer.ID
	sessMu  sync.Mutex // one initiated session at a time

	sub     *events.Subscription
	notifee *network.NotifyBundle
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New builds the service; Start loads the set and begins.
func New(deps Deps, cfg Config) (*Service, error) {
	if deps.Host == nil || deps.Store == nil || deps.Submitter == nil || deps.Bus == nil {
		return nil, errors.New("antientropy: host, store, submitter and bus are required")
	}
	d := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = d.SessionTimeout
	}
	if cfg.MaxTransfer <= 0 {
		cfg.MaxTransfer = d.MaxTransfer
	}
	if cfg.MaxResponders <= 0 {
		cfg.MaxResponders = d.MaxResponders
	}
	if cfg.Retry <= 0 {
		cfg.Retry = d.Retry
	}
	if cfg.Reconcile == (reconcile.Config{}) {
		cfg.Reconcile = d.Reconcile
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Log, now: deps.Now, set: reconcile.NewSet(),
		requested: map[string]time.Time{}, respSem: make(chan struct{}, cfg.MaxResponders),
		trigger: make(chan peer.ID, 64)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.m = newMetrics(deps.Metrics, func() float64 { return float64(s.currentSet().Len()) })
	return s, nil
}

func (s *Service) currentSet() *reconcile.Set {
	s.setMu.RLock()
	defer s.setMu.RUnlock()
	return s.set
}

// Start subscribes to the bus, loads the set from the store, serves the
// protocol and starts the session loop.
func (s *Service) Start(ctx context.Context) error {
	// Subscribe first: nothing processed while loading is missed (Add is idempotent).
	s.sub = s.deps.Bus.Subscribe(65536)
	set, err := s.load(ctx)
	if err != nil {
		s.sub.Close()
		return err
	}
	s.setMu.Lock()
	s.set = set
	s.setMu.Unlock()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.deps.Host.SetStreamHandler(ProtocolID, func(st network.Stream) { s.serve(runCtx, st) })
	s.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		select {
		case s.trigger <- c.RemotePeer():
		default:
		}
	}}
	s.deps.Host.Network().Notify(s.notifee)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.follow(runCtx) }()
	go func() { defer s.wg.Done(); s.loop(runCtx) }()
	return nil
}

// Close stops the loops and waits for them.
func (s *Service) Close() {
	s.deps.Host.RemoveStreamHandler(ProtocolID)
	if s.notifee != nil {
		s.deps.Host.Network().StopNotify(s.notifee)
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.sub != nil {
		s.sub.Close()
	}
	s.wg.Wait()
}

// Len is the size of the local set.
func (s *Service) Len() int { return s.currentSet().Len() }

// Fingerprint is the local set's fingerprint.
func (s *Service) Fingerprint() reconcile.Fingerprint { return s.currentSet().Fingerprint() }

func (s *Service) load(ctx context.Context) (*reconcile.Set, error) {
	set := reconcile.NewSet()
	var after *store.SyncKey
	for {
		keys, err := s.deps.Store.SyncItems(ctx, after, 10_000)
		if err != nil {
			return nil, fmt.Errorf("antientropy: load set: %w", err)
		}
		for _, k := range keys {
			set.Add(reconcile.Key{Time: k.Time, Hash: k.ItemHash})
		}
		if len(keys) < 10_000 {
			return set, nil
		}
		after = &keys[len(keys)-1]
	}
}

// follow adds what the pipeline processes to the set; if the bus drops this
// subscriber (it fell behind), the set is rebuilt from the store.
func (s *Service) follow(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-s.sub.C:
			if !ok {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("anti-entropy fell behind the event bus; reloading its set")
				s.sub = s.deps.Bus.Subscribe(65536)
				set, err := s.load(ctx)
				if err != nil {
					s.log.Error("reload anti-entropy set", "err", err)
					continue
				}
				s.setMu.Lock()
				s.set = set
				s.setMu.Unlock()
				continue
			}
			switch {
			case (e.Kind == events.Processed || e.Kind == events.Confirmed) && e.Message != nil:
				s.currentSet().Add(reconcile.Key{Time: e.Message.Time.Seconds(), Hash: e.ItemHash})
			case e.Kind == events.Forgotten:
				// Usually in the set already (it was processed); not when a
				// tombstone stood in for it.
				if f, err := s.deps.Store.GetForgotten(ctx, e.ItemHash); err == nil {
					s.currentSet().Add(reconcile.Key{Time: f.Time.Seconds(), Hash: e.ItemHash})
				}
			}
		}
	}
}

// loop runs a session with a random peer every Interval, and right away with
// a peer that just connected.
func (s *Service) loop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		var target peer.ID
		select {
		case <-ctx.Done():
			return
		case p := <-s.trigger:
			target = p
		case <-t.C:
			target = s.randomPeer()
		}
		if target == "" {
			continue
		}
		if _, err := s.SyncWith(ctx, target); err != nil && ctx.Err() == nil {
			s.log.Debug("anti-entropy session", "peer", target, "err", err)
		}
	}
}

func (s *Service) randomPeer() peer.ID {
	var ps []peer.ID
	for _, p := range s.deps.Host.Network().Peers() {
		if s.allowed(p) {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return ""
	}
	return ps[rand.IntN(len(ps))]
}

func (s *Service) allowed(p peer.ID) bool {
	return s.deps.Allowed == nil || s.deps.Allowed(p)
}

// Result is what one session did.
type Result struct {
	Rounds    int
	Pulled    int // messages received from the peer
	Pushed    int // messages sent to the peer
	BytesSent int64
	BytesRecv int64
}

// SyncWith runs one session with p as the initiator.
func (s *Service) SyncWith(ctx context.Context, p peer.ID) (Result, error) {
	if !s.allowed(p) {
		return Result{}, fmt.Errorf("antientropy: peer %s is not allowed", p)
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SessionTimeout)
	defer cancel()
	st, err := s.deps.Host.NewStream(ctx, p, ProtocolID)
	if err != nil {
		s.m.sessions.WithLabelValues("initiator", "unreachable").Inc()
		return Result{}, fmt.Errorf("antientropy: open stream to %s: %w", p, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	res, err := s.initiate(ctx, st)
	if err != nil {
		st.Reset()
		s.m.sessions.WithLabelValues("initiator", "error").Inc()
		return res, fmt.Errorf("antientropy: session with %s: %w", p, err)
	}
	s.m.sessions.WithLabelValues("initiator", "ok").Inc()
	if res.Pulled > 0 || res.Pushed > 0 {
		s.log.Info("anti-entropy session", "peer", p, "pulled", res.Pulled, "pushed", res.Pushed, "rounds", res.Rounds)
	}
	return res, nil
}

func (s *Service) initiate(ctx context.Context, st network.Stream) (Result, error) {
	cs := &countingStream{rw: st}
	diff, err := reconcile.Initiate(ctx, cs, s.currentSet(), s.cfg.Reconcile)
	res := Result{Rounds: diff.Rounds}
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	want := s.wanted(diff.Need)
	if err := writeWant(cs, want); err != nil {
		return res, err
	}
	br := bufio.NewReader(cs)
	pulled, err := s.receiveItems(ctx, br, len(want), false)
	res.Pulled = pulled
	if err != nil {
		return res, fmt.Errorf("pull: %w", err)
	}
	pushed, err := s.sendItems(ctx, cs, diff.Have)
	res.Pushed = pushed
	if err != nil {
		return res, fmt.Errorf("push: %w", err)
	}
	res.BytesSent, res.BytesRecv = cs.sent, cs.recv
	return res, nil
}

// serve answers a session a peer initiated.
func (s *Service) serve(ctx context.Context, st network.Stream) {
	defer st.Close()
	p := st.Conn().RemotePeer()
	if !s.allowed(p) {
		st.Reset()
		return
	}
	select {
	case s.respSem <- struct{}{}:
		defer func() { <-s.respSem }()
	default:
		s.m.sessions.WithLabelValues("responder", "busy").Inc()
		st.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SessionTimeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if err := s.respond(ctx, st); err != nil {
		st.Reset()
		s.m.sessions.WithLabelValues("responder", "error").Inc()
		s.log.Debug("anti-entropy session served", "peer", p, "err", err)
		return
	}
	s.m.sessions.WithLabelValues("responder", "ok").Inc()
}

func (s *Service) respond(ctx context.Context, st network.Stream) error {
	if _, err := reconcile.Respond(ctx, st, s.currentSet(), s.cfg.Reconcile); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	br := bufio.NewReader(st)
	want, err := readWant(br, s.cfg.MaxTransfer)
	if err != nil {
		return err
	}
	if _, err := s.sendHashes(ctx, st, want); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	// What the initiator pushes: it computed what we lack, and we check every
	// message like any other.
	if _, err := s.receiveItems(ctx, br, s.cfg.MaxTransfer, true); err != nil {
		return fmt.Errorf("receive pushed: %w", err)
	}
	return nil
}

// wanted drops keys claimed recently (requested by a session, or pushed by a
// peer: their messages are probably still in the pipeline), claims the rest,
// and caps the request at MaxTransfer.
func (s *Service) wanted(need []reconcile.Key) []string {
	var out []string
	for _, k := range need {
		if len(out) == s.cfg.MaxTransfer {
			break
		}
		if s.claim(k.Hash) {
			out = append(out, k.Hash)
		}
	}
	return out
}

// claim marks hash as being brought; false when it was claimed within Retry.
func (s *Service) claim(hash string) bool {
	now := s.now()
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	if len(s.requested) > 4*s.cfg.MaxTransfer {
		for h, t := range s.requested {
			if now.Sub(t) > s.cfg.Retry {
				delete(s.requested, h)
			}
		}
	}
	if t, ok := s.requested[hash]; ok && now.Sub(t) <= s.cfg.Retry {
		return false
	}
	s.requested[hash] = now
	return true
}

func (s *Service) sendItems(ctx context.Context, w io.Writer, keys []reconcile.Key) (int, error) {
	hashes := make([]string, 0, min(len(keys), s.cfg.MaxTransfer))
	for _, k := range keys {
		if len(hashes) == s.cfg.MaxTransfer {
			break
		}
		hashes = append(hashes, k.Hash)
	}
	return s.sendHashes(ctx, w, hashes)
}
