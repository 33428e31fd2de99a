package pipeline

import (
	"fmt"
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

// outcome is the expected final state of one message.
type outcome struct {
	m      *msg
	status message.Status
	code   message.ErrorCode // when rejected
}

func processed(m *msg) outcome  { return outcome{m: m, status: message.StatusProcessed} }
func forgottenO(m *msg) outcome { return outcome{m: m, status: message.StatusForgotten} }
func rejected(m *msg, code message.ErrorCode) outcome {
	return outcome{m: m, status: message.StatusRejected, code: code}
}

func (e *env) want(outs ...outcome) {
	e.t.Helper()
	for _, o := range outs {
		if o.status == message.StatusRejected {
			e.wantRejected(o.m, o.code)
		} else {
			e.wantStatus(o.m, o.status)
		}
	}
}

// scenario ingests msgs in order (processing after each), lets retries run
// out, and checks the outcomes and any extra state.
type scenario struct {
	name  string
	msgs  []*msg
	want  []outcome
	check func(t *testing.T, e *env)
}

func runScenarios(t *testing.T, cfg Config, scs []scenario) {
	t.Helper()
	forBackends(t, func(t *testing.T, pg bool) {
		for _, sc := range scs {
			t.Run(sc.name, func(t *testing.T) {
				e := newEnv(t, envOpts{cfg: cfg, postgres: pg})
				e.ingest(sc.msgs...)
				e.settle()
				e.want(sc.want...)
				if sc.check != nil {
					sc.check(t, e)
				}
			})
		}
	})
}

func securityAggregate(t *testing.T, name string, owner message.Signer, at float64, entries string) *msg {
	t.Helper()
	return build(t, name, owner, message.TypeAggregate, aggregate(SecurityKey, `{"authorizations":`+entries+`}`), "", at)
}

func TestPostsAndAmends(t *testing.T) {
	alice, bob, carol := account(t, "alice"), account(t, "bob"), account(t, "carol")
	orig := build(t, "orig", alice, message.TypePost, post("blog", `{"v":0,"tags":["x"]}`), "ch", 0)
	a1 := build(t, "a1", alice, message.TypePost, amend(orig.hash, `{"v":1}`), "ch", 10)
	a2 := build(t, "a2", alice, message.TypePost, amend(orig.hash, `{"v":2}`), "ch", 20)
	// Two amends with the same content.time as a2: the smallest hash is latest.
	tieA := build(t, "tieA", alice, message.TypePost, amend(orig.hash, `{"v":"tieA"}`), "ch", 30)
	tieB := build(t, "tieB", alice, message.TypePost, amend(orig.hash, `{"v":"tieB"}`), "ch", 30)
	tieWinner := tieA
	if tieB.hash < tieA.hash {
		tieWinner = tieB
	}
	noRef := build(t, "noRef", alice, message.TypePost, &message.PostContent{Type: message.AmendType, Content: []byte(`{}`)}, "ch", 11)
	missing := build(t, "missing", alice, message.TypePost, amend(fileHash("nothing"), `{}`), "ch", 12)
	ofAmend := build(t, "ofAmend", alice, message.TypePost, amend(a1.hash, `{}`), "ch", 13)
	bobAmends := build(t, "bobAmends", bob, message.TypePost, amend(orig.hash, `{}`), "ch", 14)
	bobForAlice := build(t, "bobForAlice", bob, message.TypePost, owned(amend(orig.hash, `{}`), alice.Address()), "ch", 15)
	bobPostsForAlice := build(t, "bobPostsForAlice", bob, message.TypePost, owned(post("blog", `{}`), alice.Address()), "ch", 16)

	sec := securityAggregate(t, "sec", alice, -10, fmt.Sprintf(`[{"address":%q,"post_types":["blog"],"channels":["ch"]}]`, carol.Address()))
	carolPost := build(t, "carolPost", carol, message.TypePost, owned(post("blog", `{"by":"carol"}`), alice.Address()), "ch", 40)
	carolNews := build(t, "carolNews", carol, message.TypePost, owned(post("news", `{}`), alice.Address()), "ch", 41)
	carolOtherChannel := build(t, "carolOtherChannel", carol, message.TypePost, owned(post("blog", `{}`), alice.Address()), "other", 42)
	// The amend is judged against the original: a blog post on channel ch,
	// although the amend itself is sent on another channel.
	carolAmend := build(t, "carolAmend", carol, message.TypePost, owned(amend(orig.hash, `{"v":"carol"}`), alice.Address()), "elsewhere", 50)
	newsOrig := build(t, "newsOrig", alice, message.TypePost, post("news", `{}`), "ch", 1)
	carolAmendsNews := build(t, "carolAmendsNews", carol, message.TypePost, owned(amend(newsOrig.hash, `{}`), alice.Address()), "ch", 51)

	latest := func(want *msg) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			p := e.post(orig.hash)
			if p == nil {
				t.Fatal("original post row missing")
			}
			w := ""
			if want != nil {
				w = want.hash
			}
			if p.LatestAmend != w {
				t.Errorf("latest amend = %s, want %s", p.LatestAmend, w)
			}
		}
	}
	runScenarios(t, Config{MaxRetries: 2}, []scenario{
		{name: "original", msgs: []*msg{orig}, want: []outcome{processed(orig)}, check: func(t *testing.T, e *env) {
			p := e.post(orig.hash)
			if p == nil || p.Type != "blog" || p.Owner != alice.Address() || string(p.Content) != `{"v":0,"tags":["x"]}` ||
				p.Channel != "ch" || p.CreationTime != orig.time || p.Amends != "" || len(p.Tags) != 1 || p.Tags[0] != "x" {
				t.Errorf("post row = %+v", p)
			}
			latest(nil)(t, e)
		}},
		{name: "amends in order", msgs: []*msg{orig, a1, a2}, want: []outcome{processed(a1), processed(a2)}, check: func(t *testing.T, e *env) {
			latest(a2)(t, e)
			if p := e.post(a1.hash); p == nil || p.Amends != orig.hash || p.Type != message.AmendType || p.Ref != orig.hash {
				t.Errorf("amend row = %+v", p)
			}
		}},
		{name: "amends out of order", msgs: []*msg{a2, a1, orig}, want: []outcome{processed(a1), processed(a2)}, check: latest(a2)},
		{name: "an older amend does not replace the latest", msgs: []*msg{orig, a2, a1}, check: latest(a2)},
		{name: "content time tie: smallest hash", msgs: []*msg{orig, tieA, tieB}, check: latest(tieWinner)},
		{name: "content time tie, other order", msgs: []*msg{orig, tieB, tieA}, check: latest(tieWinner)},
		{name: "amend without ref: 100", msgs: []*msg{orig, noRef}, want: []outcome{rejected(noRef, message.CodePostAmendNoTarget)}},
		{name: "amend of unknown post: retried, then 101", msgs: []*msg{missing}, want: []outcome{rejected(missing, message.CodePostAmendTargetMissing)}},
		{name: "amend of an amend: 102", msgs: []*msg{orig, a1, ofAmend}, want: []outcome{rejected(ofAmend, message.CodePostAmendAmend)}, check: func(t *testing.T, e *env) {
			if e.post(ofAmend.hash) != nil {
				t.Error("rejected amend left a post row")
			}
		}},
		{name: "amend by another owner: 2", msgs: []*msg{orig, bobAmends}, want: []outcome{rejected(bobAmends, message.CodePermissionDenied)}},
		{name: "amend for the owner without delegation: 2", msgs: []*msg{orig, bobForAlice}, want: []outcome{rejected(bobForAlice, message.CodePermissionDenied)}},
		{name: "post for another owner without delegation: 2", msgs: []*msg{bobPostsForAlice}, want: []outcome{rejected(bobPostsForAlice, message.CodePermissionDenied)}},
		{name: "delegated posts", msgs: []*msg{sec, carolPost, carolNews, carolOtherChannel},
			want: []outcome{processed(carolPost), rejected(carolNews, message.CodePermissionDenied), rejected(carolOtherChannel, message.CodePermissionDenied)},
			check: func(t *testing.T, e *env) {
				if p := e.post(carolPost.hash); p == nil || p.Owner != alice.Address() {
					t.Errorf("delegated post row = %+v", p)
				}
			}},
		{name: "delegated amends are judged against the original", msgs: []*msg{sec, orig, newsOrig, carolAmend, carolAmendsNews},
			want: []outcome{processed(carolAmend), rejected(carolAmendsNews, message.CodePermissionDenied)}, check: latest(carolAmend)},
	})
}
