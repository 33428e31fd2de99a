package api_test

import (
	"github.com/go-aleph/go-aleph/internal/pgtest"

	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// t0 is the envelope time of the first message a test node builds; each build
// advances the clock by one second.
const t0 = 1700000000.5

// node is a real API over a real pipeline and a SQLite store, on a random
// 127.0.0.1 port.
type node struct {
	url    string
	store  *sqlstore.DB
	bus    *events.Bus
	reg    *prometheus.Registry
	errLog *errorLog

	mu   sync.Mutex
	tick int
}

// errorLog records error-level log records, so that a test can check that bad
// input never reached the internal-error path.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }
func (l *errorLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// newNode starts a node over SQLite.
func newNode(t testing.TB, cfg api.Config) *node { return newNodeOn(t, "sqlite", cfg) }

// backends runs fn once per store backend: SQLite always, PostgreSQL when
// ALEPH_TEST_POSTGRES is set (and CI fails without it).
func backends(t *testing.T, fn func(t *testing.T, backend string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite") })
	t.Run("postgres", func(t *testing.T) {
		pgtest.DSN(t)
		fn(t, "postgres")
	})
}

// openStore opens an empty store: a SQLite file in t.TempDir(), or a fresh
// PostgreSQL schema dropped when the test ends.
func openStore(t testing.TB, ctx context.Context, backend string) *sqlstore.DB {
	t.Helper()
	if backend == "sqlite" {
		st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "aleph.db"), sqlstore.Options{})
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		return st
	}
	dsn := pgtest.Schema(t, "aleph_api_test_") // its cleanup runs after the node is closed
	st, err := sqlstore.Open(ctx, dsn, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	return st
}

// newNodeOn starts a node over the named backend.
func newNodeOn(t testing.TB, backend string, cfg api.Config) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := openStore(t, ctx, backend)
	bus := events.NewBus()
	pl, err := pipeline.New(pipeline.Deps{Store: st, Verifier: all.NewRegistry(), Bus: bus}, pipeline.Config{SyncTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("new pipeline: %v", err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- pl.Run(runCtx) }()

	n := &node{store: st, bus: bus, reg: prometheus.NewRegistry(), errLog: &errorLog{}}
	h := api.New(api.Deps{
		Submitter: pl, Store: st, Bus: bus, Metrics: n.reg, Version: "go-aleph-test",
		Log: slog.New(n.errLog), NodeMultiAddresses: []string{"/ip4/127.0.0.1/tcp/4025/p2p/QmTest"},
	}, cfg)
	srv := httptest.NewUnstartedServer(h)
	serveCtx, stopServe := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(net.Listener) context.Context { return serveCtx }
	srv.Start()
	n.url = srv.URL
	t.Cleanup(func() {
		stopServe() // ends websocket handlers, which Close would wait for
		srv.Close()
		stopRun()
		if err := <-runDone; err != nil {
			t.Errorf("pipeline run: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return n
}

// now is the builders' clock.
func (n *node) now() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := t0 + float64(n.tick)
	n.tick++
	return time.Unix(0, int64(s*1e9)).UTC()
}

// accounts returns deterministic ETH accounts.
func accounts(t testing.TB, k int) []*evm.Account {
	t.Helper()
	devs, err := all.DevAccounts(k)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*evm.Account, k)
	for i := range k {
		out[i] = devs[i].Signer.(*evm.Account)
	}
	return out
}

// build makes a signed message with the node's clock.
func (n *node) build(t testing.TB, s message.Signer, typ message.Type, c message.Content, channel string) *message.Built {
	t.Helper()
	b := &message.Builder{Signer: s, Now: n.now}
	built, err := b.Build(context.Background(), typ, c, channel)
	if err != nil {
		t.Fatalf("build %s: %v", typ, err)
	}
	return built
}

func post(typ, content string, ref string) *message.PostContent {
	c := &message.PostContent{Type: typ, Content: json.RawMessage(content)}
	if ref != "" {
		c.Ref = message.RefString(ref)
	}
	return c
}

func envelope(t testing.TB, m *message.Message) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// submit posts a message and returns the HTTP status and decoded body.
func (n *node) submit(t testing.TB, m *message.Message, sync bool) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"sync": sync, "message": envelope(t, m)})
	return n.do(t, http.MethodPost, "/api/v0/messages", "application/json", body)
}

// mustProcess submits synchronously and requires processing.
func (n *node) mustProcess(t testing.TB, b *message.Built) string {
	t.Helper()
	code, body := n.submit(t, b.Message, true)
	if code != http.StatusOK || body["message_status"] != "processed" {
		t.Fatalf("submit %s %s: %d %v", b.Message.Type, b.Message.ItemHash, code, body)
	}
	return b.Message.ItemHash
}

// do sends a request and decodes a JSON answer into a map (nil if not an object).
func (n *node) do(t testing.TB, method, path, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	code, raw, _ := n.raw(t, method, path, contentType, body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return code, m
}

// raw sends a request and returns the status, body and headers.
func (n *node) raw(t testing.TB, method, path, contentType string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

// getJSON GETs path, requires status want and a JSON body, and decodes it into v.
func (n *node) getJSON(t testing.TB, path string, want int, v any) {
	t.Helper()
	code, b, h := n.raw(t, http.MethodGet, path, "", nil)
	if code != want {
		t.Fatalf("GET %s: status %d, want %d; body %s", path, code, want, clipBody(b))
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: decode %s: %v", path, clipBody(b), err)
		}
	}
}

func clipBody(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// update writes states the pipeline does not reach in a test (removing, removed).
func (n *node) update(t testing.TB, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.store.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("store update: %v", err)
	}
}

// noInternalErrors fails the test if the API logged an internal error.
func (n *node) noInternalErrors(t testing.TB) {
	t.Helper()
	for _, e := range n.errLog.errors() {
		t.Errorf("API logged an error: %s", e)
	}
}

// ff writes a float as a plain decimal, as the SDKs send dates.
func ff(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
