package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// newPending builds a queued copy of a message, with the envelope as raw JSON.
func newPending(t *testing.T, label, sig string, next time.Time) *store.Pending {
	t.Helper()
	m := newMessage(t, label, msgOpts{channel: "TEST"})
	m.Signature = sig
	raw, err := json.Marshal(&m.Message)
	noErr(t, err, "marshal envelope")
	return &store.Pending{Message: m.Message, Raw: raw, ReceptionTime: baseTime, NextAttempt: next,
		CheckSignature: true, Origin: "api"}
}

func enqueue(t *testing.T, s store.Store, ps ...*store.Pending) []bool {
	t.Helper()
	got, err := s.Enqueue(testCtx(t), ps)
	noErr(t, err, "enqueue")
	if len(got) != len(ps) {
		t.Fatalf("enqueue returned %d flags for %d inputs", len(got), len(ps))
	}
	return got
}

func samePending(t *testing.T, got, want *store.Pending) {
	t.Helper()
	if got.ID != want.ID || got.Message.ItemHash != want.Message.ItemHash || got.Message.Sender != want.Message.Sender ||
		got.Message.Signature != want.Message.Signature || got.Message.Chain != want.Message.Chain ||
		got.Message.Type != want.Message.Type || got.Message.Channel != want.Message.Channel ||
		got.Message.Time.String() != want.Message.Time.String() || got.Message.ItemType != want.Message.ItemType ||
		got.Message.ItemContent != want.Message.ItemContent || string(got.Raw) != string(want.Raw) ||
		string(got.Content) != string(want.Content) || !got.ReceptionTime.Equal(want.ReceptionTime) ||
		!got.NextAttempt.Equal(want.NextAttempt) || got.Retries != want.Retries ||
		got.CheckSignature != want.CheckSignature || got.Origin != want.Origin || got.LastError != want.LastError {
		t.Errorf("pending\n got %+v\nwant %+v", got, want)
	}
}

func testQueue(t *testing.T, open Opener) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		p := newPending(t, "one", "0xsig", baseTime)
		p.CheckSignature = false
		p.Origin = "onchain"
		storage := newPending(t, "two", "0xsig2", baseTime)
		storage.Message.ItemType, storage.Message.ItemContent = message.ItemStorage, ""
		got := enqueue(t, s, p, storage)
		if !got[0] || !got[1] {
			t.Fatalf("queued = %v, want both", got)
		}
		if p.ID == 0 || storage.ID == 0 || p.ID == storage.ID {
			t.Fatalf("ids %d, %d: want distinct non-zero ids", p.ID, storage.ID)
		}
		for _, want := range []*store.Pending{p, storage} {
			list, err := s.PendingByHash(ctx, want.Message.ItemHash)
			noErr(t, err, "pending by hash")
			if len(list) != 1 {
				t.Fatalf("pending by hash: %d copies", len(list))
			}
			samePending(t, list[0], want)
			st, err := s.GetStatus(ctx, want.Message.ItemHash)
			noErr(t, err, "status")
			if st.Status != message.StatusPending || !st.ReceptionTime.Equal(baseTime) {
				t.Errorf("status = %+v, want pending", st)
			}
		}
		list, err := s.PendingByHash(ctx, hashOf("none"))
		noErr(t, err, "pending by missing hash")
		if len(list) != 0 {
			t.Errorf("pending by missing hash: %d", len(list))
		}
		empty, err := s.Enqueue(ctx, nil)
		noErr(t, err, "empty enqueue")
		if len(empty) != 0 {
			t.Errorf("empty enqueue returned %v", empty)
		}
	})

	t.Run("Dedup", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		a := newPending(t, "a", "0xsig", baseTime)
		enqueue(t, s, a)
		again := newPending(t, "a", "0xsig", baseTime)
		otherSig := newPending(t, "a", "0xother", baseTime)
		b1 := newPending(t, "b", "0xsig", baseTime)
		b2 := newPending(t, "b", "0xsig", baseTime)
		got := enqueue(t, s, again, otherSig, b1, b2)
		want := []bool{false, true, true, false}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("queued = %v, want %v", got, want)
		}
		n, err := s.PendingCount(ctx)
		noErr(t, err, "count")
		if n != 3 {
			t.Errorf("pending count = %d, want 3", n)
		}
		copies, err := s.PendingByHash(ctx, a.Message.ItemHash)
		noErr(t, err, "by hash")
		if len(copies) != 2 || copies[0].ID >= copies[1].ID {
			t.Errorf("copies of a: %d, want 2 in id order", len(copies))
		}
	})

	t.Run("StatusRules", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		cases := []struct {
			before, after message.Status
		}{
			{message.StatusRejected, message.StatusPending},
			{message.StatusProcessed, message.StatusProcessed},
			{message.StatusRemoving, message.StatusRemoving},
			{message.StatusForgotten, message.StatusForgotten},
			{message.StatusRemoved, message.StatusRemoved},
			{message.StatusPending, message.StatusPending},
		}
		earlier := baseTime.Add(-time.Hour)
		for i, c := range cases {
			p := newPending(t, fmt.Sprint("rule", i), "0xsig", baseTime)
			update(t, s, func(ctx context.Context, tx store.Tx) error {
				return tx.SetStatus(ctx, store.StatusRecord{ItemHash: p.Message.ItemHash, Status: c.before, ReceptionTime: earlier})
			})
			if got := enqueue(t, s, p); !got[0] {
				t.Errorf("%s: not queued (the queue dedups on sender, hash and signature only)", c.before)
			}
			st, err := s.GetStatus(ctx, p.Message.ItemHash)
			noErr(t, err, "status")
			if st.Status != c.after {
				t.Errorf("status %s after enqueue = %s, want %s", c.before, st.Status, c.after)
			}
			wantTime := earlier
			if c.before == message.StatusRejected {
				wantTime = baseTime
			}
			if !st.ReceptionTime.Equal(wantTime) {
				t.Errorf("status %s: reception time %v, want %v", c.before, st.ReceptionTime, wantTime)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		const workers, each, distinctN = 16, 40, 200
		var wg sync.WaitGroup
		results := make([][]bool, workers)
		inputs := make([][]*store.Pending, workers)
		errs := make([]error, workers)
		for w := range workers {
			for i := range each {
				// Workers overlap: input (w, i) is message (w*each/2 + i) mod distinctN.
				k := (w*each/2 + i) % distinctN
				inputs[w] = append(inputs[w], newPending(t, fmt.Sprint("c", k), "0xsig", baseTime.Add(time.Duration(k)*time.Millisecond)))
			}
		}
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Half the workers enqueue one message per call, half all at once.
				if w%2 == 0 {
					for _, p := range inputs[w] {
						got, err := s.Enqueue(ctx, []*store.Pending{p})
						if err != nil {
							errs[w] = err
							return
						}
						results[w] = append(results[w], got...)
					}
					return
				}
				results[w], errs[w] = s.Enqueue(ctx, inputs[w])
			}()
		}
		wg.Wait()
		queued := map[string]int{}
		seen := map[string]bool{}
		for w := range workers {
			noErr(t, errs[w], fmt.Sprint("worker ", w))
			for i, ok := range results[w] {
				h := inputs[w][i].Message.ItemHash
				seen[h] = true
				if ok {
					queued[h]++
				}
			}
		}
		for h := range seen {
			if queued[h] != 1 {
				t.Errorf("%s queued %d times, want once", h, queued[h])
			}
		}
		n, err := s.PendingCount(ctx)
		noErr(t, err, "count")
		if n != int64(len(seen)) {
			t.Errorf("pending count = %d, want %d", n, len(seen))
		}
		due, err := s.Due(ctx, baseTime.Add(time.Hour), 1000)
		noErr(t, err, "due")
		if len(due) != len(seen) {
			t.Errorf("due = %d, want %d", len(due), len(seen))
		}
		for _, p := range due {
			st, err := s.GetStatus(ctx, p.Message.ItemHash)
			noErr(t, err, "status")
			if st.Status != message.StatusPending {
				t.Errorf("status of %s = %s", p.Message.ItemHash, st.Status)
			}
		}
	})

	t.Run("DueOrderAndRetries", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		if _, ok, err := s.NextDue(ctx); err != nil || ok {
			t.Fatalf("next due of empty queue: ok=%v err=%v", ok, err)
		}
		t0 := baseTime
		// Enqueued out of order; c and d tie on next attempt and keep id order.
		a := newPending(t, "a", "s", t0.Add(3*time.Second))
		b := newPending(t, "b", "s", t0.Add(1*time.Second))
		c := newPending(t, "c", "s", t0.Add(2*time.Second))
		d := newPending(t, "d", "s", t0.Add(2*time.Second))
		future := newPending(t, "future", "s", t0.Add(time.Hour))
		enqueue(t, s, a, b, c)
		enqueue(t, s, d, future)
		order := func(ps []*store.Pending) string {
			var out []string
			for _, p := range ps {
				for name, q := range map[string]*store.Pending{"a": a, "b": b, "c": c, "d": d, "future": future} {
					if q.ID == p.ID {
						out = append(out, name)
					}
				}
			}
			return fmt.Sprint(out)
		}
		due, err := s.Due(ctx, t0.Add(10*time.Second), 10)
		noErr(t, err, "due")
		if got := order(due); got != "[b c d a]" {
			t.Errorf("due order = %s, want [b c d a]", got)
		}
		due, err = s.Due(ctx, t0.Add(10*time.Second), 2)
		noErr(t, err, "due limit")
		if got := order(due); got != "[b c]" {
			t.Errorf("due limit 2 = %s", got)
		}
		due, err = s.Due(ctx, t0.Add(2*time.Second), 10)
		noErr(t, err, "due at bound")
		if got := order(due); got != "[b c d]" {
			t.Errorf("due at t0+2s = %s, want [b c d] (next attempt ≤ now)", got)
		}
		next, ok, err := s.NextDue(ctx)
		noErr(t, err, "next due")
		if !ok || !next.Equal(t0.Add(time.Second)) {
			t.Errorf("next due = %v %v, want %v", next, ok, t0.Add(time.Second))
		}
		// Retry b: it moves behind a.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.RetryPending(ctx, b.ID, t0.Add(5*time.Second), 1, message.CodeContentUnavailable); err != nil {
				return err
			}
			wantErr(t, tx.RetryPending(ctx, 1<<40, t0, 1, 0), store.ErrNotFound, "retry missing")
			wantErr(t, tx.SetPendingContent(ctx, 1<<40, []byte(`{}`)), store.ErrNotFound, "content of missing")
			return tx.SetPendingContent(ctx, c.ID, []byte(`{"fetched": true}`))
		})
		due, err = s.Due(ctx, t0.Add(10*time.Second), 10)
		noErr(t, err, "due")
		if got := order(due); got != "[c d a b]" {
			t.Errorf("due after retry = %s, want [c d a b]", got)
		}
		for _, p := range due {
			switch p.ID {
			case b.ID:
				if p.Retries != 1 || p.LastError != message.CodeContentUnavailable || !p.NextAttempt.Equal(t0.Add(5*time.Second)) {
					t.Errorf("retried = retries %d code %d next %v", p.Retries, p.LastError, p.NextAttempt)
				}
			case c.ID:
				if string(p.Content) != `{"fetched": true}` {
					t.Errorf("content = %q", p.Content)
				}
			case a.ID:
				if p.Content != nil {
					t.Errorf("unfetched content = %q, want nil", p.Content)
				}
			}
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.DeletePending(ctx, c.ID); err != nil {
				return err
			}
			return tx.DeletePending(ctx, c.ID)
		})
		n, err := s.PendingCount(ctx)
		noErr(t, err, "count")
		if n != 4 {
			t.Errorf("count after delete = %d, want 4", n)
		}
		due, err = s.Due(ctx, t0.Add(10*time.Second), 0)
		noErr(t, err, "due limit 0")
		if len(due) != 0 {
			t.Errorf("due with limit 0 returned %d", len(due))
		}
	})
}
