package pipeline

import (
	"errors"
	"testing"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

func TestSubmitMany(t *testing.T) {
	forBackends(t, func(t *testing.T, pg bool) {
		e := newEnv(t, envOpts{postgres: pg})
		alice := account(t, "alice")
		a := build(t, "a", alice, message.TypePost, post("note", `{"n":1}`), "TEST", 1)
		b := build(t, "b", alice, message.TypePost, post("note", `{"n":2}`), "TEST", 2)
		known := build(t, "known", alice, message.TypePost, post("note", `{"n":3}`), "TEST", 3)
		e.ingest(known)
		forged := withEnvelope(t, build(t, "forged", alice, message.TypePost, post("note", `{"n":4}`), "TEST", 4), func(env map[string]any) {
			env["sender"] = account(t, "mallory").Address()
		})
		raws := [][]byte{a.raw, []byte(`{"not":"a message"}`), forged, known.raw, b.raw, a.raw}
		res, err := e.p.SubmitMany(e.ctx, raws, "p2p")
		if err != nil {
			t.Fatal(err)
		}
		want := []message.Status{message.StatusPending, "", message.StatusRejected, message.StatusProcessed, message.StatusPending, message.StatusPending}
		for i, r := range res {
			if r.Status != want[i] {
				t.Errorf("result %d: status %q, want %q (err %v)", i, r.Status, want[i], r.Err)
			}
		}
		var merr *message.Error
		if !errors.As(res[1].Err, &merr) {
			t.Errorf("malformed input: err %v, want a *message.Error", res[1].Err)
		}
		if message.CodeOf(res[2].Err) != message.CodeInvalidSignature {
			t.Errorf("forged input: err %v, want code %d", res[2].Err, message.CodeInvalidSignature)
		}
		e.drain()
		e.wantStatus(a, message.StatusProcessed)
		e.wantStatus(b, message.StatusProcessed)
		if _, err := e.p.SubmitMany(e.ctx, raws[:1], "chain"); err == nil {
			t.Error("an unknown origin was accepted")
		}
	})
}

// tombs is a fixed set of skeletons, as anti-entropy keeps them.
type tombs map[string]*store.Forgotten

func (t tombs) Tombstone(h string) (*store.Forgotten, bool) { sk, ok := t[h]; return sk, ok }

func skeletonOf(m *msg) *store.Forgotten {
	return &store.Forgotten{ItemHash: m.hash, Type: m.m.Type, Chain: m.m.Chain, Sender: m.m.Sender,
		Signature: m.m.Signature, ItemType: m.m.ItemType, Time: m.m.Time, Channel: m.m.Channel}
}

func TestForgetWithTombstone(t *testing.T) {
	alice, mallory := account(t, "alice"), account(t, "mallory")
	target := build(t, "target", alice, message.TypePost, post("note", `{"secret":1}`), "TEST", 1)
	tests := []struct {
		name   string
		signer *msg
		want   message.Status
	}{
		{"the sender forgets its message", build(t, "forget", alice, message.TypeForget, forget(target.hash), "TEST", 2), message.StatusProcessed},
		{"another account may not", build(t, "forget", mallory, message.TypeForget, forget(target.hash), "TEST", 2), message.StatusRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			e.p.tombs = tombs{target.hash: skeletonOf(target)}
			e.ingest(tt.signer)
			e.wantStatus(tt.signer, tt.want)
			if tt.want != message.StatusProcessed {
				return
			}
			e.wantStatus(target, message.StatusForgotten)
			if sk := e.forgotten(target); len(sk.ForgottenBy) != 1 || sk.ForgottenBy[0] != tt.signer.hash || sk.Owner != alice.Address() {
				t.Fatalf("skeleton %+v", sk)
			}
			// The target itself, arriving late, stays forgotten.
			e.ingest(target)
			e.wantStatus(target, message.StatusForgotten)
		})
	}
}
