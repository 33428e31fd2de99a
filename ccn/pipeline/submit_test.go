package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// withEnvelope re-encodes m's envelope after edit.
func withEnvelope(t *testing.T, m *msg, edit func(env map[string]any)) []byte {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(m.raw, &env); err != nil {
		t.Fatal(err)
	}
	edit(env)
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// altSignature writes an EVM signature with its recovery byte as 0/1 instead of
// 27/28: another string that verifies for the same message.
func altSignature(t *testing.T, sig string) string {
	t.Helper()
	switch {
	case strings.HasSuffix(sig, "1b"):
		return sig[:len(sig)-2] + "00"
	case strings.HasSuffix(sig, "1c"):
		return sig[:len(sig)-2] + "01"
	}
	t.Fatalf("unexpected recovery byte in %s", sig)
	return ""
}

func TestSubmitParseErrors(t *testing.T) {
	alice := account(t, "alice")
	good := build(t, "good", alice, message.TypePost, post("x", `{}`), "", 0)
	tests := []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"not json", []byte("hello")},
		{"array", []byte(`[]`)},
		{"no chain", withEnvelope(t, good, func(e map[string]any) { delete(e, "chain") })},
		{"unknown type", withEnvelope(t, good, func(e map[string]any) { e["type"] = "V-PROGRAM" })},
		{"hash mismatch", withEnvelope(t, good, func(e map[string]any) { e["item_content"] = `{"x":1}` })},
		{"bad content schema", withEnvelope(t, good, func(e map[string]any) {
			c := `{"address":"0x1","time":1,"type":"x","unknown":1}`
			e["item_content"], e["item_hash"] = c, message.HashContent([]byte(c))
		})},
	}
	e := newEnv(t, envOpts{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.p.Submit(e.ctx, tc.raw, SubmitOptions{})
			var me *message.Error
			if !errors.As(err, &me) || me.Code != message.CodeInvalidFormat {
				t.Fatalf("Submit = %+v, %v; want a code-0 *message.Error", r, err)
			}
		})
	}
	if n, _ := e.store.PendingCount(e.ctx); n != 0 {
		t.Errorf("%d messages queued", n)
	}
	if _, err := e.store.GetStatus(e.ctx, good.hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a status was recorded: %v", err)
	}
	if _, err := e.p.Submit(e.ctx, good.raw, SubmitOptions{Origin: "carrier pigeon"}); err == nil || message.CodeOf(err) != message.CodeInternalError {
		t.Errorf("unknown origin: %v", err)
	}
}

func TestSubmitSignatures(t *testing.T) {
	alice, bob := account(t, "alice"), account(t, "bob")
	good := build(t, "good", alice, message.TypePost, post("x", `{}`), "", 0)
	other := build(t, "other", bob, message.TypePost, post("x", `{}`), "", 1)
	wrongSig := withEnvelope(t, good, func(e map[string]any) { e["signature"] = other.m.Signature })
	noSig := withEnvelope(t, good, func(e map[string]any) { e["signature"] = nil })
	aurora := withEnvelope(t, good, func(e map[string]any) { e["chain"] = "AURORA" })

	tests := []struct {
		name string
		raw  []byte
		code message.ErrorCode
	}{
		{"wrong signature", wrongSig, message.CodeInvalidSignature},
		{"no signature", noSig, message.CodeInvalidSignature},
		{"chain without verifier", aurora, message.CodeInvalidFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			r, err := e.p.Submit(e.ctx, tc.raw, SubmitOptions{Sync: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != message.StatusRejected || message.CodeOf(r.Err) != tc.code || r.ItemHash != good.hash {
				t.Fatalf("result %+v, want rejected with %d", r, tc.code)
			}
			e.wantRejected(good, tc.code)
			if rec, _ := e.store.GetRejected(e.ctx, good.hash); rec == nil || string(rec.Message) != string(tc.raw) {
				t.Errorf("rejection keeps %s, want the envelope as received", rec.Message)
			}
			// A valid copy is still accepted, and clears the rejection.
			if r := e.submit(good); r.Status != message.StatusPending {
				t.Fatalf("valid copy: %+v", r)
			}
			e.drain()
			e.wantStatus(good, message.StatusProcessed)
			if _, err := e.store.GetRejected(e.ctx, good.hash); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("old rejection left: %v", err)
			}
			// A bad copy of a processed message is refused but changes nothing.
			r, err = e.p.Submit(e.ctx, tc.raw, SubmitOptions{})
			if err != nil || r.Status != message.StatusRejected {
				t.Fatalf("bad copy: %+v, %v", r, err)
			}
			e.wantStatus(good, message.StatusProcessed)
		})
	}
}

func TestSubmitDedup(t *testing.T) {
	alice := account(t, "alice")
	m := build(t, "m", alice, message.TypePost, post("x", `{}`), "", 0)
	f := build(t, "f", alice, message.TypeForget, forget(m.hash), "", 1)
	e := newEnv(t, envOpts{})
	for i := range 3 {
		if r := e.submit(m); r.Status != message.StatusPending || r.ItemHash != m.hash {
			t.Fatalf("submit %d: %+v", i, r)
		}
	}
	if n, _ := e.store.PendingCount(e.ctx); n != 1 {
		t.Errorf("queued %d copies, want 1", n)
	}
	ps, err := e.store.PendingByHash(e.ctx, m.hash)
	if err != nil || len(ps) != 1 || ps[0].Origin != "api" || !ps[0].CheckSignature || !ps[0].NextAttempt.Equal(m.m.Time.Std()) {
		t.Errorf("queue row = %+v (%v)", ps, err)
	}
	e.drain()
	if r := e.submit(m); r.Status != message.StatusProcessed {
		t.Errorf("after processing: %+v", r)
	}
	e.ingest(f)
	if r := e.submit(m); r.Status != message.StatusForgotten {
		t.Errorf("after forget: %+v", r)
	}
	if n, _ := e.store.PendingCount(e.ctx); n != 0 {
		t.Errorf("%d messages queued", n)
	}
}

// TestNextAttempt checks the queue order rule: min(message time, reception).
func TestNextAttempt(t *testing.T) {
	alice := account(t, "alice")
	past := build(t, "past", alice, message.TypePost, post("x", `{}`), "", 0)
	future := build(t, "future", alice, message.TypePost, post("x", `{}`), "", 7200)
	e := newEnv(t, envOpts{}) // the clock is at baseTime + 3600
	e.submit(past)
	e.submit(future)
	for _, tc := range []struct {
		m    *msg
		want time.Time
	}{{past, past.m.Time.Std()}, {future, e.clock.Now()}} {
		ps, err := e.store.PendingByHash(e.ctx, tc.m.hash)
		if err != nil || len(ps) != 1 || !ps[0].NextAttempt.Equal(tc.want) || !ps[0].ReceptionTime.Equal(e.clock.Now()) {
			t.Errorf("%s: queue row %+v (%v), want next attempt %v", tc.m.name, ps, err, tc.want)
		}
	}
	if n := e.drain(); n != 2 {
		t.Errorf("processed %d, want both (the future one at reception time)", n)
	}
}

// runPipeline runs p.Run until the test ends and checks it returned nil.
func runPipeline(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("Run did not return after its context ended")
		}
	})
}

func TestSubmitSync(t *testing.T) {
	alice := account(t, "alice")
	orig := build(t, "orig", alice, message.TypePost, post("x", `{}`), "", 0)
	a1 := build(t, "a1", alice, message.TypePost, amend(orig.hash, `{}`), "", 1)
	ofAmend := build(t, "ofAmend", alice, message.TypePost, amend(a1.hash, `{}`), "", 2)
	missing := build(t, "missing", alice, message.TypePost, amend(fileHash("none"), `{}`), "", 3)
	f := build(t, "f", alice, message.TypeForget, forget(orig.hash), "", 4)
	a2 := build(t, "a2", alice, message.TypePost, amend(orig.hash, `{}`), "", 2) // after f: forgotten on arrival

	// IdleWait is an hour: only Submit's wake-up gets these processed before
	// the sync timeout.
	e := newEnv(t, envOpts{cfg: Config{IdleWait: time.Hour, SyncTimeout: time.Minute}})
	runPipeline(t, e)
	sync := func(m *msg) SubmitResult {
		t.Helper()
		r, err := e.p.Submit(e.ctx, m.raw, SubmitOptions{Sync: true})
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		return r
	}
	if r := sync(orig); r.Status != message.StatusProcessed || r.Err != nil || r.ItemHash != orig.hash {
		t.Fatalf("orig: %+v", r)
	}
	// Events are published after the commit: the message is readable now.
	if _, err := e.store.GetMessage(e.ctx, orig.hash); err != nil {
		t.Errorf("processed message not readable: %v", err)
	}
	if r := sync(a1); r.Status != message.StatusProcessed {
		t.Fatalf("a1: %+v", r)
	}
	r := sync(ofAmend)
	if r.Status != message.StatusRejected || message.CodeOf(r.Err) != message.CodePostAmendAmend || message.FieldOf(r.Err) != "content.ref" {
		t.Errorf("ofAmend: %+v", r)
	}
	if r := sync(missing); r.Status != message.StatusPending || r.Err != nil {
		t.Errorf("missing (retried): %+v", r)
	}
	if r := sync(f); r.Status != message.StatusProcessed {
		t.Errorf("forget: %+v", r)
	}
	if r := sync(a2); r.Status != message.StatusForgotten {
		t.Errorf("amend of a forgotten post: %+v", r)
	}
	if r := sync(orig); r.Status != message.StatusForgotten {
		t.Errorf("resubmitted forgotten: %+v", r)
	}
}

func TestSubmitSyncTimeoutAndWaiters(t *testing.T) {
	alice := account(t, "alice")
	m := build(t, "m", alice, message.TypePost, post("x", `{}`), "", 0)
	e := newEnv(t, envOpts{cfg: Config{SyncTimeout: 20 * time.Millisecond}})
	// Nothing processes: the sync wait ends at the timeout with pending.
	r, err := e.p.Submit(e.ctx, m.raw, SubmitOptions{Sync: true})
	if err != nil || r.Status != message.StatusPending {
		t.Fatalf("timeout: %+v, %v", r, err)
	}
	// A sync submission of a message already pending waits for its outcome.
	e.p.cfg.SyncTimeout = time.Minute
	waiting := make(chan string, 4)
	e.p.testHookAwait = func(h string) { waiting <- h }
	results := make([]SubmitResult, cap(waiting))
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = e.p.Submit(e.ctx, m.raw, SubmitOptions{Sync: true})
		}()
	}
	for range results {
		select {
		case <-waiting:
		case <-e.ctx.Done():
			t.Fatal("submitters never waited")
		}
	}
	e.drain()
	wg.Wait()
	for i, r := range results {
		if r.Status != message.StatusProcessed {
			t.Errorf("waiter %d: %+v", i, r)
		}
	}
	if n, _ := e.store.PendingCount(e.ctx); n != 0 {
		t.Errorf("%d copies queued", n)
	}
}

// TestResubmitAfterRejection: a message rejected by processing (its
// dependency never came in time) can be submitted again and is then processed;
// the old rejection goes.
func TestResubmitAfterRejection(t *testing.T) {
	alice := account(t, "alice")
	orig := build(t, "orig", alice, message.TypePost, post("x", `{}`), "", 0)
	am := build(t, "am", alice, message.TypePost, amend(orig.hash, `{}`), "", 1)
	e := newEnv(t, envOpts{cfg: Config{MaxRetries: 1}})
	e.ingest(am)
	e.settle()
	e.wantRejected(am, message.CodePostAmendTargetMissing)
	e.ingest(orig)
	if r := e.submit(am); r.Status != message.StatusPending {
		t.Fatalf("resubmission: %+v", r)
	}
	e.wantStatus(am, message.StatusPending)
	e.drain()
	e.wantStatus(am, message.StatusProcessed)
	if _, err := e.store.GetRejected(e.ctx, am.hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old rejection left: %v", err)
	}
}
