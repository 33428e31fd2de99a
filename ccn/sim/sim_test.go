package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

func testLog() *slog.Logger {
	if os.Getenv("ALEPH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestSimulation runs a small network through both phases: every message
// must reach every node, and the halves must converge after the heal.
func TestSimulation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Nodes: 12, Degree: 4, Latency: 20 * time.Millisecond,
		Messages: 50, Rate: 50, PartitionMessages: 200,
		Dir: t.TempDir(), Log: testLog(), Seed: 7,
		SyncInterval: time.Second, Timeout: 90 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 50 * 11; res.Propagation.Samples != want {
		t.Fatalf("%d propagation samples, want %d (every message on every other node)", res.Propagation.Samples, want)
	}
	if want := warmups + 50 + 2*200; res.FinalLen != want {
		t.Fatalf("final set size %d, want %d", res.FinalLen, want)
	}
	if res.CrossLinks == 0 || res.DigestsChecked < 2 {
		t.Fatalf("cross links %d, digests checked %d", res.CrossLinks, res.DigestsChecked)
	}
	t.Logf("startup %v; propagation p50 %v p99 %v max %v; partition settled in %v; converged %v after the heal; peak RSS %d MiB",
		res.Startup, res.Propagation.P50, res.Propagation.P99, res.Propagation.Max, res.PartitionSettle, res.ConvergenceAfterHeal, res.PeakRSS>>20)
}

func TestConfigRejects(t *testing.T) {
	ok := Config{Nodes: 4, Degree: 2, Latency: time.Millisecond, Messages: 1, Rate: 1, Dir: t.TempDir()}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"one node", func(c *Config) { c.Nodes = 1 }},
		{"too many nodes", func(c *Config) { c.Nodes = MaxNodes + 1 }},
		{"zero degree", func(c *Config) { c.Degree = 0 }},
		{"degree too high", func(c *Config) { c.Degree = 4 }},
		{"negative latency", func(c *Config) { c.Latency = -time.Second }},
		{"huge latency", func(c *Config) { c.Latency = time.Hour }},
		{"negative messages", func(c *Config) { c.Messages = -1 }},
		{"no rate", func(c *Config) { c.Rate = 0 }},
		{"too many partition messages", func(c *Config) { c.PartitionMessages = MaxMessages + 1 }},
		{"no dir", func(c *Config) { c.Dir = "" }},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if _, err := Run(t.Context(), c); !errors.Is(err, ErrConfig) {
				t.Fatalf("Run: %v, want ErrConfig", err)
			}
		})
	}
}
