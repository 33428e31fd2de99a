package guestapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/message"
)

const (
	vmA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	vmB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// clock is a settable clock for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openCache(t *testing.T, cfg CacheConfig) *Cache {
	t.Helper()
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache.db"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cache: %v", err)
		}
	})
	return c
}

func devSigner(t testing.TB) message.Signer {
	t.Helper()
	accts, err := all.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	return accts[0].Signer // ETH
}

// guest is a client of one VM's guest API served on a real Unix socket, as a
// program reaches it.
type guest struct {
	t  *testing.T
	hc *http.Client
}

// startGuest serves New(cfg) on a Unix socket until the test ends.
func startGuest(t *testing.T, cfg Config) *guest {
	t.Helper()
	if cfg.CCN == "" {
		cfg.CCN = "http://127.0.0.1:1" // nothing listens: proxy tests set a real CCN
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &guest{t: t, hc: &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// with returns g reporting to t, for subtests.
func (g *guest) with(t *testing.T) *guest { return &guest{t: t, hc: g.hc} }

// do sends a request and returns the status, body and headers.
func (g *guest) do(method, path string, body []byte) (int, []byte, http.Header) {
	g.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://localhost"+path, r)
	if err != nil {
		g.t.Fatal(err)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		g.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

// expect checks the status and, when want is not empty, that the body
// contains it.
func (g *guest) expect(method, path string, body []byte, status int, want string) []byte {
	g.t.Helper()
	got, b, _ := g.do(method, path, body)
	if got != status {
		g.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, b)
	}
	if want != "" && !strings.Contains(string(b), want) {
		g.t.Fatalf("%s %s: body %s does not contain %q", method, path, b, want)
	}
	return b
}
