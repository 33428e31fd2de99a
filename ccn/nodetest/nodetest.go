// Package nodetest starts real core channel nodes for tests: in process, with an
// SQLite database in the test's temporary directory (or PostgreSQL when asked),
// serving HTTP on a random 127.0.0.1 port, and shut down when the test ends.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/node"
)

// Option adjusts the test node's configuration.
type Option func(*config.Config)

// WithConfig applies f to the configuration.
func WithConfig(f func(*config.Config)) Option { return Option(f) }

// Start runs a node and returns its base URL, such as http://127.0.0.1:41234.
func Start(t testing.TB, opts ...Option) string {
	t.Helper()
	return StartNode(t, opts...).URL()
}

// StartNode runs a node and returns it.
func StartNode(t testing.TB, opts ...Option) *node.Node {
	t.Helper()
	cfg := config.Dev(t.TempDir())
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Pipeline.SyncTimeout = config.Duration(10 * time.Second)
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.P2P.SyncInterval = config.Duration(time.Second)
	cfg.P2P.AliveInterval = config.Duration(time.Second)
	cfg.P2P.ReconnectDelay = config.Duration(time.Second)
	for _, o := range opts {
		o(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("ALEPH_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	if err := n.Start(ctx); err != nil {
		n.Close(ctx)
		t.Fatalf("nodetest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("nodetest: close: %v", err)
		}
	})
	return n
}

// StartCluster runs n nodes and connects each to every other over libp2p on
// loopback. opts apply to every node.
func StartCluster(t testing.TB, n int, opts ...Option) []*node.Node {
	t.Helper()
	nodes := make([]*node.Node, n)
	for i := range nodes {
		nodes[i] = StartNode(t, opts...)
	}
	for i := range nodes {
		for j := i + 1; j < n; j++ {
			Connect(t, nodes[i], nodes[j])
		}
	}
	return nodes
}

// Connect dials b from a over libp2p.
func Connect(t testing.TB, a, b *node.Node) {
	t.Helper()
	if a.P2P() == nil || b.P2P() == nil {
		t.Fatal("nodetest: connect: p2p is disabled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bh := b.P2P().Host()
	if err := a.P2P().Connect(ctx, peer.AddrInfo{ID: bh.ID(), Addrs: bh.Addrs()}); err != nil {
		t.Fatalf("nodetest: connect %s to %s: %v", a.P2P().ID(), bh.ID(), err)
	}
}
