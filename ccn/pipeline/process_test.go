package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// stored builds a non-inline (storage) message whose content must be fetched.
func stored(t *testing.T, name string, signer message.Signer, typ message.Type, c message.Content, at float64) *msg {
	t.Helper()
	return buildWith(t, name, &message.Builder{Signer: signer, NoInline: true}, typ, c, "", at)
}

// storedRaw signs a storage message over arbitrary content bytes.
func storedRaw(t *testing.T, name string, signer message.Signer, typ message.Type, content []byte, at float64) *msg {
	t.Helper()
	m := &message.Message{Type: typ, Time: message.TimeFromSeconds(baseTime + at), ItemType: message.ItemStorage, ItemHash: message.HashContent(content)}
	if err := message.Sign(m, signer); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &msg{name: name, hash: m.ItemHash, raw: raw, content: content, time: baseTime + at, m: m}
}

func kinds(evs []events.Event, hash string) []events.Kind {
	var out []events.Kind
	for _, e := range evs {
		if e.ItemHash == hash {
			out = append(out, e.Kind)
		}
	}
	return out
}

func TestRetriesThenReject(t *testing.T) {
	alice := account(t, "alice")
	const maxRetries = 3
	tests := []struct {
		name     string
		fetcher  bool
		fetchErr error
		code     message.ErrorCode
	}{
		{"no fetcher", false, nil, message.CodeContentUnavailable},
		{"content unavailable", true, nil, message.CodeContentUnavailable},
		{"fetcher failure", true, errors.New("disk on fire"), message.CodeInternalError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := stored(t, "m", alice, message.TypePost, post("x", `{}`), 0)
			e := newEnv(t, envOpts{cfg: Config{MaxRetries: maxRetries, MaxBackoff: 8 * time.Second}, fetcher: tc.fetcher})
			if tc.fetchErr != nil {
				e.p.fetcher = failingFetcher{tc.fetchErr}
			}
			var draws []int64
			e.p.rnd = func(n int64) int64 { draws = append(draws, n); return n - 1 } // the longest delay
			evs := e.collect()
			e.submit(m)
			for retry := range maxRetries {
				before := e.clock.Now()
				if n := e.drain(); n != 1 {
					t.Fatalf("attempt %d processed %d", retry, n)
				}
				ps, err := e.store.PendingByHash(e.ctx, m.hash)
				if err != nil || len(ps) != 1 {
					t.Fatalf("attempt %d: queue %v (%v)", retry, ps, err)
				}
				ceil := backoffCeiling(retry, 8*time.Second)
				if p := ps[0]; p.Retries != retry+1 || p.LastError != tc.code || !p.NextAttempt.Equal(before.Add(ceil)) {
					t.Errorf("attempt %d: retries %d, last error %d, next %v; want %d, %d, %v", retry, p.Retries, p.LastError, p.NextAttempt, retry+1, tc.code, before.Add(ceil))
				}
				e.wantStatus(m, message.StatusPending)
				// Not due before the backoff has passed.
				if n := e.drain(); n != 0 {
					t.Fatalf("attempt %d: retried before its backoff", retry)
				}
				e.clock.Advance(ceil)
			}
			e.drain()
			e.wantRejected(m, tc.code)
			got := kinds(evs(), m.hash)
			want := []events.Kind{events.Retry, events.Retry, events.Retry, events.Rejected}
			if len(got) != len(want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("events %v, want %v", got, want)
				}
			}
			if len(draws) != maxRetries || draws[0] != int64(time.Second)+1 || draws[2] != int64(4*time.Second)+1 {
				t.Errorf("jitter draws %v", draws)
			}
		})
	}
}

type failingFetcher struct{ err error }

func (f failingFetcher) FetchContent(context.Context, message.ItemType, string) ([]byte, error) {
	return nil, f.err
}

func TestNonInlineContent(t *testing.T) {
	alice := account(t, "alice")
	orig := build(t, "orig", alice, message.TypePost, post("x", `{}`), "", 0)
	big := stored(t, "big", alice, message.TypePost, post("x", `{"v":"stored"}`), 1)
	am := stored(t, "am", alice, message.TypePost, amend(orig.hash, `{"v":"amended"}`), 2)
	bad := storedRaw(t, "bad", alice, message.TypePost, []byte(`{"address":"x","time":1,"type":"x","extra":true}`), 3)

	e := newEnv(t, envOpts{fetcher: true, cfg: Config{MaxRetries: 5}})
	e.fetch.put(big.hash, big.content)
	e.ingest(big)
	e.wantStatus(big, message.StatusProcessed)
	sm, err := e.store.GetMessage(e.ctx, big.hash)
	if err != nil || string(sm.Content) != string(big.content) || sm.Size != int64(len(big.content)) || sm.ItemType != message.ItemStorage {
		t.Fatalf("stored message %+v (%v)", sm, err)
	}
	if n, _ := e.store.CountFilePins(e.ctx, big.hash); n != 1 {
		t.Errorf("content pins = %d, want 1", n)
	}

	// Fetched content is kept in the queue while the message waits for its
	// dependency: it is fetched once.
	e.fetch.put(am.hash, am.content)
	calls := e.fetch.calls
	e.ingest(am)
	e.clock.Advance(time.Minute)
	e.drain()
	e.wantStatus(am, message.StatusPending)
	if got := e.fetch.calls - calls; got != 1 {
		t.Errorf("content fetched %d times, want 1", got)
	}
	e.ingest(orig)
	e.settle()
	e.wantStatus(am, message.StatusProcessed)

	// Content that is not a valid POST is rejected at once with code 0.
	e.fetch.put(bad.hash, bad.content)
	e.ingest(bad)
	e.wantRejected(bad, message.CodeInvalidFormat)
	// Content that does not hash to the item hash is unavailable (retried).
	wrong := stored(t, "wrong", alice, message.TypePost, post("x", `{"n":1}`), 4)
	e.fetch.put(wrong.hash, orig.content)
	e.ingest(wrong)
	e.wantStatus(wrong, message.StatusPending)
	if ps, _ := e.store.PendingByHash(e.ctx, wrong.hash); len(ps) != 1 || ps[0].LastError != message.CodeContentUnavailable {
		t.Errorf("queue row %+v", ps)
	}
}

// enqueueCopy queues a copy of m with signature sig, as a peer would.
func (e *env) enqueueCopy(m *msg, sig string) {
	e.t.Helper()
	c := *m.m
	c.Signature = sig
	raw, _ := json.Marshal(&c)
	now := e.clock.Now()
	if _, err := e.store.Enqueue(e.ctx, []*store.Pending{{
		Message: c, Raw: raw, ReceptionTime: now, NextAttempt: now, CheckSignature: true, Origin: "p2p",
	}}); err != nil {
		e.t.Fatal(err)
	}
}

func TestConfirmationsAndDuplicates(t *testing.T) {
	alice := account(t, "alice")
	m := build(t, "m", alice, message.TypePost, post("x", `{}`), "", 0)
	f := build(t, "f", alice, message.TypeForget, forget(m.hash), "", 1)
	tests := []struct {
		name   string
		forget bool
		sig    string
		kind   events.Kind
		code   message.ErrorCode
		status message.Status
	}{
		{"same signature confirms", false, m.m.Signature, events.Confirmed, 0, message.StatusProcessed},
		{"other signature: 1", false, altSignature(t, m.m.Signature), events.Rejected, message.CodeInvalidSignature, message.StatusProcessed},
		{"copy of a forgotten message: 504", true, m.m.Signature, events.Rejected, message.CodeForgottenDuplicate, message.StatusForgotten},
		{"copy of a forgotten message, other signature: 1", true, altSignature(t, m.m.Signature), events.Rejected, message.CodeInvalidSignature, message.StatusForgotten},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.ingest(m)
			if tc.forget {
				e.ingest(f)
			}
			evs := e.collect()
			e.enqueueCopy(m, tc.sig)
			e.drain()
			var got []events.Event
			for _, ev := range evs() {
				if ev.ItemHash == m.hash {
					got = append(got, ev)
				}
			}
			if len(got) != 1 || got[0].Kind != tc.kind || got[0].Code != tc.code {
				t.Fatalf("events %+v, want one %s with code %d", got, tc.kind, tc.code)
			}
			if tc.kind == events.Confirmed && (got[0].Message == nil || got[0].Message.ItemHash != m.hash) {
				t.Errorf("confirmation without the message: %+v", got[0])
			}
			e.wantStatus(m, tc.status)
			if _, err := e.store.GetRejected(e.ctx, m.hash); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a rejection was recorded for a live hash: %v", err)
			}
			if n, _ := e.store.PendingCount(e.ctx); n != 0 {
				t.Errorf("%d left in the queue", n)
			}
		})
	}
	// Two copies queued together: the first is processed, the second confirms it.
	t.Run("two copies in one batch", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		evs := e.collect()
		e.submit(m)
		e.enqueueCopy(m, altSignature(t, m.m.Signature))
		if n := e.drain(); n != 2 {
			t.Fatalf("processed %d", n)
		}
		got := kinds(evs(), m.hash)
		if len(got) != 2 || got[0] != events.Processed || got[1] != events.Rejected {
			t.Errorf("events %v", got)
		}
		e.wantStatus(m, message.StatusProcessed)
	})
}

// TestBatchIsolation applies good and failing messages in one batch: the
// failing ones write nothing, the others are applied.
func TestBatchIsolation(t *testing.T) {
	alice, bob := account(t, "alice"), account(t, "bob")
	orig := build(t, "orig", alice, message.TypePost, post("x", `{}`), "", 0)
	a1 := build(t, "a1", alice, message.TypePost, amend(orig.hash, `{}`), "", 1)
	good1 := build(t, "good1", alice, message.TypePost, post("x", `{"n":1}`), "", 10)
	ofAmend := build(t, "ofAmend", alice, message.TypePost, amend(a1.hash, `{}`), "", 11)
	forbidden := build(t, "forbidden", bob, message.TypeAggregate, owned(aggregate("k", `{"bob":1}`), alice.Address()), "", 12)
	good2 := build(t, "good2", alice, message.TypeAggregate, aggregate("k", `{"alice":1}`), "", 13)
	e := newEnv(t, envOpts{})
	e.ingest(orig, a1)
	for _, m := range []*msg{good1, ofAmend, forbidden, good2} {
		e.submit(m)
	}
	if n, err := e.p.processOnce(e.ctx); err != nil || n != 4 {
		t.Fatalf("one batch of 4: %d, %v", n, err)
	}
	e.want(processed(good1), rejected(ofAmend, message.CodePostAmendAmend), rejected(forbidden, message.CodePermissionDenied), processed(good2))
	if e.post(ofAmend.hash) != nil {
		t.Error("the failing amend wrote a post row")
	}
	if a := e.aggregate(alice.Address(), "k"); a == nil || string(a.Content) != `{"alice":1}` {
		t.Errorf("aggregate %+v", a)
	}
}

// TestDatabaseErrorFallback makes one message of a batch fail on a database
// error (its post row already exists): the batch is rolled back and applied
// message by message, the failing one retried with INTERNAL_ERROR.
func TestDatabaseErrorFallback(t *testing.T) {
	alice := account(t, "alice")
	clash := build(t, "clash", alice, message.TypePost, post("x", `{}`), "", 0)
	good := build(t, "good", alice, message.TypePost, post("x", `{"n":1}`), "", 1)
	e := newEnv(t, envOpts{cfg: Config{MaxRetries: 1}})
	if err := e.store.Update(e.ctx, func(tx store.Tx) error {
		return tx.InsertPost(e.ctx, &store.Post{ItemHash: clash.hash, Owner: "x", Type: "x", Content: []byte(`{}`)})
	}); err != nil {
		t.Fatal(err)
	}
	evs := e.collect()
	e.submit(clash)
	e.submit(good)
	if n, err := e.p.processOnce(e.ctx); err != nil || n != 2 {
		t.Fatalf("batch: %d, %v", n, err)
	}
	e.wantStatus(good, message.StatusProcessed)
	e.wantStatus(clash, message.StatusPending)
	if _, err := e.store.GetMessage(e.ctx, clash.hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed message was stored: %v", err)
	}
	e.settle()
	e.wantRejected(clash, message.CodeInternalError)
	var codes []message.ErrorCode
	for _, ev := range evs() {
		if ev.ItemHash == clash.hash {
			codes = append(codes, ev.Code)
		}
	}
	if len(codes) != 2 || codes[0] != message.CodeInternalError || codes[1] != message.CodeInternalError {
		t.Errorf("event codes %v", codes)
	}
}

func TestRun(t *testing.T) {
	alice := account(t, "alice")
	e := newEnv(t, envOpts{cfg: Config{IdleWait: time.Hour, BatchSize: 2}})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.p.Run(ctx) }()
	// A second Run is refused while the first is active. (Started after the
	// first processed something, so the first surely holds the flag.)
	first := build(t, "first", alice, message.TypePost, post("x", `{}`), "", 0)
	if r, err := e.p.Submit(e.ctx, first.raw, SubmitOptions{Sync: true}); err != nil || r.Status != message.StatusProcessed {
		t.Fatalf("sync submit: %+v, %v", r, err)
	}
	if err := e.p.Run(e.ctx); err == nil {
		t.Error("a second Run was accepted")
	}
	// More than a batch, submitted asynchronously, all get processed.
	sub := e.bus.Subscribe(100)
	defer sub.Close()
	var ms []*msg
	for i := range 5 {
		m := build(t, "m", alice, message.TypePost, post("x", fmt.Sprintf(`{"i":%d}`, i)), "", float64(1+i))
		ms = append(ms, m)
		e.submit(m)
	}
	seen := map[string]bool{}
	for len(seen) < len(ms) {
		select {
		case ev := <-sub.C:
			if ev.Kind == events.Processed {
				seen[ev.ItemHash] = true
			}
		case <-e.ctx.Done():
			t.Fatal("messages not processed")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-e.ctx.Done():
		t.Fatal("Run did not return")
	}
}

func TestNew(t *testing.T) {
	e := newEnv(t, envOpts{})
	if _, err := New(Deps{Verifier: e.p.verifier}, Config{}); err == nil {
		t.Error("no store accepted")
	}
	if _, err := New(Deps{Store: e.store}, Config{}); err == nil {
		t.Error("no verifier accepted")
	}
	if _, err := New(Deps{Store: e.store, Verifier: e.p.verifier}, Config{MaxRetries: -1}); err == nil {
		t.Error("negative config accepted")
	}
	if _, err := New(Deps{Store: e.store, Verifier: e.p.verifier}, Config{FileTimeout: -1}); err == nil {
		t.Error("negative file timeout accepted")
	}
	p, err := New(Deps{Store: e.store, Verifier: e.p.verifier}, Config{BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Config(); c.BatchSize != 7 || c.MaxRetries != 10 || c.MaxBackoff != 300*time.Second || c.SyncTimeout != 30*time.Second || c.IdleWait != time.Second || c.FileTimeout != time.Minute {
		t.Errorf("config %+v", c)
	}
}
