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
