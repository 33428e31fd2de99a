package pipeline

import (
	"slices"
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

func TestAggregateKeyString(t *testing.T) {
	tests := []struct {
		key  message.AggregateKey
		want string
	}{
		{message.AggregateKey{Name: "profile"}, "profile"},
		{message.AggregateKey{Name: "profile", Object: true}, "{'name': 'profile'}"},
		{message.AggregateKey{Name: "it's", Object: true}, `{'name': "it's"}`},
		{message.AggregateKey{Name: `it's "x"`, Object: true}, `{'name': 'it\'s "x"'}`},
		{message.AggregateKey{Name: "a\\b\n\t\x01\x7f", Object: true}, `{'name': 'a\\b\n\t\x01\x7f'}`},
		{message.AggregateKey{Name: "café ☕ 😀", Object: true}, "{'name': 'café ☕ 😀'}"},
		{message.AggregateKey{Name: "nb\u00a0sp\u00ad\u2028\U000e0001", Object: true}, `{'name': 'nb\xa0sp\xad\u2028\U000e0001'}`},
	}
	for _, tc := range tests {
		if got := AggregateKeyString(tc.key); got != tc.want {
			t.Errorf("AggregateKeyString(%+v) = %s, want %s", tc.key, got, tc.want)
		}
	}
}

func TestTagsIn(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`{"tags":["a","b"]}`, []string{"a", "b"}},
		{`{"tags":["a",1,null,{"x":1},"b"]}`, []string{"a", "b"}},
		{`{"tags":"a"}`, nil},
		{`{"other":1}`, nil},
		{`["tags"]`, nil},
		{``, nil},
		{`null`, nil},
	}
	for _, tc := range tests {
		if got := tagsIn([]byte(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("tagsIn(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStoreTag(t *testing.T) {
	h1 := "1111111111111111111111111111111111111111111111111111111111111111"
	h2 := "2222222222222222222222222222222222222222222222222222222222222222"
	cid := "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
	tests := []struct{ ref, want string }{
		{"", h1},
		{h2, h2},
		{cid, cid},
		{"my-file", "0xO/my-file"},
		{"a/b", "0xO/a/b"},
	}
	for _, tc := range tests {
		if got := storeTag(h1, "0xO", tc.ref); got != tc.want {
			t.Errorf("storeTag(ref %q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}
