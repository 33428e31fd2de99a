// Package p2p is a core channel node's face to the other nodes: a libp2p host
// running gossipsub on the message topic and the ALIVE topic, as Aleph's
// p2p-service does. Gossiped messages are admitted through the same Submit as
// API ones (signature checked before anything is trusted or forwarded); messages
// accepted over the API are published. ALIVE records announce each node's
// HTTP API, which peers use to fetch files.
package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/message"
)

// Submitter admits a message; *pipeline.Pipeline is one.
type Submitter interface {
	Submit(ctx context.Context, raw []byte, opts pipeline.SubmitOptions) (pipeline.SubmitResult, error)
}

// Config tunes the p2p face. Zero values take the defaults of DefaultConfig.
type Config struct {
	// Listen are the multiaddrs the host listens on.
	Listen []string
	// Bootstrap are full multiaddrs (with /p2p/<id>) dialled at start and
	// every ReconnectInterval.
	Bootstrap []string
	// AllowPeers, when not empty, are the only peer IDs this node connects to,
	// accepts connections from and takes ALIVE records from.
	AllowPeers []string
	// Topic carries messages; AliveTopic carries ALIVE records.
	Topic      string
	AliveTopic string
	// AliveInterval spaces ALIVE records; ReconnectInterval spaces dials to the
	// bootstrap peers and the peers ALIVE records announced; PeerMaxAge drops
	// peers not heard of for that long.
	AliveInterval     time.Duration
	ReconnectInterval time.Duration
	PeerMaxAge        time.Duration
	// AnnounceHTTP is the API base URL announced in ALIVE ("" announces none).
	AnnounceHTTP string
	// PeerRate and PeerBurst bound the gossip messages taken from one peer per
	// second: beyond them messages are dropped, not forwarded, and counted
	// (anti-entropy fetches them later at its own pace).
	PeerRate  float64
	PeerBurst int
	// MaxMessageSize is gossipsub's limit (the p2p-service's 256 KiB).
	MaxMessageSize int
	// PublishQueue bounds messages waiting to be published.
	PublishQueue int
	// Version is announced in ALIVE records.
	Version string
}

// DefaultConfig returns the settings of a production node.
func DefaultConfig() Config {
	return Config{
		Listen:            []string{"/ip4/0.0.0.0/tcp/4025"},
		Topic:             "ALEPH-TEST",
		AliveTopic:        "ALIVE",
		AliveInterval:     120 * time.Second,
		ReconnectInterval: 60 * time.Second,
		PeerMaxAge:        24 * time.Hour,
		PeerRate:          5000,
		PeerBurst:         10000,
		MaxMessageSize:    262144,
		PublishQueue:      16384,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.Topic == "" {
		c.Topic = d.Topic
	}
	if c.AliveTopic == "" {
		c.AliveTopic = d.AliveTopic
	}
	if c.AliveInterval <= 0 {
		c.AliveInterval = d.AliveInterval
	}
	if c.ReconnectInterval <= 0 {
		c.ReconnectInterval = d.ReconnectInterval
	}
	if c.PeerMaxAge <= 0 {
		c.PeerMaxAge = d.PeerMaxAge
	}
	if c.PeerRate <= 0 {
		c.PeerRate = d.PeerRate
	}
	if c.PeerBurst <= 0 {
		c.PeerBurst = d.PeerBurst
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = d.MaxMessageSize
	}
	if c.PublishQueue <= 0 {
		c.PublishQueue = d.PublishQueue
	}
}

// Deps are the node's collaborators.
type Deps struct {
	// Key is the identity; required unless Host is given.
	Key crypto.PrivKey
	// Host, when set, is used instead of a new TCP host (libp2p's mock network
	// in simulations). The node does not close it.
	Host host.Host
	// Submitter admits gossiped messages; required.
	Submitter Submitter
	Metrics   *Metrics
	Log       *slog.Logger
	Now       func() time.Time
}

// Node is a running libp2p host with the message and ALIVE topics.
type Node struct {
	cfg     Config
	h       host.Host
	ownHost bool
	ps      *pubsub.PubSub
	topic   *pubsub.Topic
	alive   *pubsub.Topic
	subs    []*pubsub.Subscription
	submit  Submitter
	allow   *gater
	boot    []peer.AddrInfo
	peers   peerTable
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time

	pubq chan []byte

	annMu        sync.Mutex
	announceHTTP string

	limMu    sync.Mutex
	limiters map[peer.ID]*limiter

	cancel context.CancelFunc
	stop   context.CancelFunc // ends gossipsub
	wg     sync.WaitGroup
}

type limiter struct {
	*rate.Limiter
	last time.Time
}

// New builds the host (or takes Deps.Host) and joins the topics. Call Run to
// start the loops and Close to stop.
func New(ctx context.Context, cfg Config, deps Deps) (*Node, error) {
	cfg.fill()
	if deps.Submitter == nil {
		return nil, errors.New("p2p: a submitter is required")
	}
	n := &Node{cfg: cfg, announceHTTP: cfg.AnnounceHTTP, submit: deps.Submitter, metrics: deps.Metrics, log: deps.Log, now: deps.Now,
		pubq: make(chan []byte, cfg.PublishQueue), limiters: map[peer.ID]*limiter{}, allow: &gater{allow: map[peer.ID]bool{}}}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.metrics == nil {
		n.metrics = NewMetrics(nil)
	}
	for _, s := range cfg.AllowPeers {
		id, err := peer.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: allowed peer %q: %w", s, err)
		}
		n.allow.allow[id] = true
	}
	for _, s := range cfg.Bootstrap {
		info, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: bootstrap peer %q (want a multiaddr ending in /p2p/<peer id>): %w", s, err)
		}
		n.boot = append(n.boot, *info)
		if len(n.allow.allow) > 0 {
			n.allow.allow[info.ID] = true // a bootstrap peer is allowed by definition, as in pyaleph
		}
	}
	if deps.Host != nil {
		n.h = deps.Host
	} else {
		if deps.Key == nil {
			return nil, errors.New("p2p: an identity key is required")
		}
		h, err := libp2p.New(
			libp2p.Identity(deps.Key),
			libp2p.ListenAddrStrings(cfg.Listen...),
			libp2p.ConnectionGater(n.allow),
			libp2p.UserAgent("go-aleph/"+cfg.Version),
			libp2p.DisableRelay(),
		)
		if err != nil {
			return nil, fmt.Errorf("p2p: start host on %v: %w", cfg.Listen, err)
		}
		n.h, n.ownHost = h, true
	}
	// Gossipsub lives as long as the node, not as long as the caller's ctx.
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	n.stop = stop
	if err := n.join(life); err != nil {
		stop()
		n.closeHost()
		return nil, err
	}
	n.metrics.setPeers(func() float64 { return float64(len(n.h.Network().Peers())) })
	return n, nil
}

// join starts gossipsub and joins both topics with their validators.
func (n *Node) join(ctx context.Context) error {
	ps, err := pubsub.NewGossipSub(ctx, n.h,
		pubsub.WithMessageSigning(true),
		pubsub.WithStrictSignatureVerification(true),
		pubsub.WithMessageIdFn(MessageID),
		pubsub.WithMaxMessageSize(n.cfg.MaxMessageSize),
		pubsub.WithPeerOutboundQueueSize(4096),
		pubsub.WithValidateQueueSize(4096),
		pubsub.WithPeerScore(scoreParams(n.cfg.Topic), scoreThresholds()),
		pubsub.WithPeerFilter(func(p peer.ID, _ string) bool { return n.allow.ok(p) }),
		pubsub.WithRawTracer(tracer{n.metrics}),
	)
	if err != nil {
		return fmt.Errorf("p2p: start gossipsub: %w", err)
	}
	n.ps = ps
	if err := ps.RegisterTopicValidator(n.cfg.Topic, n.validateMessage,
		pubsub.WithValidatorTimeout(30*time.Second), pubsub.WithValidatorConcurrency(256)); err != nil {
		return fmt.Errorf("p2p: register validator: %w", err)
	}
	if err := ps.RegisterTopicValidator(n.cfg.AliveTopic, n.validateAlive); err != nil {
		return fmt.Errorf("p2p: register alive validator: %w", err)
	}
	for _, name := range []string{n.cfg.Topic, n.cfg.AliveTopic} {
		var opts []pubsub.TopicOpt
		if name == n.cfg.AliveTopic {
			// A node repeats the same ALIVE record; content-based IDs would make
			// every repeat a duplicate, so ALIVE uses the per-publication ID.
			opts = append(opts, pubsub.WithTopicMessageIdFn(pubsub.DefaultMsgIdFn))
		}
		t, err := ps.Join(name, opts...)
		if err != nil {
			return fmt.Errorf("p2p: join topic %s: %w", name, err)
		}
		sub, err := t.Subscribe(pubsub.WithBufferSize(4096))
		if err != nil {
			return fmt.Errorf("p2p: subscribe to %s: %w", name, err)
		}
		n.subs = append(n.subs, sub)
		if name == n.cfg.Topic {
			n.topic = t
		} else {
			n.alive = t
		}
	}
	return nil
}

// scoreParams penalise peers that deliver invalid (forged or malformed)
// messages, so that gossipsub prunes and then ignores them. Loopback test
// clusters share one IP, so IP colocation is not scored.
func scoreParams(topic string) *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		SkipAtomicValidation: true,
		AppSpecificScore:     func(peer.ID) float64 { return 0 },
		DecayInterval:        time.Second,
		DecayToZero:          0.01,
		RetainScore:          10 * time.Minute,
		Topics: map[string]*pubsub.TopicScoreParams{
			topic: {
				SkipAtomicValidation:           true,
				TopicWeight:                    1,
				TimeInMeshQuantum:              time.Second, // a divisor even when unweighted
				InvalidMessageDeliveriesWeight: -10,
				InvalidMessageDeliveriesDecay:  0.99,
			},
		},
	}
}

func scoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		SkipAtomicValidation: true,
		GossipThreshold:      -100,
		PublishThreshold:     -200,
		GraylistThreshold:    -400,
	}
}

// Host returns the libp2p host (for the block exchange and anti-entropy).
func (n *Node) Host() host.Host { return n.h }

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.h.ID() }

// Addrs returns the host's full multiaddrs (with /p2p/<id>).
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()})
	return addrs
}

// TopicPeers returns how many peers this node knows to be subscribed to the
// message topic.
func (n *Node) TopicPeers() int { return len(n.topic.ListPeers()) }

// Allowed reports whether p may talk to this node.
func (n *Node) Allowed(p peer.ID) bool { return n.allow.ok(p) }

// Block cuts p off (closing its connections) and refuses it until Unblock:
// an operator's ban, and how tests partition a network. Gossip and sessions
// with p stop; anti-entropy repairs the difference after Unblock.
func (n *Node) Block(p peer.ID) {
	n.allow.block(p, true)
	n.h.Network().ClosePeer(p)
}

// Unblock lets p connect again; the next reconnect round dials it if it is
// a bootstrap peer or announced itself.
func (n *Node) Unblock(p peer.ID) { n.allow.block(p, false) }

// Metrics returns the node's p2p counters.
func (n *Node) Metrics() *Metrics { return n.metrics }

// Peers returns what ALIVE records said about the nodes heard from within
// PeerMaxAge.
func (n *Node) Peers() []PeerInfo { return n.peers.list(n.now().Add(-n.cfg.PeerMaxAge)) }

// HTTPPeers returns the API URLs other nodes announced.
func (n *Node) HTTPPeers() []string {
	var out []string
	for _, p := range n.Peers() {
		if p.HTTP != "" && p.ID != n.h.ID() {
			out = append(out, p.HTTP)
		}
	}
	return out
}

// SetAnnounceHTTP sets the API URL announced in ALIVE records, for a node
// that learns its address only once it listens.
func (n *Node) SetAnnounceHTTP(url string) {
	n.annMu.Lock()
	n.announceHTTP = url
	n.annMu.Unlock()
}

// Publish queues an accepted message for gossip. It never blocks: when the
// queue is full the message is dropped and counted, and anti-entropy carries
// it instead. raw must not be modified afterwards.
func (n *Node) Publish(raw []byte) {
	select {
	case n.pubq <- raw:
	default:
		n.metrics.published.WithLabelValues("dropped").Inc()
	}
}

// Run starts the loops; they stop when ctx ends or Close is called.
func (n *Node) Run(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(ctx)
	for _, sub := range n.subs {
		n.goLoop(func() { n.drain(ctx, sub) })
	}
	n.goLoop(func() { n.publishLoop(ctx) })
	n.goLoop(func() { n.aliveLoop(ctx) })
	n.goLoop(func() { n.reconnectLoop(ctx) })
}

func (n *Node) goLoop(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close stops the loops, leaves the topics and closes the host it made.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	for _, s := range n.subs {
		s.Cancel()
	}
	n.wg.Wait()
	for _, t := range []*pubsub.Topic{n.topic, n.alive} {
		if t != nil {
			t.Close()
		}
	}
	n.stop()
	return n.closeHost()
}

func (n *Node) closeHost() error {
	if n.ownHost {
		return n.h.Close()
	}
	return nil
}

// drain reads a subscription: message payloads were admitted by the
// validator already; ALIVE records are kept.
func (n *Node) drain(ctx context.Context, sub *pubsub.Subscription) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if sub.Topic() != n.cfg.AliveTopic {
			continue
		}
		if a, ok := m.ValidatorData.(Alive); ok {
			n.peers.record(m.GetFrom(), a, n.now())
		}
	}
}

func (n *Node) publishLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case raw := <-n.pubq:
			if err := n.topic.Publish(ctx, raw); err != nil {
				if ctx.Err() != nil {
					return
				}
				n.metrics.published.WithLabelValues("failed").Inc()
				n.log.Warn("publish message", "err", err)
				continue
			}
			n.metrics.published.WithLabelValues("ok").Inc()
		}
	}
}

// validateMessage admits a gossiped message before gossipsub forwards it: a
// flooding peer is cut off first (cheap), then the payload is decoded and
// submitted, which checks the envelope and the signature.
func (n *Node) validateMessage(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if m.Local {
		return pubsub.ValidationAccept // published by this node after its own admission
	}
	if !n.allowMessage(from) {
		n.metrics.received.WithLabelValues("rate_limited").Inc()
		return pubsub.ValidationIgnore
	}
	raw, err := DecodePayload(m.Data)
	if err != nil {
		n.metrics.received.WithLabelValues("malformed").Inc()
		n.log.Debug("malformed gossip", "from", from, "err", err)
		return pubsub.ValidationReject
	}
	res, err := n.submit.Submit(ctx, raw, pipeline.SubmitOptions{Origin: "p2p"})
	var merr *message.Error
	switch {
	case errors.As(err, &merr):
		n.metrics.received.WithLabelValues("malformed").Inc()
		n.log.Debug("malformed gossip", "from", from, "err", err)
		return pubsub.ValidationReject
	case err != nil:
		// Our failure (database, shutdown), not the peer's: neither punish nor forward.
		n.metrics.received.WithLabelValues("error").Inc()
		n.log.Warn("admit gossip", "from", from, "err", err)
		return pubsub.ValidationIgnore
	case res.Status == message.StatusRejected:
		n.metrics.received.WithLabelValues("rejected").Inc()
		n.log.Debug("rejected gossip", "from", from, "item_hash", res.ItemHash, "err", res.Err)
		return pubsub.ValidationReject
	}
	n.metrics.received.WithLabelValues("accepted").Inc()
	return pubsub.ValidationAccept
}

func (n *Node) validateAlive(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	author := m.GetFrom()
	if !n.allow.ok(author) {
		n.metrics.alive.WithLabelValues("not_allowed").Inc()
		return pubsub.ValidationIgnore
	}
	if !m.Local && !n.allowMessage(from) {
		n.metrics.alive.WithLabelValues("rate_limited").Inc()
		return pubsub.ValidationIgnore
	}
	a, err := parseAlive(m.Data, author)
	if err != nil {
		n.log.Debug("malformed alive record", "from", from, "err", err)
		n.metrics.alive.WithLabelValues("malformed").Inc()
		return pubsub.ValidationReject
	}
	m.ValidatorData = a
	n.metrics.alive.WithLabelValues("accepted").Inc()
	return pubsub.ValidationAccept
}

// allowMessage takes a token from the forwarding peer's bucket.
func (n *Node) allowMessage(from peer.ID) bool {
	n.limMu.Lock()
	defer n.limMu.Unlock()
	l := n.limiters[from]
	if l == nil {
		l = &limiter{Limiter: rate.NewLimiter(rate.Limit(n.cfg.PeerRate), n.cfg.PeerBurst)}
		n.limiters[from] = l
	}
	l.last = n.now()
	return l.Allow()
}

// aliveLoop announces this node's addresses now and every AliveInterval.
func (n *Node) aliveLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.AliveInterval)
	defer t.Stop()
	for {
		n.announce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) announce(ctx context.Context) {
	var recs []Alive
	if addrs := n.Addrs(); len(addrs) > 0 {
		recs = append(recs, Alive{Address: addrs[0].String(), PeerType: PeerTypeP2P, Version: n.cfg.Version})
	}
	n.annMu.Lock()
	api := n.announceHTTP
	n.annMu.Unlock()
	if api != "" {
		recs = append(recs, Alive{Address: api, PeerType: PeerTypeHTTP, Version: n.cfg.Version})
	}
	for _, a := range recs {
		data, err := json.Marshal(a)
		if err != nil {
			continue
		}
		if err := n.alive.Publish(ctx, data); err != nil && ctx.Err() == nil {
			n.log.Debug("publish alive", "err", err)
		}
	}
}

// reconnectLoop dials the bootstrap peers and the peers ALIVE records
// announced, now and every ReconnectInterval, and forgets idle rate limiters.
func (n *Node) reconnectLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		n.reconnect(ctx)
		n.pruneLimiters()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) reconnect(ctx context.Context) {
	targets := append([]peer.AddrInfo(nil), n.boot...)
	for _, p := range n.Peers() {
		if p.P2P != nil {
			if info, err := peer.AddrInfoFromP2pAddr(p.P2P); err == nil {
				targets = append(targets, *info)
			}
		}
	}
	var wg sync.WaitGroup
	for _, info := range targets {
		if info.ID == n.h.ID() || n.h.Network().Connectedness(info.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := n.h.Connect(dctx, info); err != nil {
				n.log.Debug("dial peer", "peer", info.ID, "err", err)
				return
			}
			n.log.Info("connected to peer", "peer", info.ID)
		}()
	}
	wg.Wait()
}

// Connect dials a peer now (tests and tools).
func (n *Node) Connect(ctx context.Context, info peer.AddrInfo) error {
	return n.h.Connect(ctx, info)
}

func (n *Node) pruneLimiters() {
	cutoff := n.now().Add(-10 * time.Minute)
	n.limMu.Lock()
	defer n.limMu.Unlock()
	for id, l := range n.limiters {
		if l.last.Before(cutoff) {
			delete(n.limiters, id)
		}
	}
}
