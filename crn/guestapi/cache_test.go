package guestapi

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestCacheRoutes(t *testing.T) {
	c := openCache(t, CacheConfig{MaxValueSize: 16, MaxKeysPerVM: 3})
	g := startGuest(t, Config{VMHash: vmA, Cache: c, Signer: devSigner(t)})

	g.expect("GET", "/cache/", nil, 200, "[]")
	g.expect("GET", "/cache/missing", nil, 404, "No such key in cache")
	g.expect("PUT", "/cache/alpha", []byte("one\x00bin"), 200, "true")
	if got := g.expect("GET", "/cache/alpha", nil, 200, ""); string(got) != "one\x00bin" {
		t.Fatalf("GET alpha = %q", got)
	}
	g.expect("PUT", "/cache/alpha", []byte("two"), 200, "true") // overwrite: not a new key
	g.expect("PUT", "/cache/alps", []byte("x"), 200, "true")
	g.expect("PUT", "/cache/beta_2", []byte(""), 200, "true")
	if got := g.expect("GET", "/cache/alpha", nil, 200, ""); string(got) != "two" {
		t.Fatalf("GET alpha after overwrite = %q", got)
	}

	for _, tc := range []struct{ query, want string }{
		{"", `["alpha","alps","beta_2"]`},
		{"?pattern=*", `["alpha","alps","beta_2"]`},
		{"?pattern=al*", `["alpha","alps"]`},
		{"?pattern=al?s", `["alps"]`},
		{"?pattern=*_?", `["beta_2"]`},
		{"?pattern=zz*", `[]`},
		{"?pattern=al-*", `[]`}, // - is literal
	} {
		if got := g.expect("GET", "/cache/"+tc.query, nil, 200, ""); string(got) != tc.want {
			t.Errorf("list %q = %s, want %s", tc.query, got, tc.want)
		}
	}

	// Quotas and limits.
	g.expect("PUT", "/cache/gamma", []byte("x"), http.StatusInsufficientStorage, "quota")
	g.expect("PUT", "/cache/alpha", []byte(strings.Repeat("x", 17)), http.StatusRequestEntityTooLarge, "limit")

	g.expect("DELETE", "/cache/alps", nil, 200, "1")
	g.expect("DELETE", "/cache/alps", nil, 200, "0")
	g.expect("GET", "/cache/alps", nil, 404, "")
	g.expect("PUT", "/cache/gamma", []byte("x"), 200, "true") // room again

	// Bad input: 400 naming the problem.
	for _, p := range []string{"/cache/a-b", "/cache/a.b", "/cache/a%20b", "/cache/" + strings.Repeat("k", MaxKeyLength+1)} {
		g.expect("GET", p, nil, 400, "invalid cache key")
		g.expect("PUT", p, []byte("x"), 400, "invalid cache key")
		g.expect("DELETE", p, nil, 400, "invalid cache key")
	}
	for _, q := range []string{"?pattern=", "?pattern=a[b]", "?pattern=a.b", "?pattern=a%2Fb"} {
		g.expect("GET", "/cache/"+q, nil, 400, "invalid pattern")
	}
	g.expect("POST", "/cache/alpha", []byte("x"), 405, "not allowed")
	g.expect("GET", "/cache/a/b", nil, 403, "not reachable") // not a key: goes to the proxy allow-list
}

func TestCacheUnicodeKey(t *testing.T) {
	c := openCache(t, CacheConfig{})
	g := startGuest(t, Config{VMHash: vmA, Cache: c, Signer: devSigner(t)})
	// Python's \w is Unicode-aware, so upstream accepts this key.
	g.expect("PUT", "/cache/cl%C3%A9_1", []byte("v"), 200, "true")
	g.expect("GET", "/cache/?pattern=cl?_*", nil, 200, `["clé_1"]`)
}

func TestCacheIsolation(t *testing.T) {
	c := openCache(t, CacheConfig{MaxKeysPerVM: 1})
	s := devSigner(t)
	a := startGuest(t, Config{VMHash: vmA, Cache: c, Signer: s})
	b := startGuest(t, Config{VMHash: vmB, Cache: c, Signer: s})

	a.expect("PUT", "/cache/secret", []byte("from A"), 200, "true")
	b.expect("GET", "/cache/secret", nil, 404, "")
	b.expect("GET", "/cache/", nil, 200, "[]")
	b.expect("DELETE", "/cache/secret", nil, 200, "0")
	// Each VM has its own quota and its own value under the same name.
	b.expect("PUT", "/cache/secret", []byte("from B"), 200, "true")
	if got := a.expect("GET", "/cache/secret", nil, 200, ""); string(got) != "from A" {
		t.Fatalf("A reads %q", got)
	}
	if got := b.expect("GET", "/cache/secret", nil, 200, ""); string(got) != "from B" {
		t.Fatalf("B reads %q", got)
	}

	if err := c.DropVM(vmB); err != nil {
		t.Fatal(err)
	}
	b.expect("GET", "/cache/secret", nil, 404, "")
	a.expect("GET", "/cache/secret", nil, 200, "from A")
}

func TestCacheTTL(t *testing.T) {
	clk := newClock()
	c := openCache(t, CacheConfig{Now: clk.Now, MaxKeysPerVM: 1})
	g := startGuest(t, Config{VMHash: vmA, Cache: c, Signer: devSigner(t)})
	if c.Config().TTL != 7*24*time.Hour {
		t.Fatalf("default TTL %v", c.Config().TTL)
	}

	g.expect("PUT", "/cache/k", []byte("v"), 200, "true")
	clk.Advance(7*24*time.Hour - time.Second)
	g.expect("GET", "/cache/k", nil, 200, "v")
	clk.Advance(time.Second)
	g.expect("GET", "/cache/k", nil, 404, "No such key")
	g.expect("GET", "/cache/", nil, 200, "[]")
	// An expired key takes no quota, and DEL of it counts 0.
	g.expect("PUT", "/cache/other", []byte("v"), 200, "true")
	g.expect("DELETE", "/cache/k", nil, 200, "0")

	// A PUT restarts the TTL.
	clk.Advance(6 * 24 * time.Hour)
	g.expect("PUT", "/cache/other", []byte("v2"), 200, "true")
	clk.Advance(6 * 24 * time.Hour)
	g.expect("GET", "/cache/other", nil, 200, "v2")

	clk.Advance(2 * 24 * time.Hour)
	n, err := c.Sweep()
	if err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1 expired entry", n, err)
	}
	if n, err := c.Sweep(); err != nil || n != 0 {
		t.Fatalf("second sweep = %d, %v; want 0", n, err)
	}
}

func TestCacheSweepManyAndPersist(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path, CacheConfig{Now: clk.Now, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(vmB, "b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		if err := c.Set(vmA, k, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			clk.Advance(30 * time.Minute) // d and e expire later
		}
	}
	clk.Advance(45 * time.Minute) // a, b, c and B's b are expired
	if n, err := c.Sweep(); err != nil || n != 4 {
		t.Fatalf("sweep = %d, %v; want 4 (consecutive deletions must not skip any)", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened: the survivors are on disk.
	c, err = OpenCache(path, CacheConfig{Now: clk.Now, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := c.Keys(vmA, "*")
	if err != nil || strings.Join(keys, ",") != "d,e" {
		t.Fatalf("keys after sweep and reopen = %v, %v", keys, err)
	}
	// B's emptied bucket is gone too.
	if err := c.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(rootBucket).Bucket([]byte(vmB)) != nil {
			t.Error("empty VM bucket left after sweep")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCacheRunSweeps(t *testing.T) {
	clk := newClock()
	c := openCache(t, CacheConfig{Now: clk.Now, TTL: time.Minute})
	if err := c.Set(vmA, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	swept := make(chan struct{}, 1)
	c.swept = func() {
		select {
		case swept <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, time.Millisecond); close(done) }()
	select {
	case <-swept:
	case <-time.After(10 * time.Second):
		t.Fatal("no sweep")
	}
	cancel()
	<-done
	if n, err := c.Sweep(); err != nil || n != 0 {
		t.Fatalf("Run left %d expired entries (%v)", n, err)
	}
}

func TestOpenCacheLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c, err := OpenCache(path, CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := OpenCache(path, CacheConfig{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open of a locked file: %v, want an error naming the file", err)
	}
}
