package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// writeEverything writes one record of each kind, for rollback checks.
func writeEverything(ctx context.Context, t *testing.T, tx store.Tx, m *store.Message, pendingID int64) error {
	t.Helper()
	steps := []func() error{
		func() error { return tx.InsertMessage(ctx, m) },
		func() error {
			return tx.SetStatus(ctx, store.StatusRecord{ItemHash: m.ItemHash, Status: message.StatusProcessed, ReceptionTime: baseTime})
		},
		func() error { return tx.DeletePending(ctx, pendingID) },
		func() error {
			return tx.PutRejected(ctx, &store.Rejected{ItemHash: hashOf("rj"), Message: []byte(`{}`), ReceptionTime: baseTime})
		},
		func() error {
			return tx.InsertPost(ctx, &store.Post{ItemHash: m.ItemHash, Owner: m.Owner, Type: "blog", Content: []byte(`{}`)})
		},
		func() error {
			return tx.InsertAggregateElement(ctx, &store.AggregateElement{ItemHash: hashOf("el"), Key: "k", Owner: "o", Content: []byte(`{}`)})
		},
		func() error { return tx.PutFile(ctx, &store.File{Hash: hashOf("f"), Size: 1, Type: "file"}) },
		func() error {
			return tx.InsertVM(ctx, &store.VM{ItemHash: hashOf("vm"), Owner: "o", Type: "program", Content: []byte(`{}`), Refs: []string{"r"}})
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// nothingWritten fails if any record of writeEverything is visible.
func nothingWritten(t *testing.T, s store.Store, m *store.Message, pendingHash string) {
	t.Helper()
	ctx := testCtx(t)
	if _, err := s.GetMessage(ctx, m.ItemHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("message written: %v", err)
	}
	if st, err := s.GetStatus(ctx, m.ItemHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("status written: %+v %v", st, err)
	}
	if _, err := s.GetRejected(ctx, hashOf("rj")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rejection written: %v", err)
	}
	if n, err := s.CountMessages(ctx, store.MessageFilter{}); err != nil || n != 0 {
		t.Errorf("counters changed: %d %v", n, err)
	}
	if ps, err := s.PendingByHash(ctx, pendingHash); err != nil || len(ps) != 1 {
		t.Errorf("pending row deleted: %d %v", len(ps), err)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.GetPost(ctx, m.ItemHash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("post written: %v", err)
		}
		if _, err := tx.GetAggregateElement(ctx, hashOf("el")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("element written: %v", err)
		}
		if _, err := tx.GetFile(ctx, hashOf("f")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("file written: %v", err)
		}
		if _, err := tx.GetVM(ctx, hashOf("vm")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("vm written: %v", err)
		}
		return nil
	})
}

func testUpdate(t *testing.T, open Opener) {
	t.Run("RollbackOnError", func(t *testing.T) {
		s := open(t)
		p := newPending(t, "p", "sig", baseTime)
		enqueue(t, s, p)
		m := newMessage(t, "rb", msgOpts{})
		boom := errors.New("boom")
		err := s.Update(testCtx(t), func(tx store.Tx) error {
			if err := writeEverything(testCtx(t), t, tx, m, p.ID); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update error = %v, want fn's error", err)
		}
		nothingWritten(t, s, m, p.Message.ItemHash)
	})

	t.Run("RollbackOnPanic", func(t *testing.T) {
		s := open(t)
		p := newPending(t, "p", "sig", baseTime)
		enqueue(t, s, p)
		m := newMessage(t, "panic", msgOpts{})
		func() {
			defer func() {
				if r := recover(); r != "kaboom" {
					t.Errorf("recovered %v, want the panic to propagate", r)
				}
			}()
			_ = s.Update(testCtx(t), func(tx store.Tx) error {
				if err := writeEverything(testCtx(t), t, tx, m, p.ID); err != nil {
					return err
				}
				panic("kaboom")
			})
		}()
		nothingWritten(t, s, m, p.Message.ItemHash)
		// The store still works.
		insert(t, s, m)
	})

	t.Run("CommitAndTxAfterReturn", func(t *testing.T) {
		s := open(t)
		m := newMessage(t, "ok", msgOpts{})
		var kept store.Tx
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			kept = tx
			return tx.InsertMessage(ctx, m)
		})
		if _, err := s.GetMessage(testCtx(t), m.ItemHash); err != nil {
			t.Fatalf("committed message: %v", err)
		}
		if err := kept.InsertMessage(testCtx(t), newMessage(t, "late", msgOpts{})); err == nil {
			t.Errorf("a Tx used after Update returned accepted a write")
		}
	})

	t.Run("SerializedWriters", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		// Concurrent Updates that read then write the same record must not lose
		// increments: writes are serialized.
		const n = 20
		h := hashOf("counter")
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() {
				errs <- s.Update(ctx, func(tx store.Tx) error {
					f, err := tx.GetFile(ctx, h)
					size := int64(0)
					if err == nil {
						size = f.Size
					} else if !errors.Is(err, store.ErrNotFound) {
						return err
					}
					return tx.PutFile(ctx, &store.File{Hash: h, Size: size + 1, Type: "file"})
				})
			}()
		}
		for i := 0; i < n; i++ {
			noErr(t, <-errs, "update")
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			f, err := tx.GetFile(ctx, h)
			if err != nil {
				return err
			}
			if f.Size != n {
				t.Errorf("counter = %d, want %d", f.Size, n)
			}
			return nil
		})
	})
}

func testContext(t *testing.T, open Opener) {
	s := open(t)
	m := newMessage(t, "ctx", msgOpts{})
	insert(t, s, m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Update": func() error {
			return s.Update(ctx, func(tx store.Tx) error { return tx.InsertMessage(ctx, newMessage(t, "never", msgOpts{})) })
		},
		"Enqueue": func() error {
			_, err := s.Enqueue(ctx, []*store.Pending{newPending(t, "never", "sig", baseTime)})
			return err
		},
		"GetMessage": func() error { _, err := s.GetMessage(ctx, m.ItemHash); return err },
		"QueryMessages": func() error {
			_, _, err := s.QueryMessages(ctx, store.MessageFilter{}, store.Page{Size: 20})
			return err
		},
		"CountMessages": func() error {
			_, err := s.CountMessages(ctx, store.MessageFilter{Channels: []string{"x"}})
			return err
		},
		"Due":           func() error { _, err := s.Due(ctx, baseTime, 10); return err },
		"GetAggregates": func() error { _, err := s.GetAggregates(ctx, "0xA", nil); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	// Nothing was written by the cancelled calls.
	live := testCtx(t)
	if n, err := s.PendingCount(live); err != nil || n != 0 {
		t.Errorf("pending after cancelled enqueue: %d %v", n, err)
	}
	if n, err := s.CountMessages(live, store.MessageFilter{}); err != nil || n != 1 {
		t.Errorf("messages after cancelled update: %d %v", n, err)
	}
}

func testClose(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	enqueue(t, s, newPending(t, "before", "sig", baseTime))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := s.Enqueue(ctx, []*store.Pending{newPending(t, "after", "sig", baseTime)}); err == nil {
		t.Errorf("enqueue after close succeeded")
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return nil }); err == nil {
		t.Errorf("update after close succeeded")
	}
	if s.Backend() == "" {
		t.Errorf("backend has no name")
	}
}
