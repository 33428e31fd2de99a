package sqlstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/go-aleph/go-aleph/internal/pgtest"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/store/storetest"
)

// seedDigest writes n messages of the benchmark corpus (genMessage) with the
// records processing them would leave: statuses, posts (every fifth with a
// latest amend), aggregate elements and aggregates (every 50th dirty), STORE
// pins and tags, VMs, and for each FORGET a forgotten skeleton.
func seedDigest(ctx context.Context, db *DB, n int) error {
	const chunk = 10_000
	for start := 0; start < n; start += chunk {
		err := db.Update(ctx, func(tx store.Tx) error {
			for i := start; i < min(start+chunk, n); i++ {
				if err := seedDigestMessage(ctx, tx, i); err != nil {
					return fmt.Errorf("message %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func seedDigestMessage(ctx context.Context, tx store.Tx, i int) error {
	m := genMessage(i)
	if m.Type == message.TypeForget {
		f := &store.Forgotten{ItemHash: m.ItemHash, Type: message.TypePost, Chain: m.Chain, Sender: m.Sender,
			Signature: m.Signature, ItemType: m.ItemType, Time: m.Time, Channel: m.Channel, Owner: m.Owner,
			ForgottenBy: []string{message.HashContent([]byte(fmt.Sprint("forget", i)))}, ForgottenAt: m.Time.Seconds() + 1}
		if err := tx.PutForgotten(ctx, f); err != nil {
			return err
		}
		return tx.SetStatus(ctx, store.StatusRecord{ItemHash: m.ItemHash, Status: message.StatusForgotten, ReceptionTime: m.ReceptionTime})
	}
	if err := tx.InsertMessage(ctx, m); err != nil {
		return err
	}
	if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: m.ItemHash, Status: m.Status, ReceptionTime: m.ReceptionTime}); err != nil {
		return err
	}
	created := m.Time.Seconds()
	switch m.Type {
	case message.TypePost:
		p := &store.Post{ItemHash: m.ItemHash, Owner: m.Owner, Type: m.ContentType, Ref: m.ContentRef, Channel: m.Channel,
			Content: []byte(`{"body":"x"}`), CreationTime: created}
		if i%5 == 0 {
			// A head pointing at an amend whose record this corpus does not hold.
			p.LatestAmend = message.HashContent([]byte(fmt.Sprint("amend", i)))
			if err := tx.InsertPost(ctx, &store.Post{ItemHash: p.LatestAmend, Owner: m.Owner, Type: "amend", Ref: m.ItemHash,
				Amends: m.ItemHash, Content: []byte(`{"body":"y"}`), CreationTime: created + 1}); err != nil {
				return err
			}
		}
		return tx.InsertPost(ctx, p)
	case message.TypeAggregate:
		content := fmt.Sprintf(`{"k%d":%d,"common":{"i":%d,"f":%v}}`, i%7, i, i, float64(i)/3)
		e := &store.AggregateElement{ItemHash: m.ItemHash, Key: m.ContentKey, Owner: m.Owner, Content: []byte(content), CreationTime: created}
		if err := tx.InsertAggregateElement(ctx, e); err != nil {
			return err
		}
		a, err := tx.GetAggregate(ctx, m.Owner, m.ContentKey)
		if err == store.ErrNotFound {
			a = &store.Aggregate{Key: m.ContentKey, Owner: m.Owner, Content: []byte(content), CreationTime: created,
				LastUpdateTime: created, OriginalHash: m.ItemHash, LastRevisionHash: m.ItemHash}
		} else if err != nil {
			return err
		} else {
			elems, err := tx.ListAggregateElements(ctx, m.Owner, m.ContentKey)
			if err != nil {
				return err
			}
			merged, err := MergeElements(elems)
			if err != nil {
				return err
			}
			a = merged
		}
		a.Dirty = i%50 == 0
		return tx.PutAggregate(ctx, a)
	case message.TypeStore:
		for _, typ := range []string{store.PinMessage, store.PinContent} {
			if err := tx.InsertFilePin(ctx, &store.FilePin{FileHash: m.ContentItemHash, Type: typ, Owner: m.Owner,
				ItemHash: m.ItemHash, Created: created}); err != nil {
				return err
			}
		}
		return tx.PutFileTag(ctx, &store.FileTag{Tag: m.ItemHash, Owner: m.Owner, FileHash: m.ContentItemHash, LastUpdated: created})
	case message.TypeProgram, message.TypeInstance:
		return tx.InsertVM(ctx, &store.VM{ItemHash: m.ItemHash, Owner: m.Owner, Type: string(m.Type), Content: m.Content, Created: created})
	}
	return nil
}

// TestDigestSameAcrossBackends writes the same records to SQLite and
// PostgreSQL and requires the same digest, section by section, and the same
// anti-entropy set, times bit for bit.
func TestDigestSameAcrossBackends(t *testing.T) {
	pgtest.DSN(t)
	ctx := testCtx(t)
	dbs := []*DB{openSQLite(t), openPostgres(t)}
	var digests []*store.StateDigest
	var sets [][]store.SyncKey
	for _, db := range dbs {
		storetest.ApplyDigestFixture(t, db)
		if err := seedDigest(ctx, db, 3000); err != nil {
			t.Fatalf("%s: seed: %v", db.Backend(), err)
		}
		d, err := db.StateDigest(ctx)
		if err != nil {
			t.Fatalf("%s: digest: %v", db.Backend(), err)
		}
		digests = append(digests, d)
		var all []store.SyncKey
		var after *store.SyncKey
		for {
			page, err := db.SyncItems(ctx, after, 700)
			if err != nil {
				t.Fatalf("%s: sync items: %v", db.Backend(), err)
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = &page[len(page)-1]
		}
		sets = append(sets, all)
	}
	for _, name := range store.DigestSectionNames {
		a, b := digests[0].Sections[name], digests[1].Sections[name]
		if a != b {
			t.Errorf("section %s: sqlite %+v, postgres %+v", name, a, b)
		}
		if a.Count == 0 {
			t.Errorf("section %s is empty: the seed does not exercise it", name)
		}
	}
	if digests[0].Digest != digests[1].Digest {
		t.Errorf("digest: sqlite %s, postgres %s", digests[0].Digest, digests[1].Digest)
	}
	if len(sets[0]) != len(sets[1]) || len(sets[0]) < 3000 {
		t.Fatalf("sync items: sqlite %d, postgres %d", len(sets[0]), len(sets[1]))
	}
	for i := range sets[0] {
		a, b := sets[0][i], sets[1][i]
		if math.Float64bits(a.Time) != math.Float64bits(b.Time) || a.ItemHash != b.ItemHash || a.Forgotten != b.Forgotten {
			t.Fatalf("sync item %d: sqlite %+v, postgres %+v", i, a, b)
		}
	}
}

// TestSyncItemsTimesExact checks that the times SyncItems returns are the
// envelope times the pipeline wrote, bit for bit, on every backend.
func TestSyncItemsTimesExact(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := testCtx(t)
		const n = 500
		if err := seedDigest(ctx, db, n); err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{}
		for i := range n {
			m := genMessage(i)
			want[m.ItemHash] = m.Time.Seconds()
		}
		got, err := db.SyncItems(ctx, nil, store.MaxSyncItems)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d items, want %d", len(got), n)
		}
		for _, k := range got {
			if w, ok := want[k.ItemHash]; !ok || math.Float64bits(w) != math.Float64bits(k.Time) {
				t.Errorf("item %s: time %v (%x), want %v", k.ItemHash, k.Time, math.Float64bits(k.Time), w)
			}
		}
	})
}

func TestCanonicalizeJSON(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`{"b": 1, "a": [3, {"z": null, "y": true}]}`, `{"a":[3,{"y":true,"z":null}],"b":1}`, true},
		{`{"n": 1.50, "big": 123456789012345678901234567890, "e": 1E5}`, `{"big":123456789012345678901234567890,"e":1E5,"n":1.50}`, true},
		{`{"s": "<a href='x'>&amp;</a> é \u00e9 \u2028"}`, `{"s":"<a href='x'>&amp;</a> é é \u2028"}`, true},
		{` {} `, `{}`, true},
		{`{"a": 1} {}`, ``, false},
		{`{"a": 1}}`, ``, false},
		{`{"a": }`, ``, false},
		{``, ``, false},
	} {
		got, err := canonicalizeJSON([]byte(c.in))
		if (err == nil) != c.ok {
			t.Errorf("canonicalizeJSON(%q): error %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.ok && string(got) != c.want {
			t.Errorf("canonicalizeJSON(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// FuzzCanonicalizeJSON checks that canonical JSON accepts every valid
// document, is valid, and is a fixed point.
func FuzzCanonicalizeJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":2}`, `[1,2.0,-3e10]`, `{"x":{"y":[{"z":"\u00e9"}]}}`, `"s"`, `null`, `{"a":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		got, err := canonicalizeJSON(in)
		if !json.Valid(in) {
			if err == nil {
				t.Fatalf("invalid JSON %q accepted as %q", in, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid JSON %q: %v", in, err)
		}
		if !json.Valid(got) {
			t.Fatalf("canonical form %q of %q is not JSON", got, in)
		}
		again, err := canonicalizeJSON(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("canonical form %q of %q is not a fixed point: %q, %v", got, in, again, err)
		}
	})
}
