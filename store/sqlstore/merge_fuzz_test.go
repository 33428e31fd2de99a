package sqlstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/go-aleph/go-aleph/store"
)

// FuzzMergeElements checks that merging never panics on arbitrary contents and
// that, for JSON objects, it equals decoding both into one map (a later key
// replacing an earlier one).
func FuzzMergeElements(f *testing.F) {
	seeds := [][2]string{
		{`{"a":1,"b":{"x":[1,2]}}`, `{"b":{"y":null},"c":"\"}{,"}`},
		{` { "k" : [ {"n": "]"} , 2 ] } `, `{}`},
		{`{"a":1,"a":2}`, `{"\u0061":3}`},
		{`[1]`, `{"a":1}`},
		{`{"a":`, `{"a":1}`},
		{`{"e":"\\","f":1e-5,"g":true}`, `{"h":"é\ud83d\ude00"}`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		elems := []*store.AggregateElement{
			{ItemHash: "a", Content: a, CreationTime: 1},
			{ItemHash: "b", Content: b, CreationTime: 2},
		}
		got, err := MergeElements(elems)
		var ma, mb map[string]any
		okA := isObject(a) && json.Unmarshal(a, &ma) == nil
		okB := isObject(b) && json.Unmarshal(b, &mb) == nil
		if !okA || !okB {
			if err == nil {
				t.Fatalf("merge of %q and %q succeeded", a, b)
			}
			return
		}
		if err != nil {
			t.Fatalf("merge of %q and %q: %v", a, b, err)
		}
		if !json.Valid(got.Content) || !bytes.HasPrefix(got.Content, []byte("{")) {
			t.Fatalf("merged content %q is not a JSON object", got.Content)
		}
		for k, v := range mb {
			ma[k] = v
		}
		var merged map[string]any
		if err := json.Unmarshal(got.Content, &merged); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(merged, ma) {
			t.Fatalf("merge of %q and %q = %s, want %v", a, b, got.Content, ma)
		}
	})
}
