package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

func testMessages(t *testing.T, open Opener) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		cases := []*store.Message{
			newMessage(t, "inline", msgOpts{timeText: "1648467547.7710", channel: "TEST", contentType: "blog",
				ref: "some-ref", tags: []string{"b", "a", "b"}}),
			newMessage(t, "storage", msgOpts{typ: message.TypeStore, storage: true, timeText: "1700000000",
				itemHash: hashOf("file"), payment: "hold", tags: []string{"x"}}),
			newMessage(t, "aggregate", msgOpts{typ: message.TypeAggregate, chain: message.ChainSOL, sender: "SoLsender",
				owner: "SoLowner", key: "profile", timeText: "1.5e9", status: message.StatusRemoving}),
			newMessage(t, "exp", msgOpts{timeText: "1700000000.100000000001"}),
		}
		insert(t, s, cases...)
		for _, want := range cases {
			got, err := s.GetMessage(ctx, want.ItemHash)
			noErr(t, err, "get message")
			sameMessage(t, got, want)
		}
		_, err := s.GetMessage(ctx, hashOf("missing"))
		wantErr(t, err, store.ErrNotFound, "get missing message")
	})

	t.Run("ConflictKeepsTransactionUsable", func(t *testing.T) {
		s := open(t)
		m := newMessage(t, "dup", msgOpts{})
		insert(t, s, m)
		other := newMessage(t, "other", msgOpts{})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			changed := *m
			changed.Sender = "0xSomeoneElse"
			wantErr(t, tx.InsertMessage(ctx, &changed), store.ErrConflict, "insert duplicate")
			// The transaction goes on after a conflict.
			return tx.InsertMessage(ctx, other)
		})
		ctx := testCtx(t)
		got, err := s.GetMessage(ctx, m.ItemHash)
		noErr(t, err, "get")
		sameMessage(t, got, m)
		_, err = s.GetMessage(ctx, other.ItemHash)
		noErr(t, err, "get other")
	})

	t.Run("TxSeesOwnWrites", func(t *testing.T) {
		s := open(t)
		m := newMessage(t, "own", msgOpts{})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.GetMessage(ctx, m.ItemHash); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("before insert: %v, want ErrNotFound", err)
			}
			if err := tx.InsertMessage(ctx, m); err != nil {
				return err
			}
			got, err := tx.GetMessage(ctx, m.ItemHash)
			if err != nil {
				return err
			}
			sameMessage(t, got, m)
			return nil
		})
	})

	t.Run("StatusChangeAndDelete", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		a := newMessage(t, "a", msgOpts{sender: "0xA"})
		b := newMessage(t, "b", msgOpts{sender: "0xA", typ: message.TypeStore})
		insert(t, s, a, b)
		count := func(f store.MessageFilter) int64 {
			t.Helper()
			n, err := s.CountMessages(ctx, f)
			noErr(t, err, "count")
			return n
		}
		if n := count(store.MessageFilter{}); n != 2 {
			t.Fatalf("count = %d, want 2", n)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.SetMessageStatus(ctx, a.ItemHash, message.StatusRemoving)
		})
		got, err := s.GetMessage(ctx, a.ItemHash)
		noErr(t, err, "get")
		if got.Status != message.StatusRemoving {
			t.Errorf("status = %s, want removing", got.Status)
		}
		if n := count(store.MessageFilter{Statuses: []message.Status{message.StatusRemoving}}); n != 1 {
			t.Errorf("removing count = %d, want 1", n)
		}
		if n := count(store.MessageFilter{Senders: []string{"0xA"}, Statuses: []message.Status{message.StatusProcessed}}); n != 1 {
			t.Errorf("processed count of 0xA = %d, want 1", n)
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			wantErr(t, tx.SetMessageStatus(ctx, hashOf("nope"), message.StatusRemoving), store.ErrNotFound, "status of missing")
			if err := tx.DeleteMessage(ctx, a.ItemHash); err != nil {
				return err
			}
			// Deleting a missing message is a no-op.
			return tx.DeleteMessage(ctx, a.ItemHash)
		})
		_, err = s.GetMessage(ctx, a.ItemHash)
		wantErr(t, err, store.ErrNotFound, "get deleted")
		if n := count(store.MessageFilter{}); n != 1 {
			t.Errorf("count after delete = %d, want 1", n)
		}
		if n := count(store.MessageFilter{Owners: []string{"0xA"}}); n != 1 {
			t.Errorf("owner count after delete = %d, want 1", n)
		}
		if n := count(store.MessageFilter{Types: []message.Type{message.TypePost}}); n != 0 {
			t.Errorf("POST count after delete = %d, want 0", n)
		}
		// Its tag rows went with it: a tag filter finds nothing.
		ms, _, err := s.QueryMessages(ctx, store.MessageFilter{Hashes: []string{a.ItemHash}}, store.Page{})
		noErr(t, err, "query deleted")
		if len(ms) != 0 {
			t.Errorf("deleted message still listed")
		}
		// The hash can be stored again after a delete.
		insert(t, s, a)
	})
}

func testStatuses(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	h := hashOf("status")
	_, err := s.GetStatus(ctx, h)
	wantErr(t, err, store.ErrNotFound, "missing status")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: h, Status: message.StatusPending, ReceptionTime: baseTime}); err != nil {
			return err
		}
		got, err := tx.GetStatus(ctx, h)
		if err != nil {
			return err
		}
		if got.Status != message.StatusPending || !got.ReceptionTime.Equal(baseTime) {
			t.Errorf("in tx: %+v", got)
		}
		// Replace, keeping the reception time when none is given.
		return tx.SetStatus(ctx, store.StatusRecord{ItemHash: h, Status: message.StatusProcessed})
	})
	got, err := s.GetStatus(ctx, h)
	noErr(t, err, "get status")
	if got.ItemHash != h || got.Status != message.StatusProcessed || !got.ReceptionTime.Equal(baseTime) {
		t.Errorf("status = %+v, want processed at %v", got, baseTime)
	}
	later := baseTime.Add(1500 * 1e6)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.SetStatus(ctx, store.StatusRecord{ItemHash: h, Status: message.StatusForgotten, ReceptionTime: later})
	})
	got, err = s.GetStatus(ctx, h)
	noErr(t, err, "get status")
	if got.Status != message.StatusForgotten || !got.ReceptionTime.Equal(later) {
		t.Errorf("status = %+v, want forgotten at %v", got, later)
	}
}

func testRejected(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	h := hashOf("rejected")
	_, err := s.GetRejected(ctx, h)
	wantErr(t, err, store.ErrNotFound, "missing rejected")
	raw := []byte(`{"chain":"ETH", "sender":"0xA","item_hash":"` + h + `","extra":[1, 2.50]}`)
	r := &store.Rejected{ItemHash: h, Message: raw, ErrorCode: message.CodeBalanceInsufficient,
		Details: []byte(`{"required_balance": "1.5", "account_balance":"0"}`), ReceptionTime: baseTime}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutRejected(ctx, r) })
	got, err := s.GetRejected(ctx, h)
	noErr(t, err, "get rejected")
	if string(got.Message) != string(raw) || string(got.Details) != string(r.Details) || got.ErrorCode != r.ErrorCode ||
		!got.ReceptionTime.Equal(baseTime) || got.ItemHash != h {
		t.Errorf("rejected = %+v", got)
	}
	// A second rejection replaces the first; nil details stay nil.
	r2 := &store.Rejected{ItemHash: h, Message: raw, ErrorCode: message.CodeInternalError, ReceptionTime: baseTime}
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutRejected(ctx, r2) })
	got, err = s.GetRejected(ctx, h)
	noErr(t, err, "get rejected")
	if got.ErrorCode != message.CodeInternalError || got.Details != nil {
		t.Errorf("replaced rejected = code %d details %q", got.ErrorCode, got.Details)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.DeleteRejected(ctx, h); err != nil {
			return err
		}
		return tx.DeleteRejected(ctx, h)
	})
	_, err = s.GetRejected(ctx, h)
	wantErr(t, err, store.ErrNotFound, "deleted rejected")
}

func testForgotten(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	h := hashOf("forgotten")
	f := &store.Forgotten{ItemHash: h, Type: message.TypeStore, Chain: message.ChainETH, Sender: "0xA", Signature: "0xsig",
		ItemType: message.ItemStorage, Time: mustTime(t, "1700000000.250"), Channel: "TEST", Owner: "0xB",
		PaymentType: "hold", Size: 1234, ForgottenBy: []string{hashOf("forget1")}, ForgottenAt: 1700000100.5}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.GetForgotten(ctx, h)
		wantErr(t, err, store.ErrNotFound, "missing forgotten")
		return tx.PutForgotten(ctx, f)
	})
	got, err := s.GetForgotten(ctx, h)
	noErr(t, err, "get forgotten")
	if got.Time.String() != "1700000000.250" || got.Type != f.Type || got.Chain != f.Chain || got.Sender != f.Sender ||
		got.Signature != f.Signature || got.ItemType != f.ItemType || got.Channel != f.Channel || got.Owner != f.Owner ||
		got.PaymentType != f.PaymentType || got.Size != f.Size || got.ForgottenAt != f.ForgottenAt ||
		len(got.ForgottenBy) != 1 || got.ForgottenBy[0] != f.ForgottenBy[0] {
		t.Errorf("forgotten = %+v", got)
	}
	// A second FORGET appends its hash (once) and keeps the first FORGET's time.
	again := *f
	again.ForgottenBy = []string{hashOf("forget2"), hashOf("forget1"), hashOf("forget2")}
	again.ForgottenAt = 1800000000
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutForgotten(ctx, &again); err != nil {
			return err
		}
		got, err := tx.GetForgotten(ctx, h)
		if err != nil {
			return err
		}
		if len(got.ForgottenBy) != 2 {
			t.Errorf("in tx: forgotten_by = %v", got.ForgottenBy)
		}
		return nil
	})
	got, err = s.GetForgotten(ctx, h)
	noErr(t, err, "get forgotten")
	want := []string{hashOf("forget1"), hashOf("forget2")}
	if len(got.ForgottenBy) != 2 || got.ForgottenBy[0] != want[0] || got.ForgottenBy[1] != want[1] {
		t.Errorf("forgotten_by = %v, want %v", got.ForgottenBy, want)
	}
	if got.ForgottenAt != f.ForgottenAt {
		t.Errorf("forgotten_at = %v, want the first %v", got.ForgottenAt, f.ForgottenAt)
	}
}
