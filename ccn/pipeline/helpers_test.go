package pipeline

import (
	"github.com/go-aleph/go-aleph/internal/pgtest"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// baseTime is the content time of the test messages' epoch.
const baseTime = 1_700_000_000.0

// clock is a test clock that only moves when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a pipeline over a fresh SQLite database.
type env struct {
	t     testing.TB
	ctx   context.Context
	store *sqlstore.DB
	bus   *events.Bus
	clock *clock
	p     *Pipeline
	fetch *mapFetcher
}

type envOpts struct {
	cfg Config
	// start is the clock's start; zero means one hour after baseTime, so test
	// messages are in the past and processed in content-time order.
	start   time.Time
	fetcher bool
	// timeout bounds the test's context; zero means five minutes.
	timeout time.Duration
	// postgres runs on PostgreSQL (ALEPH_TEST_POSTGRES) instead of SQLite.
	postgres bool
}

// backends are the store backends the integration tests run on.
var backends = []string{"sqlite", "postgres"}

// forBackends runs fn once per backend, as subtests; the PostgreSQL one skips
// (or fails in CI) without ALEPH_TEST_POSTGRES.
func forBackends(t *testing.T, fn func(t *testing.T, pg bool)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			if b == "postgres" {
				pgtest.DSN(t)
			}
			fn(t, b == "postgres")
		})
	}
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	if o.postgres {
		return newPostgresEnv(t, o)
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	t.Cleanup(cancel)
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "ccn.db"), sqlstore.Options{})
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return newEnvOn(t, ctx, db, o)
}

func newEnvOn(t testing.TB, ctx context.Context, db *sqlstore.DB, o envOpts) *env {
	t.Helper()
	if o.start.IsZero() {
		o.start = time.Unix(baseTime+3600, 0)
	}
	e := &env{t: t, ctx: ctx, store: db, bus: events.NewBus(), clock: newClock(o.start)}
	d := Deps{Store: db, Verifier: all.NewRegistry(), Bus: e.bus, Now: e.clock.Now}
	if o.fetcher {
		e.fetch = &mapFetcher{content: map[string][]byte{}}
		d.Fetcher = e.fetch
	}
	if o.cfg.MaxBackoff == 0 {
		o.cfg.MaxBackoff = 4 * time.Second
	}
	p, err := New(d, o.cfg)
	if err != nil {
		t.Fatalf("new pipeline: %v", err)
	}
	e.p = p
	return e
}

// mapFetcher serves content from a map; absent content is unavailable.
type mapFetcher struct {
	mu      sync.Mutex
	content map[string][]byte
	calls   int
}

func (f *mapFetcher) FetchContent(ctx context.Context, _ message.ItemType, itemHash string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	c, ok := f.content[itemHash]
	if !ok {
		return nil, fmt.Errorf("fetch %s: %w", itemHash, ErrContentUnavailable)
	}
	return c, nil
}

func (f *mapFetcher) put(hash string, content []byte) {
	f.mu.Lock()
	f.content[hash] = content
	f.mu.Unlock()
}

// account makes a deterministic EVM account from a name.
func account(t testing.TB, name string) *evm.Account {
	t.Helper()
	seed := sha256.Sum256([]byte("pipeline test account " + name))
	a, err := evm.AccountFromHex(hex.EncodeToString(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// msg is a built test message.
type msg struct {
	name string
	hash string
	raw  []byte
	// content is the item content (for non-inline messages, to be fetched).
	content []byte
	time    float64
	m       *message.Message
}

// build signs a message of type typ with content c, envelope time = content
// time = at seconds after baseTime. Set c's Address to act for another owner.
func build(t testing.TB, name string, signer message.Signer, typ message.Type, c message.Content, channel string, at float64) *msg {
	t.Helper()
	return buildWith(t, name, &message.Builder{Signer: signer}, typ, c, channel, at)
}

func buildWith(t testing.TB, name string, b *message.Builder, typ message.Type, c message.Content, channel string, at float64) *msg {
	t.Helper()
	ts := baseTime + at
	c.Base().Time = ts
	b.Now = func() time.Time { return message.TimeFromSeconds(ts).Std() }
	built, err := b.Build(context.Background(), typ, c, channel)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	raw, err := json.Marshal(built.Message)
	if err != nil {
		t.Fatal(err)
	}
	return &msg{name: name, hash: built.Message.ItemHash, raw: raw, content: built.Content, time: ts, m: built.Message}
}

func post(typ, content string) *message.PostContent {
	return &message.PostContent{Type: typ, Content: json.RawMessage(content)}
}

func amend(ref, content string) *message.PostContent {
	return &message.PostContent{Type: message.AmendType, Content: json.RawMessage(content), Ref: message.RefString(ref)}
}

func aggregate(key, content string) *message.AggregateContent {
	return &message.AggregateContent{Key: message.AggregateKey{Name: key}, Content: json.RawMessage(content)}
}

func forget(hashes ...string) *message.ForgetContent {
	return &message.ForgetContent{Hashes: append([]string{}, hashes...), Aggregates: []string{}}
}

// fileHash makes a sha256-shaped file hash from a name.
func fileHash(name string) string {
	s := sha256.Sum256([]byte("file " + name))
	return hex.EncodeToString(s[:])
}

func storeContent(file, ref string) *message.StoreContent {
	return &message.StoreContent{ItemType: message.ItemStorage, ItemHash: fileHash(file), Ref: ref}
}

// owned sets the owner (content.address) of c.
func owned[C message.Content](c C, owner string) C {
	c.Base().Address = owner
	return c
}

func (e *env) submit(m *msg) SubmitResult {
	e.t.Helper()
	r, err := e.p.Submit(e.ctx, m.raw, SubmitOptions{})
	if err != nil {
		e.t.Fatalf("submit %s: %v", m.name, err)
	}
	return r
}

// drain processes batches until nothing is due at the current clock time.
func (e *env) drain() int {
	e.t.Helper()
	total := 0
	for i := 0; ; i++ {
		n, err := e.p.processOnce(e.ctx)
		if err != nil {
			e.t.Fatalf("process: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
		if i > 10_000 {
			e.t.Fatal("processing does not settle")
		}
	}
}

// settle drains, then moves the clock past the longest backoff and drains
// again until the queue is empty (retries exhausted or dependencies met).
func (e *env) settle() {
	e.t.Helper()
	for round := 0; ; round++ {
		e.drain()
		n, err := e.store.PendingCount(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if round > 100 {
			e.t.Fatalf("queue still holds %d messages after %d rounds", n, round)
		}
		e.clock.Advance(e.p.cfg.MaxBackoff + time.Second)
	}
}

// ingest submits messages one by one and processes after each.
func (e *env) ingest(ms ...*msg) {
	e.t.Helper()
	for _, m := range ms {
		e.submit(m)
		e.drain()
	}
}

func (e *env) status(m *msg) message.Status {
	e.t.Helper()
	st, err := e.store.GetStatus(e.ctx, m.hash)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Status
}

func (e *env) wantStatus(m *msg, want message.Status) {
	e.t.Helper()
	if got := e.status(m); got != want {
		e.t.Errorf("%s: status %q, want %q", m.name, got, want)
	}
}

// wantRejected checks a message was rejected with code.
func (e *env) wantRejected(m *msg, code message.ErrorCode) {
	e.t.Helper()
	e.wantStatus(m, message.StatusRejected)
	r, err := e.store.GetRejected(e.ctx, m.hash)
	if err != nil {
		e.t.Errorf("%s: rejection record: %v", m.name, err)
		return
	}
	if r.ErrorCode != code {
		e.t.Errorf("%s: rejected with %d (%s), want %d (%s)", m.name, r.ErrorCode, r.ErrorCode, code, code)
	}
}

// read runs fn in a transaction that is rolled back: a read-only view with the
// Tx getters.
func (e *env) read(fn func(tx store.Tx) error) {
	e.t.Helper()
	errRollback := errors.New("rollback")
	err := e.store.Update(e.ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		e.t.Fatalf("read: %v", err)
	}
}

func (e *env) post(hash string) *store.Post {
	e.t.Helper()
	var p *store.Post
	e.read(func(tx store.Tx) error {
		var err error
		p, err = tx.GetPost(e.ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			p, err = nil, nil
		}
		return err
	})
	return p
}

func (e *env) aggregate(owner, key string) *store.Aggregate {
	e.t.Helper()
	var a *store.Aggregate
	e.read(func(tx store.Tx) error {
		var err error
		a, err = tx.GetAggregate(e.ctx, owner, key)
		if errors.Is(err, store.ErrNotFound) {
			a, err = nil, nil
		}
		return err
	})
	return a
}

func (e *env) fileTag(tag string) *store.FileTag {
	e.t.Helper()
	ft, err := e.store.GetFileTag(e.ctx, tag)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return ft
}

func (e *env) forgotten(m *msg) *store.Forgotten {
	e.t.Helper()
	f, err := e.store.GetForgotten(e.ctx, m.hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// collect subscribes to the bus and returns a function that stops and returns
// the events seen so far.
func (e *env) collect() func() []events.Event {
	sub := e.bus.Subscribe(100_000)
	return func() []events.Event {
		sub.Close()
		var out []events.Event
		for ev := range sub.C {
			out = append(out, ev)
		}
		return out
	}
}
