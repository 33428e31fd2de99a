package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/store"
)

// sameJSON fails unless got and want are equal JSON values.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: got invalid JSON %q: %v", what, got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: want invalid JSON %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func elem(owner, key, label string, created float64, content string) *store.AggregateElement {
	return &store.AggregateElement{ItemHash: hashOf(owner + key + label), Key: key, Owner: owner, Content: []byte(content), CreationTime: created}
}

func testAggregates(t *testing.T, open Opener) {
	t.Run("Elements", func(t *testing.T) {
		s := open(t)
		e1 := elem("0xA", "profile", "1", 10, `{"name": "a", "nested": {"x": 1}}`)
		e2 := elem("0xA", "profile", "2", 5, `{"age":3}`)
		e3 := elem("0xA", "profile", "3", 10, `{"name":"c"}`)
		other := elem("0xA", "settings", "4", 1, `{"k":true}`)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, e := range []*store.AggregateElement{e1, e2, e3, other} {
				if err := tx.InsertAggregateElement(ctx, e); err != nil {
					return err
				}
			}
			wantErr(t, tx.InsertAggregateElement(ctx, e1), store.ErrConflict, "duplicate element")
			got, err := tx.GetAggregateElement(ctx, e1.ItemHash)
			if err != nil {
				return err
			}
			if got.Key != e1.Key || got.Owner != e1.Owner || string(got.Content) != string(e1.Content) || got.CreationTime != 10 {
				t.Errorf("element = %+v", got)
			}
			_, err = tx.GetAggregateElement(ctx, hashOf("none"))
			wantErr(t, err, store.ErrNotFound, "missing element")
			list, err := tx.ListAggregateElements(ctx, "0xA", "profile")
			if err != nil {
				return err
			}
			// (CreationTime, ItemHash) order: e2 first, then e1 and e3 by hash.
			want := []string{e2.ItemHash, e1.ItemHash, e3.ItemHash}
			if e3.ItemHash < e1.ItemHash {
				want[1], want[2] = e3.ItemHash, e1.ItemHash
			}
			var got3 []string
			for _, e := range list {
				got3 = append(got3, e.ItemHash)
			}
			if fmt.Sprint(got3) != fmt.Sprint(want) {
				t.Errorf("elements order = %v, want %v", got3, want)
			}
			if err := tx.DeleteAggregateElement(ctx, e2.ItemHash); err != nil {
				return err
			}
			list, err = tx.ListAggregateElements(ctx, "0xA", "profile")
			if err != nil {
				return err
			}
			if len(list) != 2 {
				t.Errorf("after delete: %d elements", len(list))
			}
			list, err = tx.ListAggregateElements(ctx, "0xB", "profile")
			if err != nil || len(list) != 0 {
				t.Errorf("elements of another owner: %d, %v", len(list), err)
			}
			return nil
		})
	})

	t.Run("RecordsAndDirtyRecompute", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		e1 := elem("0xA", "profile", "1", 10, `{"name":"a","nested":{"x":1,"y":2},"keep":[1]}`)
		e2 := elem("0xA", "profile", "2", 20, `{"nested":{"z":3},"age":4}`)
		e3 := elem("0xA", "profile", "3", 15, `{"name":"b"}`)
		clean := &store.Aggregate{Key: "settings", Owner: "0xA", Content: []byte(`{"theme": "dark"}`), CreationTime: 1,
			LastUpdateTime: 2, OriginalHash: hashOf("s1"), LastRevisionHash: hashOf("s2")}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, e := range []*store.AggregateElement{e1, e2, e3} {
				if err := tx.InsertAggregateElement(ctx, e); err != nil {
					return err
				}
			}
			_, err := tx.GetAggregate(ctx, "0xA", "profile")
			wantErr(t, err, store.ErrNotFound, "missing aggregate")
			// A stale, dirty record: the reader must recompute it.
			if err := tx.PutAggregate(ctx, &store.Aggregate{Key: "profile", Owner: "0xA", Content: []byte(`{"stale":true}`),
				CreationTime: 10, LastUpdateTime: 10, OriginalHash: e1.ItemHash, LastRevisionHash: e1.ItemHash, Dirty: true}); err != nil {
				return err
			}
			if err := tx.PutAggregate(ctx, clean); err != nil {
				return err
			}
			got, err := tx.GetAggregate(ctx, "0xA", "settings")
			if err != nil {
				return err
			}
			if string(got.Content) != string(clean.Content) || got.OriginalHash != clean.OriginalHash || got.LastRevisionHash != clean.LastRevisionHash ||
				got.CreationTime != 1 || got.LastUpdateTime != 2 || got.Dirty {
				t.Errorf("aggregate round trip = %+v", got)
			}
			return nil
		})
		aggs, err := s.GetAggregates(ctx, "0xA", nil)
		noErr(t, err, "get aggregates")
		if len(aggs) != 2 || aggs[0].Key != "profile" || aggs[1].Key != "settings" {
			t.Fatalf("aggregates = %+v", aggs)
		}
		p := aggs[0]
		// Merge order e1 (10), e3 (15), e2 (20); nested objects are replaced.
		sameJSON(t, "merged content", p.Content, []byte(`{"name":"b","nested":{"z":3},"keep":[1],"age":4}`))
		if p.Dirty || p.CreationTime != 10 || p.LastUpdateTime != 20 || p.OriginalHash != e1.ItemHash || p.LastRevisionHash != e2.ItemHash {
			t.Errorf("recomputed = %+v", p)
		}
		if string(aggs[1].Content) != string(clean.Content) {
			t.Errorf("clean aggregate content = %s, want the stored bytes", aggs[1].Content)
		}
		// The recompute was saved.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.GetAggregate(ctx, "0xA", "profile")
			if err != nil {
				return err
			}
			if got.Dirty {
				t.Errorf("recomputed aggregate still dirty")
			}
			sameJSON(t, "saved content", got.Content, p.Content)
			return nil
		})
		only, err := s.GetAggregates(ctx, "0xA", []string{"settings", "nope"})
		noErr(t, err, "keys")
		if len(only) != 1 || only[0].Key != "settings" {
			t.Errorf("aggregates with keys = %+v", only)
		}
		none, err := s.GetAggregates(ctx, "0xNone", nil)
		noErr(t, err, "unknown owner")
		if len(none) != 0 {
			t.Errorf("aggregates of unknown owner = %d", len(none))
		}
		// A dirty aggregate with no element left disappears.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.PutAggregate(ctx, &store.Aggregate{Key: "ghost", Owner: "0xA", Content: []byte(`{}`), OriginalHash: "h", LastRevisionHash: "h", Dirty: true})
		})
		aggs, err = s.GetAggregates(ctx, "0xA", []string{"ghost"})
		noErr(t, err, "ghost")
		if len(aggs) != 0 {
			t.Errorf("elementless dirty aggregate returned: %+v", aggs[0])
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.DeleteAggregate(ctx, "0xA", "settings"); err != nil {
				return err
			}
			_, err := tx.GetAggregate(ctx, "0xA", "settings")
			wantErr(t, err, store.ErrNotFound, "deleted aggregate")
			return tx.DeleteAggregate(ctx, "0xA", "settings")
		})
	})

	t.Run("Query", func(t *testing.T) {
		s := open(t)
		ctx := testCtx(t)
		type spec struct {
			owner, key       string
			created, updated float64
		}
		specs := []spec{
			{"0xA", "k1", 1, 50}, {"0xA", "k2", 2, 40}, {"0xB", "k1", 3, 40}, {"0xB", "k3", 4, 10}, {"0xC", "k1", 3, 60},
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, sp := range specs {
				if err := tx.PutAggregate(ctx, &store.Aggregate{Key: sp.key, Owner: sp.owner, Content: []byte(fmt.Sprintf(`{"o":%q}`, sp.owner)),
					CreationTime: sp.created, LastUpdateTime: sp.updated, OriginalHash: "x", LastRevisionHash: "y"}); err != nil {
					return err
				}
			}
			return nil
		})
		names := func(as []*store.Aggregate) string {
			var out []string
			for _, a := range as {
				out = append(out, a.Owner+"/"+a.Key)
			}
			return strings.Join(out, " ")
		}
		cases := []struct {
			name string
			f    store.AggregateFilter
			want string
		}{
			{"default", store.AggregateFilter{}, "0xC/k1 0xA/k1 0xA/k2 0xB/k1 0xB/k3"},
			{"ascending", store.AggregateFilter{SortOrder: store.Ascending}, "0xB/k3 0xA/k2 0xB/k1 0xA/k1 0xC/k1"},
			{"creation", store.AggregateFilter{SortBy: "creation_time"}, "0xB/k3 0xB/k1 0xC/k1 0xA/k2 0xA/k1"},
			{"owners", store.AggregateFilter{Owners: []string{"0xB", "0xA"}}, "0xA/k1 0xA/k2 0xB/k1 0xB/k3"},
			{"keys", store.AggregateFilter{Keys: []string{"k1"}, SortBy: "last_modified", SortOrder: store.Ascending}, "0xB/k1 0xA/k1 0xC/k1"},
			{"owner+key", store.AggregateFilter{Owners: []string{"0xB"}, Keys: []string{"k3", "k2"}}, "0xB/k3"},
		}
		for _, c := range cases {
			got, err := s.QueryAggregates(ctx, c.f, store.Page{})
			noErr(t, err, c.name)
			if names(got) != c.want {
				t.Errorf("%s: %q, want %q", c.name, names(got), c.want)
			}
			n, err := s.CountAggregates(ctx, c.f)
			noErr(t, err, c.name+" count")
			if n != int64(len(strings.Fields(c.want))) {
				t.Errorf("%s: count = %d", c.name, n)
			}
			var paged []*store.Aggregate
			for page := 1; page <= 3; page++ {
				got, err := s.QueryAggregates(ctx, c.f, store.Page{Size: 2, Number: page})
				noErr(t, err, c.name)
				paged = append(paged, got...)
			}
			if names(paged) != c.want {
				t.Errorf("%s: pages %q, want %q", c.name, names(paged), c.want)
			}
		}
	})
}
