package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

func TestBatchPause(t *testing.T) {
	const wait = 50 * time.Millisecond
	tests := []struct {
		name  string
		lastN int
		since time.Duration
		sync  bool
		want  time.Duration
	}{
		{"idle pipeline", 0, 0, false, 0},
		{"a lone message", 1, time.Millisecond, false, 0},
		{"a stream, just started", 2, 10 * time.Millisecond, false, 40 * time.Millisecond},
		{"a stream with a sync submission waiting", 2, 10 * time.Millisecond, true, 0},
		{"a stream, batch took longer than the wait", 100, 80 * time.Millisecond, false, 0},
		{"a full batch: more is due", 256, 0, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := batchPause(tc.lastN, 256, tc.since, wait, tc.sync); got != tc.want {
				t.Errorf("batchPause(%d, 256, %v, %v, %v) = %v, want %v", tc.lastN, tc.since, wait, tc.sync, got, tc.want)
			}
		})
	}
}

// TestLargeBatch processes hundreds of posts, with tags, from several senders
// and an amend of one of them, in one batch (more rows than one multi-row
// statement takes): every message is processed, the amend sees its original
// written earlier in the batch, and the counters are exact.
func TestLargeBatch(t *testing.T) {
	forBackends(t, func(t *testing.T, pg bool) {
		var signers []*evm.Account
		for i := range 7 {
			signers = append(signers, account(t, fmt.Sprint("large", i)))
		}
		var ms []*msg
		sent := map[string]int64{}
		for i := range 300 {
			s := signers[i%len(signers)]
			ms = append(ms, build(t, fmt.Sprint("p", i), s, message.TypePost,
				post("load", fmt.Sprintf(`{"i":%d,"tags":["all","t%d"]}`, i, i%3)), "LOAD", float64(i)/100))
			sent[s.Address()]++
		}
		am := build(t, "amend", signers[0], message.TypePost, amend(ms[0].hash, `{"v":2,"tags":["amended"]}`), "LOAD", 10)
		ms = append(ms, am)
		sent[signers[0].Address()]++
		e := newEnv(t, envOpts{cfg: Config{BatchSize: 512}, postgres: pg})
		for _, m := range ms {
			e.submit(m)
		}
		if n, err := e.p.processOnce(e.ctx); err != nil || n != len(ms) {
			t.Fatalf("one batch of %d: %d, %v", len(ms), n, err)
		}
		for _, m := range ms {
			e.wantStatus(m, message.StatusProcessed)
		}
		if p := e.post(ms[0].hash); p == nil || p.LatestAmend != am.hash {
			t.Errorf("original after its amend in the same batch: %+v", p)
		}
		count := func(f store.MessageFilter) int64 {
			t.Helper()
			n, err := e.store.CountMessages(e.ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(store.MessageFilter{}); n != int64(len(ms)) {
			t.Errorf("total %d, want %d", n, len(ms))
		}
		for addr, want := range sent {
			if n := count(store.MessageFilter{Senders: []string{addr}}); n != want {
				t.Errorf("sender %s: %d messages, want %d", addr, n, want)
			}
			if n := count(store.MessageFilter{Owners: []string{addr}, Types: []message.Type{message.TypePost}}); n != want {
				t.Errorf("owner %s: %d posts, want %d", addr, n, want)
			}
		}
		if n := count(store.MessageFilter{Tags: []string{"t1"}}); n != 100 {
			t.Errorf("tag t1: %d messages, want 100", n)
		}
		if n, err := e.store.CountPosts(e.ctx, store.PostFilter{Tags: []string{"all"}}); err != nil || n != 299 {
			t.Errorf("posts tagged all (the amended one now carries its amend's tags): %d, %v; want 299", n, err)
		}
		if n, err := e.store.PendingCount(e.ctx); err != nil || n != 0 {
			t.Errorf("%d left in the queue, %v", n, err)
		}
	})
}

// TestBatchRejectedCopyThenValid: in one batch, a copy with a bad signature
// is rejected (recording the rejection) and a valid copy after it is
// processed, which removes that rejection.
func TestBatchRejectedCopyThenValid(t *testing.T) {
	forBackends(t, func(t *testing.T, pg bool) {
		alice := account(t, "alice")
		m := build(t, "m", alice, message.TypePost, post("x", `{}`), "", 0)
		e := newEnv(t, envOpts{postgres: pg})
		enqueue := func(sig string) {
			t.Helper()
			c := *m.m
			c.Signature = sig
			raw, err := json.Marshal(&c)
			if err != nil {
				t.Fatal(err)
			}
			now := e.clock.Now()
			// On-chain rows are verified when processed, not at admission.
			if _, err := e.store.Enqueue(e.ctx, []*store.Pending{{
				Message: c, Raw: raw, ReceptionTime: now, NextAttempt: now, CheckSignature: true, Origin: "onchain",
			}}); err != nil {
				t.Fatal(err)
			}
		}
		enqueue("0x" + fmt.Sprintf("%0130x", 1))
		enqueue(m.m.Signature)
		evs := e.collect()
		if n, err := e.p.processOnce(e.ctx); err != nil || n != 2 {
			t.Fatalf("one batch of 2: %d, %v", n, err)
		}
		e.wantStatus(m, message.StatusProcessed)
		if _, err := e.store.GetRejected(e.ctx, m.hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rejection of the bad copy left beside the processed message: %v", err)
		}
		if got := kinds(evs(), m.hash); len(got) != 2 || got[0] != events.Rejected || got[1] != events.Processed {
			t.Errorf("events %v, want rejected then processed", got)
		}
	})
}
