package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// testSyncItems checks the anti-entropy listing: both tables merged in
// (time, item_hash) order, exact float times, keyset pages, bad limits.
func testSyncItems(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)

	got, err := s.SyncItems(ctx, nil, 10)
	noErr(t, err, "sync items of an empty store")
	if len(got) != 0 {
		t.Fatalf("empty store: %d items", len(got))
	}

	// Times with ties and digits a decimal round trip could lose.
	times := []string{"1700000000.1", "1700000000.1", "1700000000.30000001", "1712345678.9876543", "1.5e9",
		"1700000000", "1700000000.1", "1600000000.000001", "1700000000.30000001"}
	var want []store.SyncKey
	var live []*store.Message
	for i, tt := range times {
		status := message.StatusProcessed
		if i%3 == 2 {
			status = message.StatusRemoving
		}
		m := newMessage(t, fmt.Sprint("sync", i), msgOpts{timeText: tt, status: status})
		live = append(live, m)
		want = append(want, store.SyncKey{Time: m.Time.Seconds(), ItemHash: m.ItemHash})
	}
	insert(t, s, live...)
	forgottenTimes := []string{"1700000000.1", "1400000000.5", "1800000000.25", "1712345678.9876543"}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, tt := range forgottenTimes {
			f := &store.Forgotten{ItemHash: hashOf(fmt.Sprint("gone", i)), Type: message.TypePost, Chain: message.ChainETH,
				Sender: "0xS", Signature: "0xsig", ItemType: message.ItemInline, Time: mustTime(t, tt), Owner: "0xS",
				ForgottenBy: []string{hashOf("forget")}, ForgottenAt: 1900000000}
			if err := tx.PutForgotten(ctx, f); err != nil {
				return err
			}
			want = append(want, store.SyncKey{Time: f.Time.Seconds(), ItemHash: f.ItemHash, Forgotten: true})
		}
		// Node-local states are not in the set.
		if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: hashOf("pending"), Status: message.StatusPending, ReceptionTime: baseTime}); err != nil {
			return err
		}
		return tx.PutRejected(ctx, &store.Rejected{ItemHash: hashOf("rejected"), Message: []byte(`{}`), ErrorCode: 1, ReceptionTime: baseTime})
	})
	slices.SortFunc(want, func(a, b store.SyncKey) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})

	all, err := s.SyncItems(ctx, nil, store.MaxSyncItems)
	noErr(t, err, "sync items")
	sameKeys(t, all, want, "whole set")

	for _, limit := range []int{1, 2, 3, 5} {
		var pages []store.SyncKey
		var after *store.SyncKey
		for range len(want) + 2 {
			page, err := s.SyncItems(ctx, after, limit)
			noErr(t, err, "sync items page")
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			pages = append(pages, page...)
			after = &page[len(page)-1]
		}
		sameKeys(t, pages, want, fmt.Sprintf("pages of %d", limit))
	}

	// A key that is not in the set starts the listing after its position.
	mid := store.SyncKey{Time: mustTime(t, "1700000000.1").Seconds(), ItemHash: strings.Repeat("f", 64)}
	rest, err := s.SyncItems(ctx, &mid, store.MaxSyncItems)
	noErr(t, err, "sync items after an absent key")
	var wantRest []store.SyncKey
	for _, k := range want {
		if mid.Less(k) {
			wantRest = append(wantRest, k)
		}
	}
	sameKeys(t, rest, wantRest, "after an absent key")

	for _, c := range []struct {
		name  string
		after *store.SyncKey
		limit int
	}{
		{"zero limit", nil, 0},
		{"negative limit", nil, -1},
		{"limit over the maximum", nil, store.MaxSyncItems + 1},
		{"NaN time", &store.SyncKey{Time: math.NaN()}, 10},
		{"infinite time", &store.SyncKey{Time: math.Inf(1)}, 10},
	} {
		if _, err := s.SyncItems(ctx, c.after, c.limit); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// sameKeys fails unless got equals want, times compared bit for bit.
func sameKeys(t *testing.T, got, want []store.SyncKey, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d items, want %d\n got %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i := range want {
		if math.Float64bits(got[i].Time) != math.Float64bits(want[i].Time) || got[i].ItemHash != want[i].ItemHash ||
			got[i].Forgotten != want[i].Forgotten {
			t.Errorf("%s: item %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// DigestWrite is one write of DigestFixture. The writes are independent: any
// order of them, each in its own transaction, leaves the same state.
type DigestWrite struct {
	Name string
	Fn   func(ctx context.Context, tx store.Tx) error
}

// Digest fixture hashes and counts.
var (
	fxOriginal = hashOf("fx-original")
	fxAmend1   = hashOf("fx-amend-1")
	fxAmend2   = hashOf("fx-amend-2")
	fxLone     = hashOf("fx-lone-post")
	fxElem     = []string{hashOf("fx-elem-0"), hashOf("fx-elem-1"), hashOf("fx-elem-2")}
	fxDirty    = []string{hashOf("fx-dirty-0"), hashOf("fx-dirty-1")}
	fxStore    = hashOf("fx-store")
	fxFile     = hashOf("fx-file")
	fxVM       = hashOf("fx-vm")
	fxVM2      = hashOf("fx-vm-2")
)

// fxCounts are the row counts of each section after DigestFixture.
var fxCounts = map[string]int64{
	store.DigestStatuses: 4, store.DigestAggregates: 2, store.DigestPosts: 2,
	store.DigestPins: 2, store.DigestTags: 1, store.DigestVMs: 2,
}

// DigestFixture returns writes touching every digest section, with node-local
// rows (pending and rejected statuses, a grace period pin) the digest ignores.
func DigestFixture() []DigestWrite {
	status := func(label string, st message.Status) DigestWrite {
		return DigestWrite{"status " + label, func(ctx context.Context, tx store.Tx) error {
			return tx.SetStatus(ctx, store.StatusRecord{ItemHash: hashOf(label), Status: st, ReceptionTime: baseTime})
		}}
	}
	element := func(hash, owner, key, content string, created float64) DigestWrite {
		return DigestWrite{"element " + hash[:8], func(ctx context.Context, tx store.Tx) error {
			return tx.InsertAggregateElement(ctx, &store.AggregateElement{ItemHash: hash, Key: key, Owner: owner,
				Content: []byte(content), CreationTime: created})
		}}
	}
	pin := func(typ, item string, grace bool) DigestWrite {
		return DigestWrite{"pin " + typ, func(ctx context.Context, tx store.Tx) error {
			p := &store.FilePin{FileHash: fxFile, Type: typ, Owner: "0xA", ItemHash: item, Created: 1700000100.25}
			if grace {
				at := baseTime
				p.DeleteBy = &at
			}
			return tx.InsertFilePin(ctx, p)
		}}
	}
	return []DigestWrite{
		status("s-processed", message.StatusProcessed),
		status("s-removing", message.StatusRemoving),
		status("s-removed", message.StatusRemoved),
		status("s-forgotten", message.StatusForgotten),
		status("s-pending", message.StatusPending),
		status("s-rejected", message.StatusRejected),
		// The compacted aggregate (0xA, profile) of three elements.
		element(fxElem[0], "0xA", "profile", `{"name":"a","n":1.50,"nested":{"y":1,"x":[1,2]}}`, 1700000001.1),
		element(fxElem[1], "0xA", "profile", `{"n":2,"extra":"é<>&"}`, 1700000002.2),
		element(fxElem[2], "0xA", "profile", `{"name":"c"}`, 1700000003.3),
		{"aggregate profile", func(ctx context.Context, tx store.Tx) error {
			return tx.PutAggregate(ctx, &store.Aggregate{Key: "profile", Owner: "0xA",
				Content:      []byte(`{"name":"c","n":2,"nested":{"y":1,"x":[1,2]},"extra":"é<>&"}`),
				CreationTime: 1700000001.1, LastUpdateTime: 1700000003.3, OriginalHash: fxElem[0], LastRevisionHash: fxElem[2]})
		}},
		// The aggregate (0xB, settings), stored clean.
		element(fxDirty[0], "0xB", "settings", `{"theme":"dark","size":10}`, 1700000010),
		element(fxDirty[1], "0xB", "settings", `{"size":12}`, 1700000011),
		{"aggregate settings", func(ctx context.Context, tx store.Tx) error {
			return tx.PutAggregate(ctx, &store.Aggregate{Key: "settings", Owner: "0xB", Content: []byte(`{"theme":"dark","size":12}`),
				CreationTime: 1700000010, LastUpdateTime: 1700000011, OriginalHash: fxDirty[0], LastRevisionHash: fxDirty[1]})
		}},
		{"posts", func(ctx context.Context, tx store.Tx) error {
			for _, p := range []*store.Post{
				{ItemHash: fxOriginal, Owner: "0xA", Type: "blog", Content: []byte(`{"v":0}`), CreationTime: 1700000020},
				{ItemHash: fxAmend1, Owner: "0xA", Type: "amend", Ref: fxOriginal, Amends: fxOriginal, Content: []byte(`{"v":1}`), CreationTime: 1700000021},
				{ItemHash: fxAmend2, Owner: "0xA", Type: "amend", Ref: fxOriginal, Amends: fxOriginal, Content: []byte(`{"v":2}`), CreationTime: 1700000022},
			} {
				if err := tx.InsertPost(ctx, p); err != nil {
					return err
				}
			}
			return tx.SetLatestAmend(ctx, fxOriginal, fxAmend2)
		}},
		{"lone post", func(ctx context.Context, tx store.Tx) error {
			return tx.InsertPost(ctx, &store.Post{ItemHash: fxLone, Owner: "0xB", Type: "chat", Content: []byte(`{}`), CreationTime: 1700000030})
		}},
		pin(store.PinMessage, fxStore, false),
		pin(store.PinContent, fxStore, false),
		pin(store.PinGracePeriod, "", true),
		{"tag", func(ctx context.Context, tx store.Tx) error {
			return tx.PutFileTag(ctx, &store.FileTag{Tag: "0xA/ref", Owner: "0xA", FileHash: fxFile, LastUpdated: 1700000100.25})
		}},
		{"vm", func(ctx context.Context, tx store.Tx) error {
			return tx.InsertVM(ctx, &store.VM{ItemHash: fxVM, Owner: "0xA", Type: "program", AllowAmend: true,
				Refs: []string{fxStore}, Content: []byte(`{"code":1}`), Created: 1700000040})
		}},
		{"vm update", func(ctx context.Context, tx store.Tx) error {
			return tx.InsertVM(ctx, &store.VM{ItemHash: fxVM2, Owner: "0xA", Type: "program", Replaces: fxVM,
				Content: []byte(`{"code":2}`), Created: 1700000041})
		}},
	}
}

// applyWrites runs each write in its own transaction, in the order of idx.
func applyWrites(t *testing.T, s store.Store, ws []DigestWrite, idx []int) {
	t.Helper()
	for _, i := range idx {
		w := ws[i]
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := w.Fn(ctx, tx); err != nil {
				return fmt.Errorf("%s: %w", w.Name, err)
			}
			return nil
		})
	}
}

// ApplyDigestFixture writes DigestFixture to s in order.
func ApplyDigestFixture(t *testing.T, s store.Store) {
	t.Helper()
	ws := DigestFixture()
	idx := make([]int, len(ws))
	for i := range idx {
		idx[i] = i
	}
	applyWrites(t, s, ws, idx)
}

func digestOf(t *testing.T, s store.Store) *store.StateDigest {
	t.Helper()
	d, err := s.StateDigest(testCtx(t))
	noErr(t, err, "state digest")
	if len(d.Sections) != len(store.DigestSectionNames) {
		t.Fatalf("digest has sections %v, want %v", d.Sections, store.DigestSectionNames)
	}
	if d.Digest != store.DigestOf(d.Sections) {
		t.Fatalf("digest %s is not DigestOf its sections (%s)", d.Digest, store.DigestOf(d.Sections))
	}
	return d
}

// changedSections lists the sections whose hash or count differ.
func changedSections(a, b *store.StateDigest) []string {
	var out []string
	for _, name := range store.DigestSectionNames {
		if a.Sections[name] != b.Sections[name] {
			out = append(out, name)
		}
	}
	return out
}

func testStateDigest(t *testing.T, open Opener) {
	t.Run("Empty", func(t *testing.T) {
		d := digestOf(t, open(t))
		empty := hex.EncodeToString(sha256.New().Sum(nil))
		var in strings.Builder
		in.WriteString("aleph-state-digest/1\n")
		for _, name := range []string{"aggregates", "pins", "posts", "statuses", "tags", "vms"} {
			if got := d.Sections[name]; got.Count != 0 || got.Hash != empty {
				t.Errorf("empty store: section %s = %+v", name, got)
			}
			in.WriteString(name + " 0 " + empty + "\n")
		}
		if want := sha256hex(in.String()); d.Digest != want {
			t.Errorf("empty store digest %s, want %s", d.Digest, want)
		}
	})

	t.Run("Encoding", func(t *testing.T) {
		// One row per section, hashed as documented.
		s := open(t)
		h := strings.Repeat("ab", 32)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: h, Status: message.StatusProcessed, ReceptionTime: baseTime}); err != nil {
				return err
			}
			if err := tx.PutFileTag(ctx, &store.FileTag{Tag: "t", Owner: "0xO", FileHash: h, LastUpdated: 0.1}); err != nil {
				return err
			}
			if err := tx.InsertAggregateElement(ctx, &store.AggregateElement{ItemHash: h, Key: "k", Owner: "0xO",
				Content: []byte(`{"b": 1.0, "a": "<é>"}`), CreationTime: 1e21}); err != nil {
				return err
			}
			return tx.PutAggregate(ctx, &store.Aggregate{Key: "k", Owner: "0xO", Content: []byte(`{"b": 1.0, "a": "<é>"}`),
				CreationTime: 1e21, LastUpdateTime: 1700000000.5, OriginalHash: h, LastRevisionHash: h})
		})
		d := digestOf(t, s)
		want := map[string]string{
			store.DigestStatuses:   "64:" + h + "9:processed\n",
			store.DigestTags:       "1:t3:0xO64:" + h + "3:0.1\n",
			store.DigestAggregates: "3:0xO1:k" + strconv.Itoa(len(`{"a":"<é>","b":1.0}`)) + `:{"a":"<é>","b":1.0}` + "5:1e+2116:1.7000000005e+0964:" + h + "64:" + h + "\n",
		}
		for name, rows := range want {
			if got := d.Sections[name]; got.Count != 1 || got.Hash != sha256hex(rows) {
				t.Errorf("section %s = %+v, want count 1 and hash of %q (%s)", name, got, rows, sha256hex(rows))
			}
		}
	})

	t.Run("OrderIndependent", func(t *testing.T) {
		ws := DigestFixture()
		forward := make([]int, len(ws))
		for i := range forward {
			forward[i] = i
		}
		backward := slices.Clone(forward)
		slices.Reverse(backward)
		// Odd positions first, then even ones.
		var interleaved []int
		for i := 1; i < len(ws); i += 2 {
			interleaved = append(interleaved, i)
		}
		for i := 0; i < len(ws); i += 2 {
			interleaved = append(interleaved, i)
		}
		var first *store.StateDigest
		for _, order := range [][]int{forward, backward, interleaved} {
			s := open(t)
			applyWrites(t, s, ws, order)
			d := digestOf(t, s)
			for name, n := range fxCounts {
				if d.Sections[name].Count != n {
					t.Errorf("order %v: section %s counts %d rows, want %d", order, name, d.Sections[name].Count, n)
				}
			}
			if first == nil {
				first = d
				continue
			}
			if d.Digest != first.Digest {
				t.Errorf("order %v: digest %s, want %s; sections changed: %v", order, d.Digest, first.Digest, changedSections(first, d))
			}
		}
	})

	// Each case changes the fixture's state once; want names the only section
	// whose hash must change, "" for a change the digest must ignore.
	cases := []struct {
		name string
		want string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"status processed to removing", store.DigestStatuses, func(ctx context.Context, tx store.Tx) error {
			return tx.SetStatus(ctx, store.StatusRecord{ItemHash: hashOf("s-processed"), Status: message.StatusRemoving})
		}},
		{"new removed status", store.DigestStatuses, func(ctx context.Context, tx store.Tx) error {
			return tx.SetStatus(ctx, store.StatusRecord{ItemHash: hashOf("new"), Status: message.StatusRemoved, ReceptionTime: baseTime})
		}},
		{"new pending status", "", func(ctx context.Context, tx store.Tx) error {
			return tx.SetStatus(ctx, store.StatusRecord{ItemHash: hashOf("new"), Status: message.StatusPending, ReceptionTime: baseTime})
		}},
		{"pending to rejected", "", func(ctx context.Context, tx store.Tx) error {
			return tx.SetStatus(ctx, store.StatusRecord{ItemHash: hashOf("s-pending"), Status: message.StatusRejected})
		}},
		{"aggregate content value", store.DigestAggregates, func(ctx context.Context, tx store.Tx) error {
			return putAggregate(ctx, tx, "0xA", "profile", func(a *store.Aggregate) {
				a.Content = []byte(`{"name":"d","n":2,"nested":{"y":1,"x":[1,2]},"extra":"é<>&"}`)
			})
		}},
		{"aggregate number text", store.DigestAggregates, func(ctx context.Context, tx store.Tx) error {
			return putAggregate(ctx, tx, "0xA", "profile", func(a *store.Aggregate) {
				a.Content = []byte(`{"name":"c","n":2.0,"nested":{"y":1,"x":[1,2]},"extra":"é<>&"}`)
			})
		}},
		{"aggregate last revision", store.DigestAggregates, func(ctx context.Context, tx store.Tx) error {
			return putAggregate(ctx, tx, "0xA", "profile", func(a *store.Aggregate) { a.LastRevisionHash = fxElem[1] })
		}},
		{"aggregate key order and spaces", "", func(ctx context.Context, tx store.Tx) error {
			return putAggregate(ctx, tx, "0xA", "profile", func(a *store.Aggregate) {
				a.Content = []byte(`{ "extra" : "é<>&", "nested": {"x": [1, 2], "y": 1}, "n": 2, "name": "c" }`)
			})
		}},
		{"aggregate marked dirty with stale content", "", func(ctx context.Context, tx store.Tx) error {
			return putAggregate(ctx, tx, "0xB", "settings", func(a *store.Aggregate) {
				a.Content, a.Dirty = []byte(`{}`), true
				a.CreationTime, a.LastUpdateTime, a.OriginalHash, a.LastRevisionHash = 1, 2, "x", "y"
			})
		}},
		{"dirty aggregate loses an element", store.DigestAggregates, func(ctx context.Context, tx store.Tx) error {
			if err := tx.DeleteAggregateElement(ctx, fxDirty[1]); err != nil {
				return err
			}
			return putAggregate(ctx, tx, "0xB", "settings", func(a *store.Aggregate) { a.Dirty = true })
		}},
		{"dirty aggregate with no element", "", func(ctx context.Context, tx store.Tx) error {
			return tx.PutAggregate(ctx, &store.Aggregate{Key: "ghost", Owner: "0xC", Content: []byte(`{"a":1}`),
				OriginalHash: "h", LastRevisionHash: "h", Dirty: true})
		}},
		{"post head", store.DigestPosts, func(ctx context.Context, tx store.Tx) error {
			return tx.SetLatestAmend(ctx, fxOriginal, fxAmend1)
		}},
		{"new amend without head change", "", func(ctx context.Context, tx store.Tx) error {
			return tx.InsertPost(ctx, &store.Post{ItemHash: hashOf("fx-amend-3"), Owner: "0xA", Type: "amend", Ref: fxOriginal,
				Amends: fxOriginal, Content: []byte(`{"v":3}`), CreationTime: 1700000019})
		}},
		{"message pin", store.DigestPins, func(ctx context.Context, tx store.Tx) error {
			return tx.InsertFilePin(ctx, &store.FilePin{FileHash: fxFile, Type: store.PinMessage, Owner: "0xB",
				ItemHash: hashOf("other-store"), Created: 1700000200})
		}},
		{"content pin removed", store.DigestPins, func(ctx context.Context, tx store.Tx) error {
			return tx.DeleteFilePins(ctx, fxStore, store.PinContent)
		}},
		{"grace pin", "", func(ctx context.Context, tx store.Tx) error {
			at := baseTime.Add(1)
			return tx.InsertFilePin(ctx, &store.FilePin{FileHash: hashOf("other-file"), Type: store.PinGracePeriod, Created: 1, DeleteBy: &at})
		}},
		{"tag update", store.DigestTags, func(ctx context.Context, tx store.Tx) error {
			return tx.PutFileTag(ctx, &store.FileTag{Tag: "0xA/ref", Owner: "0xA", FileHash: fxFile, LastUpdated: 1700000100.2500002})
		}},
		{"vm removed", store.DigestVMs, func(ctx context.Context, tx store.Tx) error {
			return tx.DeleteVM(ctx, fxVM2)
		}},
	}
	t.Run("Changes", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := open(t)
				ApplyDigestFixture(t, s)
				base := digestOf(t, s)
				update(t, s, c.fn)
				changed := digestOf(t, s)
				got := changedSections(base, changed)
				switch {
				case c.want == "" && len(got) > 0:
					t.Errorf("digest changed sections %v, want none", got)
				case c.want == "" && changed.Digest != base.Digest:
					t.Errorf("digest changed with no section changed")
				case c.want != "" && (len(got) != 1 || got[0] != c.want):
					t.Errorf("changed sections %v, want [%s]", got, c.want)
				case c.want != "" && changed.Digest == base.Digest:
					t.Errorf("digest unchanged")
				}
			})
		}
	})

	t.Run("DirtyNotWritten", func(t *testing.T) {
		s := open(t)
		ApplyDigestFixture(t, s)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return putAggregate(ctx, tx, "0xB", "settings", func(a *store.Aggregate) { a.Content, a.Dirty = []byte(`{}`), true })
		})
		digestOf(t, s)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			a, err := tx.GetAggregate(ctx, "0xB", "settings")
			if err != nil {
				return err
			}
			if !a.Dirty || string(a.Content) != `{}` {
				t.Errorf("the digest wrote the dirty aggregate: %+v", a)
			}
			return nil
		})
	})

	t.Run("Cancelled", func(t *testing.T) {
		s := open(t)
		ApplyDigestFixture(t, s)
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		if _, err := s.StateDigest(ctx); err == nil {
			t.Errorf("digest with a cancelled context: no error")
		}
	})
}

// putAggregate reads an aggregate, changes it and writes it back.
func putAggregate(ctx context.Context, tx store.Tx, owner, key string, change func(*store.Aggregate)) error {
	a, err := tx.GetAggregate(ctx, owner, key)
	if err != nil {
		return err
	}
	change(a)
	return tx.PutAggregate(ctx, a)
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
