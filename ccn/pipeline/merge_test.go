package pipeline

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/go-aleph/go-aleph/store"
)

func TestShallowMerge(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    string
		wantErr bool
	}{
		{"single", []string{`{"b": 1, "a": 2}`}, `{"a":2,"b":1}`, false},
		{"later wins", []string{`{"a":1,"b":1}`, `{"b":2,"c":3}`}, `{"a":1,"b":2,"c":3}`, false},
		{"nested replaced, not merged", []string{`{"n":{"x":1,"y":2}}`, `{"n":{"y":3}}`}, `{"n":{"y":3}}`, false},
		{"null is a value, not a deletion", []string{`{"a":1}`, `{"a":null}`}, `{"a":null}`, false},
		{"no html escaping", []string{`{"<k>":"a&b"}`}, `{"<k>":"a&b"}`, false},
		{"duplicate key: last wins", []string{`{"a":1,"a":2}`}, `{"a":2}`, false},
		{"empty", []string{`{}`, `{}`}, `{}`, false},
		{"not an object", []string{`[1]`}, "", true},
		{"null", []string{`null`}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := make([][]byte, len(tc.in))
			for i, s := range tc.in {
				objs[i] = []byte(s)
			}
			got, err := shallowMerge(objs...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func element(i int, t float64, content string) *store.AggregateElement {
	return &store.AggregateElement{
		ItemHash: fmt.Sprintf("%064x", i), Key: "k", Owner: "o",
		Content: json.RawMessage(content), CreationTime: t,
	}
}

// TestAddElementOutOfOrder adds the same elements in many orders, through the
// append, prepend and recompute paths, and checks every order gives the result
// of a full merge in (time, hash) order.
func TestAddElementOutOfOrder(t *testing.T) {
	els := []*store.AggregateElement{
		element(1, 10, `{"a":1,"b":1}`),
		element(2, 20, `{"b":2}`),
		element(3, 20, `{"b":3,"c":3}`), // same time as 2: the greater hash wins
		element(4, 5, `{"a":0,"d":0}`),
		element(5, 30, `{"e":{"x":1}}`),
		element(6, 15, `{"c":"mid","e":{"y":2}}`),
	}
	want, err := compactAggregate("o", "k", els)
	if err != nil {
		t.Fatal(err)
	}
	if string(want.Content) != `{"a":1,"b":3,"c":3,"d":0,"e":{"x":1}}` {
		t.Fatalf("reference merge = %s", want.Content)
	}
	if want.OriginalHash != els[3].ItemHash || want.LastRevisionHash != els[4].ItemHash || want.CreationTime != 5 || want.LastUpdateTime != 30 {
		t.Fatalf("reference bounds = %+v", want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		order := rng.Perm(len(els))
		var agg *store.Aggregate
		var added []*store.AggregateElement
		for _, i := range order {
			added = append(added, els[i])
			agg, err = addElement(agg, els[i], func() ([]*store.AggregateElement, error) { return added, nil })
			if err != nil {
				t.Fatal(err)
			}
		}
		if string(agg.Content) != string(want.Content) || agg.OriginalHash != want.OriginalHash ||
			agg.LastRevisionHash != want.LastRevisionHash || agg.CreationTime != want.CreationTime ||
			agg.LastUpdateTime != want.LastUpdateTime || agg.Dirty {
			t.Fatalf("round %d order %v: got %+v (%s), want %s", round, order, agg, agg.Content, want.Content)
		}
	}
}

func TestAddElementDirty(t *testing.T) {
	var els []*store.AggregateElement
	for i := range maxCompactElements + 1 {
		els = append(els, element(i, float64(10+i), fmt.Sprintf(`{"k%d":%d}`, i%7, i)))
	}
	agg, err := compactAggregate("o", "k", els)
	if err != nil {
		t.Fatal(err)
	}
	mid := element(5000, 10.5, `{"mid":true}`)
	all := append(els, mid)
	listed := false
	next, err := addElement(agg, mid, func() ([]*store.AggregateElement, error) { listed = true; return all, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !listed || !next.Dirty {
		t.Fatalf("middle insert into %d elements: listed=%v dirty=%v, want a dirty aggregate", len(all), listed, next.Dirty)
	}
	// A dirty aggregate stays dirty and keeps its bounds right.
	newest := element(5001, 99999, `{"z":1}`)
	oldest := element(5002, 1, `{"y":1}`)
	next, err = addElement(next, newest, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, err = addElement(next, oldest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !next.Dirty || next.LastRevisionHash != newest.ItemHash || next.OriginalHash != oldest.ItemHash || next.CreationTime != 1 || next.LastUpdateTime != 99999 {
		t.Errorf("dirty aggregate after adds: %+v", next)
	}
	// Recomputing what is left after a forget: dirty when too large, exact otherwise.
	if a, _ := recomputeAggregate("o", "k", all); !a.Dirty {
		t.Error("recompute of a large aggregate is not dirty")
	}
	if a, _ := recomputeAggregate("o", "k", nil); a != nil {
		t.Error("recompute of no elements is not nil")
	}
}
