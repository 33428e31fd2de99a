package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

func TestForget(t *testing.T) {
	alice, bob, carol := account(t, "alice"), account(t, "bob"), account(t, "carol")
	orig := build(t, "orig", alice, message.TypePost, post("blog", `{"v":0}`), "ch", 0)
	a1 := build(t, "a1", alice, message.TypePost, amend(orig.hash, `{"v":1}`), "ch", 10)
	a2 := build(t, "a2", alice, message.TypePost, amend(orig.hash, `{"v":2}`), "ch", 20)
	news := build(t, "news", alice, message.TypePost, post("news", `{}`), "ch", 1)
	fOrig := build(t, "fOrig", alice, message.TypeForget, forget(orig.hash), "", 100)
	fA2 := build(t, "fA2", alice, message.TypeForget, forget(a2.hash), "", 101)
	fAmends := build(t, "fAmends", alice, message.TypeForget, forget(a1.hash, a2.hash), "", 102)
	fNone := build(t, "fNone", alice, message.TypeForget, forget(), "", 103)
	unknownHash := fileHash("never sent")
	fUnknown := build(t, "fUnknown", alice, message.TypeForget, forget(unknownHash), "", 104)
	fForget := build(t, "fForget", alice, message.TypeForget, forget(fOrig.hash), "", 105)
	bobForgets := build(t, "bobForgets", bob, message.TypeForget, forget(orig.hash), "", 106)
	bobForgetsAndMissing := build(t, "bobForgetsAndMissing", bob, message.TypeForget, forget(unknownHash, orig.hash), "", 106.5)
	fOrigAgain := build(t, "fOrigAgain", alice, message.TypeForget, forget(orig.hash), "", 107)

	sec := securityAggregate(t, "sec", alice, -10, fmt.Sprintf(`[{"address":%q,"types":["POST"],"post_types":["blog"]}]`, carol.Address()))
	carolForgetsBlog := build(t, "carolForgetsBlog", carol, message.TypeForget, forget(orig.hash), "", 110)
	carolForgetsNews := build(t, "carolForgetsNews", carol, message.TypeForget, forget(news.hash), "", 111)
	// An amend is forgotten as it was created: judged against its blog original.
	carolForgetsAmend := build(t, "carolForgetsAmend", carol, message.TypeForget, forget(a1.hash), "", 112)

	key := fileHash("aggregate key") // FORGET aggregates must look like item hashes
	e1 := build(t, "e1", alice, message.TypeAggregate, aggregate(key, `{"a":1,"b":1}`), "", 30)
	e2 := build(t, "e2", alice, message.TypeAggregate, aggregate(key, `{"b":2}`), "", 31)
	bobE := build(t, "bobE", bob, message.TypeAggregate, aggregate(key, `{"bob":1}`), "", 32)
	fE2 := build(t, "fE2", alice, message.TypeForget, forget(e2.hash), "", 120)
	fE1E2 := build(t, "fE1E2", alice, message.TypeForget, forget(e1.hash, e2.hash), "", 121)
	fKey := build(t, "fKey", alice, message.TypeForget, &message.ForgetContent{Hashes: []string{}, Aggregates: []string{key}}, "", 122)
	fKeyMissing := build(t, "fKeyMissing", alice, message.TypeForget, &message.ForgetContent{Hashes: []string{}, Aggregates: []string{fileHash("no key")}}, "", 123)

	s1 := build(t, "s1", alice, message.TypeStore, storeContent("f1", ""), "", 40)
	s2 := build(t, "s2", alice, message.TypeStore, storeContent("f2", s1.hash), "", 41)
	fS1 := build(t, "fS1", alice, message.TypeForget, forget(s1.hash), "", 130)
	fS2 := build(t, "fS2", alice, message.TypeForget, forget(s2.hash), "", 131)
	rt := build(t, "rt", alice, message.TypeStore, storeContent("rt", ""), "", 42)
	prog := build(t, "prog", alice, message.TypeProgram, program(s1.hash, rt.hash, false, true, ""), "", 50)
	progUpdate := build(t, "progUpdate", alice, message.TypeProgram, program(s1.hash, rt.hash, false, true, prog.hash), "", 51)
	fProg := build(t, "fProg", alice, message.TypeForget, forget(prog.hash), "", 140)
	inst := build(t, "inst", alice, message.TypeInstance, instance(rt.hash, 10), "", 52)
	fInst := build(t, "fInst", alice, message.TypeForget, forget(inst.hash), "", 141)
	fRt := build(t, "fRt", alice, message.TypeForget, forget(rt.hash), "", 142)

	latest := func(want *msg) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			t.Helper()
			p := e.post(orig.hash)
			w := ""
			if want != nil {
				w = want.hash
			}
			if p == nil || p.LatestAmend != w {
				t.Errorf("original = %+v, want latest amend %q", p, w)
			}
		}
	}
	forgottenBy := func(m *msg, by ...*msg) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			t.Helper()
			sk := e.forgotten(m)
			if sk == nil {
				t.Fatalf("%s: no forgotten record", m.name)
			}
			var want []string
			for _, b := range by {
				want = append(want, b.hash)
			}
			if !slices.Equal(sk.ForgottenBy, want) || sk.ForgottenAt != by[0].time {
				t.Errorf("%s: forgotten_by %v at %v, want %v at %v", m.name, sk.ForgottenBy, sk.ForgottenAt, want, by[0].time)
			}
		}
	}
	all := func(checks ...func(t *testing.T, e *env)) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			for _, c := range checks {
				c(t, e)
			}
		}
	}
	agg := func(owner, content string) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			t.Helper()
			a := e.aggregate(owner, key)
			switch {
			case content == "" && a != nil:
				t.Errorf("aggregate still there: %s", a.Content)
			case content != "" && (a == nil || string(a.Content) != content):
				t.Errorf("aggregate = %+v, want %s", a, content)
			}
		}
	}
	tag := func(file string) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			t.Helper()
			ft := e.fileTag(s1.hash)
			switch {
			case file == "" && ft != nil:
				t.Errorf("tag still there: %+v", ft)
			case file != "" && (ft == nil || ft.FileHash != fileHash(file)):
				t.Errorf("tag = %+v, want file %s", ft, file)
			}
		}
	}
	// pins checks a file's pin count. A forgotten STORE's message pin is
	// deleted, so a count of 1 for its file is the grace-period pin.
	pins := func(file string, n int) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			t.Helper()
			got, err := e.store.CountFilePins(e.ctx, fileHash(file))
			if err != nil || got != n {
				t.Errorf("pins of %s = %d (%v), want %d", file, got, err, n)
			}
		}
	}

	runScenarios(t, Config{MaxRetries: 2}, []scenario{
		{name: "no target: 500", msgs: []*msg{fNone}, want: []outcome{rejected(fNone, message.CodeForgetNoTarget)}},
		{name: "unknown target: 501", msgs: []*msg{fUnknown}, want: []outcome{rejected(fUnknown, message.CodeForgetTargetNotFound)}, check: func(t *testing.T, e *env) {
			r, _ := e.store.GetRejected(e.ctx, fUnknown.hash)
			if r == nil || string(r.Details) != `[{"message":"`+unknownHash+`"}]` {
				t.Errorf("details = %+v", r)
			}
		}},
		{name: "target arrives after the forget", msgs: []*msg{fOrig, orig}, want: []outcome{processed(fOrig), forgottenO(orig)}, check: forgottenBy(orig, fOrig)},
		{name: "forget a forget: 502", msgs: []*msg{orig, fOrig, fForget}, want: []outcome{rejected(fForget, message.CodeForgetForget)}},
		{name: "forget another's post: 2", msgs: []*msg{orig, bobForgets}, want: []outcome{rejected(bobForgets, message.CodePermissionDenied), processed(orig)}},
		{name: "a refusal wins over a missing target", msgs: []*msg{orig, bobForgetsAndMissing}, want: []outcome{rejected(bobForgetsAndMissing, message.CodePermissionDenied)},
			check: func(t *testing.T, e *env) {
				// Rejected on its first attempt, not after retries.
				if r, _ := e.store.GetRejected(e.ctx, bobForgetsAndMissing.hash); r == nil || r.Details != nil {
					t.Errorf("rejection = %+v", r)
				}
			}},
		{name: "delegated forget: can forget what it could create", msgs: []*msg{sec, orig, news, a1, carolForgetsBlog, carolForgetsNews, carolForgetsAmend},
			want: []outcome{processed(carolForgetsBlog), forgottenO(orig), rejected(carolForgetsNews, message.CodePermissionDenied), processed(news)}},
		{name: "delegated forget of an amend", msgs: []*msg{sec, orig, a1, carolForgetsAmend}, want: []outcome{processed(carolForgetsAmend), forgottenO(a1)}, check: latest(nil)},
		{name: "original: amends cascade", msgs: []*msg{orig, a1, a2, fOrig}, want: []outcome{forgottenO(orig), forgottenO(a1), forgottenO(a2)},
			check: all(forgottenBy(orig, fOrig), forgottenBy(a1, fOrig), forgottenBy(a2, fOrig), func(t *testing.T, e *env) {
				if e.post(orig.hash) != nil || e.post(a1.hash) != nil {
					t.Error("post rows left")
				}
				if _, err := e.store.GetMessage(e.ctx, orig.hash); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("message row left: %v", err)
				}
				sk := e.forgotten(orig)
				if sk.Type != message.TypePost || sk.Owner != alice.Address() || sk.Sender != alice.Address() || sk.Chain != message.ChainETH ||
					sk.PaymentType != "hold" || sk.Size != int64(len(orig.content)) || sk.Signature != orig.m.Signature || sk.Channel != "ch" {
					t.Errorf("skeleton = %+v", sk)
				}
			})},
		{name: "latest amend: recomputed", msgs: []*msg{orig, a1, a2, fA2}, want: []outcome{forgottenO(a2), processed(a1)}, check: latest(a1)},
		{name: "every amend: none left", msgs: []*msg{orig, a1, a2, fAmends}, want: []outcome{forgottenO(a1), forgottenO(a2)}, check: latest(nil)},
		{name: "amend arriving after its original was forgotten", msgs: []*msg{orig, a1, fOrig, a2}, want: []outcome{forgottenO(a2)},
			check: all(forgottenBy(a2, fOrig), func(t *testing.T, e *env) {
				if e.post(a2.hash) != nil {
					t.Error("post row for an amend forgotten on arrival")
				}
			})},
		{name: "already forgotten: forgotten_by appended", msgs: []*msg{orig, fOrig, fOrigAgain}, want: []outcome{processed(fOrigAgain)}, check: forgottenBy(orig, fOrig, fOrigAgain)},
		{name: "aggregate element: recomputed", msgs: []*msg{e1, e2, fE2}, want: []outcome{forgottenO(e2)}, check: agg(alice.Address(), `{"a":1,"b":1}`)},
		{name: "every element: aggregate deleted", msgs: []*msg{e1, e2, bobE, fE1E2}, check: all(agg(alice.Address(), ""), agg(bob.Address(), `{"bob":1}`))},
		{name: "aggregate key", msgs: []*msg{e1, e2, bobE, fKey}, want: []outcome{processed(fKey), forgottenO(e1), forgottenO(e2), processed(bobE)},
			check: all(agg(alice.Address(), ""), agg(bob.Address(), `{"bob":1}`))},
		{name: "aggregate key missing: 501", msgs: []*msg{fKeyMissing}, want: []outcome{rejected(fKeyMissing, message.CodeForgetTargetNotFound)}, check: func(t *testing.T, e *env) {
			r, _ := e.store.GetRejected(e.ctx, fKeyMissing.hash)
			if r == nil || string(r.Details) != `[{"aggregate":"`+fileHash("no key")+`"}]` {
				t.Errorf("details = %+v", r)
			}
		}},
		{name: "store update: tag back to the original", msgs: []*msg{s1, s2, fS2}, want: []outcome{forgottenO(s2)},
			check: all(tag("f1"), pins("f2", 1), pins("f1", 1))},
		{name: "store original: tag stays on the update", msgs: []*msg{s1, s2, fS1}, want: []outcome{forgottenO(s1)}, check: all(tag("f2"), pins("f1", 1))},
		{name: "only store: tag deleted, grace pin", msgs: []*msg{s1, fS1}, check: all(tag(""), pins("f1", 1), func(t *testing.T, e *env) {
			e.read(func(tx store.Tx) error {
				if _, err := tx.LatestPinForTag(e.ctx, s1.hash); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("message pin left: %v", err)
				}
				return nil
			})
		})},
		{name: "store used by a VM: 503", msgs: []*msg{s1, rt, prog, fS1}, want: []outcome{rejected(fS1, message.CodeForgetNotAllowed), processed(s1)}},
		{name: "vm: updates cascade", msgs: []*msg{s1, rt, prog, progUpdate, fProg}, want: []outcome{forgottenO(prog), forgottenO(progUpdate)}, check: func(t *testing.T, e *env) {
			e.read(func(tx store.Tx) error {
				for _, h := range []string{prog.hash, progUpdate.hash} {
					if _, err := tx.GetVM(e.ctx, h); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("vm row %s left: %v", h, err)
					}
				}
				return nil
			})
		}},
		{name: "vm update arriving after the VM was forgotten", msgs: []*msg{s1, rt, prog, fProg, progUpdate}, want: []outcome{forgottenO(progUpdate)}, check: forgottenBy(progUpdate, fProg)},
		{name: "instance, then the store it used", msgs: []*msg{rt, inst, fRt, fInst, fRt},
			want: []outcome{forgottenO(inst), processed(fInst), forgottenO(rt)}},
		{name: "store freed by the VM's forget", msgs: []*msg{s1, rt, prog, fProg, fS1}, want: []outcome{processed(fS1), forgottenO(s1)}},
	})
}

// TestForgetNonInline: forgetting a message whose content was fetched drops its
// content pin and keeps the content file under a grace-period pin.
func TestForgetNonInline(t *testing.T) {
	alice := account(t, "alice")
	big := stored(t, "big", alice, message.TypePost, post("x", `{"stored":true}`), 0)
	f := build(t, "f", alice, message.TypeForget, forget(big.hash), "", 1)
	forBackends(t, func(t *testing.T, pg bool) {
		e := newEnv(t, envOpts{fetcher: true, postgres: pg})
		e.fetch.put(big.hash, big.content)
		e.ingest(big, f)
		e.want(forgottenO(big), processed(f))
		if n, err := e.store.CountFilePins(e.ctx, big.hash); err != nil || n != 1 {
			t.Errorf("pins of the content = %d (%v), want the grace pin", n, err)
		}
		if sk := e.forgotten(big); sk == nil || sk.ItemType != message.ItemStorage || sk.Size != int64(len(big.content)) {
			t.Errorf("skeleton %+v", sk)
		}
	})
}

// TestForgetGracePin: a FORGET that removes a file's last pin leaves a
// grace-period pin that expires Config.GracePeriod after the FORGET.
func TestForgetGracePin(t *testing.T) {
	alice := account(t, "alice")
	s1 := build(t, "s1", alice, message.TypeStore, storeContent("f1", ""), "", 0)
	f := build(t, "f", alice, message.TypeForget, forget(s1.hash), "", 1)
	forBackends(t, func(t *testing.T, pg bool) {
		e := newEnv(t, envOpts{postgres: pg, cfg: Config{GracePeriod: 2 * time.Hour}})
		e.ingest(s1, f)
		e.want(forgottenO(s1), processed(f))
		forgetAt := e.clock.Now()
		e.read(func(tx store.Tx) error {
			for _, c := range []struct {
				at   time.Time
				want int
			}{{forgetAt.Add(2 * time.Hour), 0}, {forgetAt.Add(2*time.Hour + time.Nanosecond), 1}} {
				n, err := tx.ExpireGracePins(e.ctx, c.at)
				if err != nil {
					return err
				}
				if n != c.want {
					t.Errorf("grace pins expired at %v = %d, want %d", c.at.Sub(forgetAt), n, c.want)
				}
			}
			return nil
		})
	})
}
