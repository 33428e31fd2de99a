package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// orderSet is a set of interdependent messages from several owners, and what
// the digest looks at.
type orderSet struct {
	seed  []*msg // processed first, in order, in every run (delegations)
	msgs  []*msg
	aggs  [][2]string // (owner, key) pairs to look at
	tags  []string
	files []string
}

func newOrderSet(t *testing.T) *orderSet {
	alice, bob, carol := account(t, "alice"), account(t, "bob"), account(t, "carol")
	A, B := alice.Address(), bob.Address()
	s := &orderSet{}
	add := func(m *msg) *msg { s.msgs = append(s.msgs, m); return m }
	P, G, S, F := message.TypePost, message.TypeAggregate, message.TypeStore, message.TypeForget

	// Carol may post blog posts and write the profile aggregate for Alice.
	s.seed = append(s.seed, securityAggregate(t, "security", alice, -100, fmt.Sprintf(
		`[{"address":%q,"types":["POST"],"post_types":["blog"]},{"address":%q,"types":["AGGREGATE"],"aggregate_keys":["profile"]}]`,
		carol.Address(), carol.Address())))

	// Posts and amends, a tie on content.time, bad amends.
	pA := add(build(t, "pA", alice, P, post("blog", `{"v":0,"tags":["t"]}`), "blog", 10))
	pA1 := add(build(t, "pA1", alice, P, amend(pA.hash, `{"v":1}`), "blog", 20))
	pA2 := add(build(t, "pA2", alice, P, amend(pA.hash, `{"v":2}`), "blog", 30))
	pA3 := add(build(t, "pA3", alice, P, amend(pA.hash, `{"v":3}`), "blog", 30))
	winner := pA2
	if pA3.hash < pA2.hash {
		winner = pA3
	}
	pB := add(build(t, "pB", bob, P, post("note", `{"b":0}`), "", 12))
	add(build(t, "pB1", bob, P, amend(pB.hash, `{"b":1}`), "", 22))
	add(build(t, "pC", carol, P, owned(post("blog", `{"by":"carol"}`), A), "blog", 14))
	add(build(t, "pCnews", carol, P, owned(post("news", `{}`), A), "blog", 15))
	add(build(t, "bobAmendsA", bob, P, amend(pA.hash, `{}`), "", 25))
	add(build(t, "amendOfAmend", alice, P, amend(pA1.hash, `{}`), "", 35))
	pD := add(build(t, "pD", alice, P, post("blog", `{"d":0}`), "", 16))
	add(build(t, "pD1", alice, P, amend(pD.hash, `{"d":1}`), "", 40))
	add(build(t, "fD", alice, F, forget(pD.hash), "", 50))
	add(build(t, "pD2", alice, P, amend(pD.hash, `{"d":2}`), "", 60)) // after the forget
	add(build(t, "fB", bob, F, forget(pB.hash), "", 55))
	fLatest := add(build(t, "fLatest", alice, F, forget(winner.hash), "", 45))
	add(build(t, "bobForgetsA", bob, F, forget(pA.hash), "", 56))
	add(build(t, "fForget", alice, F, forget(fLatest.hash), "", 70))
	add(build(t, "fMissing", alice, F, forget(fileHash("never sent")), "", 71))

	// Aggregates with overlapping keys, out of order, a tie, a delegate, a forget.
	add(build(t, "e1", alice, G, aggregate("profile", `{"a":1,"b":1}`), "", 10))
	e2 := add(build(t, "e2", alice, G, aggregate("profile", `{"b":2,"c":2}`), "", 20))
	add(build(t, "e3", alice, G, aggregate("profile", `{"a":3}`), "", 30))
	e4 := add(build(t, "e4", alice, G, aggregate("profile", `{"a":4,"d":4}`), "", 30))
	add(build(t, "e5", carol, G, owned(aggregate("profile", `{"c":"carol"}`), A), "", 25))
	add(build(t, "e5bad", carol, G, owned(aggregate("settings", `{"c":"carol"}`), A), "", 26))
	add(build(t, "e6", bob, G, aggregate("profile", `{"a":"b6","x":6}`), "", 11))
	add(build(t, "e7", bob, G, aggregate("profile", `{"x":7}`), "", 21))
	add(build(t, "e8", alice, G, aggregate("settings", `{"s":8}`), "", 13))
	add(build(t, "fE2", alice, F, forget(e2.hash), "", 40))
	add(build(t, "bobForgetsE4", bob, F, forget(e4.hash), "", 41))
	s.aggs = [][2]string{{A, "profile"}, {A, "settings"}, {B, "profile"}, {A, SecurityKey}}

	// Stores: versions by hash ref, user refs, a forgotten version.
	s1 := add(build(t, "s1", alice, S, storeContent("f1", ""), "", 10))
	add(build(t, "s2", alice, S, storeContent("f2", s1.hash), "", 20))
	s3 := add(build(t, "s3", alice, S, storeContent("f3", s1.hash), "", 15))
	add(build(t, "u1", alice, S, storeContent("u1", "doc"), "", 30))
	add(build(t, "u2", alice, S, storeContent("u2", "doc"), "", 31))
	add(build(t, "fS3", alice, F, forget(s3.hash), "", 50))
	rt := add(build(t, "rt", alice, S, storeContent("rt", ""), "", 11))
	s.tags = []string{s1.hash, rt.hash, A + "/doc"}
	s.files = []string{"f1", "f2", "f3", "u1", "u2", "rt"}

	// VMs: an update chain and its forget, the update possibly after the forget.
	prog := add(build(t, "prog", alice, message.TypeProgram, program(s1.hash, rt.hash, false, true, ""), "", 30))
	add(build(t, "progU", alice, message.TypeProgram, program(s1.hash, rt.hash, true, true, prog.hash), "", 40))
	add(build(t, "fProg", alice, F, forget(prog.hash), "", 60))
	return s
}

// digest renders every piece of derived state the set can touch, leaving out
// node-local times (reception, grace pins).
func (s *orderSet) digest(e *env) string {
	e.t.Helper()
	var lines []string
	addf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	e.read(func(tx store.Tx) error {
		ctx := e.ctx
		for _, m := range append(slices.Clone(s.seed), s.msgs...) {
			st, err := tx.GetStatus(ctx, m.hash)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			line := fmt.Sprintf("%s status=%s", m.name, st.Status)
			switch st.Status {
			case message.StatusRejected:
				r, err := e.store.GetRejected(ctx, m.hash)
				if err != nil {
					return err
				}
				line += fmt.Sprintf(" code=%d details=%s", r.ErrorCode, r.Details)
			case message.StatusForgotten:
				f, err := tx.GetForgotten(ctx, m.hash)
				if err != nil {
					return err
				}
				line += fmt.Sprintf(" by=%v at=%v owner=%s", f.ForgottenBy, f.ForgottenAt, f.Owner)
			case message.StatusProcessed:
				sm, err := tx.GetMessage(ctx, m.hash)
				if err != nil {
					return err
				}
				line += fmt.Sprintf(" owner=%s tags=%v key=%s ref=%s", sm.Owner, sm.Tags, sm.ContentKey, sm.ContentRef)
			}
			lines = append(lines, line)
			if p, err := tx.GetPost(ctx, m.hash); err == nil {
				addf("post %s type=%s amends=%s latest=%s content=%s tags=%v", m.name, p.Type, p.Amends, p.LatestAmend, p.Content, p.Tags)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if el, err := tx.GetAggregateElement(ctx, m.hash); err == nil {
				addf("element %s %s/%s %s", m.name, el.Owner, el.Key, el.Content)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if vm, err := tx.GetVM(ctx, m.hash); err == nil {
				addf("vm %s replaces=%s refs=%v", m.name, vm.Replaces, vm.Refs)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		for _, k := range s.aggs {
			a, err := tx.GetAggregate(ctx, k[0], k[1])
			if errors.Is(err, store.ErrNotFound) {
				addf("aggregate %s/%s none", k[0], k[1])
				continue
			}
			if err != nil {
				return err
			}
			addf("aggregate %s/%s %s created=%v updated=%v first=%s last=%s dirty=%v", k[0], k[1], a.Content,
				a.CreationTime, a.LastUpdateTime, a.OriginalHash, a.LastRevisionHash, a.Dirty)
		}
		for _, tag := range s.tags {
			ft, err := tx.GetFileTag(ctx, tag)
			if errors.Is(err, store.ErrNotFound) {
				addf("tag %s none", tag)
				continue
			}
			if err != nil {
				return err
			}
			addf("tag %s file=%s owner=%s updated=%v", tag, ft.FileHash, ft.Owner, ft.LastUpdated)
		}
		for _, f := range s.files {
			n, err := tx.CountFilePins(ctx, fileHash(f))
			if err != nil {
				return err
			}
			addf("pins %s %d", f, n)
		}
		return nil
	})
	n, err := e.store.PendingCount(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	addf("pending %d", n)
	return strings.Join(lines, "\n")
}

// orderEnv is an environment whose clock is before every message, so queue
// order is arrival order (NextAttempt = reception time), and whose jitter is
// the full backoff, so nothing is retried before the clock moves.
func orderEnv(t *testing.T, batch int, pg bool) *env {
	e := newEnv(t, envOpts{start: time.Unix(baseTime-1000, 0), cfg: Config{BatchSize: batch, MaxRetries: 10}, postgres: pg})
	e.p.rnd = func(n int64) int64 { return n - 1 }
	return e
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
		}
	}
	return strings.Join(out, "\n")
}

// TestOrderIndependence ingests the set in many random orders, with random
// batching, and concurrently, and checks that each run ends in the state of
// sequential processing in content.time order.
func TestOrderIndependence(t *testing.T) {
	set := newOrderSet(t)
	forBackends(t, func(t *testing.T, pg bool) { testOrderIndependence(t, set, pg) })
}

func testOrderIndependence(t *testing.T, set *orderSet, pg bool) {
	byTime := slices.Clone(set.msgs)
	sort.SliceStable(byTime, func(i, j int) bool { return byTime[i].time < byTime[j].time })

	ref := orderEnv(t, 256, pg)
	ref.ingest(set.seed...)
	ref.ingest(byTime...)
	ref.settle()
	want := set.digest(ref)
	// The reference itself must show the interesting outcomes, or the test
	// proves little.
	for _, frag := range []string{
		"pD2 status=forgotten", "pD1 status=forgotten", "pB1 status=forgotten", "progU status=forgotten",
		"amendOfAmend status=rejected code=102", "bobAmendsA status=rejected code=2", "fForget status=rejected code=502",
		"fMissing status=rejected code=501", "bobForgetsA status=rejected code=2", "pCnews status=rejected code=2",
		"e5bad status=rejected code=2", "pC status=processed", "e5 status=processed", "pending 0",
	} {
		if !strings.Contains(want, frag) {
			t.Fatalf("reference digest lacks %q:\n%s", frag, want)
		}
	}

	rng := rand.New(rand.NewPCG(2024, 11))
	runs := 12
	if testing.Short() || pg {
		runs = 4
	}
	for run := range runs {
		order := rng.Perm(len(set.msgs))
		batch := []int{1, 3, 256}[run%3]
		drainEvery := rng.IntN(4) // 0: submit everything first
		t.Run(fmt.Sprintf("random/%d", run), func(t *testing.T) {
			e := orderEnv(t, batch, pg)
			e.ingest(set.seed...)
			for i, idx := range order {
				e.submit(set.msgs[idx])
				if drainEvery > 0 && i%drainEvery == 0 {
					e.drain()
				}
			}
			e.settle()
			if got := set.digest(e); got != want {
				t.Errorf("order %v (batch %d, drain every %d) diverges from sequential processing:\n%s", order, batch, drainEvery, diffLines(want, got))
			}
		})
	}
	for run := range 2 {
		t.Run(fmt.Sprintf("concurrent/%d", run), func(t *testing.T) {
			e := orderEnv(t, 4, pg)
			e.ingest(set.seed...)
			ctx, cancel := context.WithCancel(e.ctx)
			done := make(chan error, 1)
			go func() { done <- e.p.Run(ctx) }()
			order := rng.Perm(len(set.msgs))
			const workers = 4
			var wg sync.WaitGroup
			errs := make(chan error, len(order))
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(order); i += workers {
						if _, err := e.p.Submit(e.ctx, set.msgs[order[i]].raw, SubmitOptions{Origin: "p2p"}); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			e.settle()
			if got := set.digest(e); got != want {
				t.Errorf("concurrent ingestion diverges from sequential processing:\n%s", diffLines(want, got))
			}
		})
	}
}
