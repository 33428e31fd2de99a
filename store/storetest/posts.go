package storetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/store"
)

// postFixture stores a POST message and its post record.
type postFixture struct {
	msg  *store.Message
	post *store.Post
}

func newPost(t *testing.T, label string, owner, typ, ref, amends, channel string, created float64, tags []string) postFixture {
	t.Helper()
	m := newMessage(t, label, msgOpts{sender: owner, channel: channel, contentType: typ, ref: ref, tags: tags,
		timeText: fmt.Sprint(created)})
	p := &store.Post{ItemHash: m.ItemHash, Owner: owner, Type: typ, Ref: ref, Amends: amends, Channel: channel,
		Content: []byte(fmt.Sprintf(`{"body": %q, "n": [1, 2.0]}`, label)), CreationTime: created, Tags: tags}
	return postFixture{m, p}
}

func insertPosts(t *testing.T, s store.Store, ps ...postFixture) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range ps {
			if err := tx.InsertMessage(ctx, p.msg); err != nil {
				return err
			}
			if err := tx.InsertPost(ctx, p.post); err != nil {
				return err
			}
		}
		return nil
	})
}

func samePost(t *testing.T, got, want *store.Post) {
	t.Helper()
	if got == nil {
		t.Fatalf("post %s: nil", want.ItemHash)
	}
	if got.ItemHash != want.ItemHash || got.Owner != want.Owner || got.Type != want.Type || got.Ref != want.Ref ||
		got.Amends != want.Amends || got.Channel != want.Channel || string(got.Content) != string(want.Content) ||
		got.CreationTime != want.CreationTime || got.LatestAmend != want.LatestAmend ||
		fmt.Sprint(got.Tags) != fmt.Sprint(want.Tags) {
		t.Errorf("post\n got %+v\nwant %+v", got, want)
	}
}

func testPosts(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	o1 := newPost(t, "o1", "0xA", "blog", "", "", "c1", 1000, []string{"x"})
	o2 := newPost(t, "o2", "0xA", "chat", "topic", "", "c2", 1001, nil)
	o3 := newPost(t, "o3", "0xB", "blog", "", "", "c1", 1002, []string{"y"})
	o4 := newPost(t, "o4", "0xB", "blog", "", "", "", 1002, nil) // ties with o3 on time
	a1 := newPost(t, "a1", "0xA", "amend", o1.msg.ItemHash, o1.msg.ItemHash, "c1", 1005, []string{"z"})
	a2 := newPost(t, "a2", "0xA", "amend", o1.msg.ItemHash, o1.msg.ItemHash, "c1", 1003, nil)
	a3 := newPost(t, "a3", "0xA", "amend", o2.msg.ItemHash, o2.msg.ItemHash, "c2", 1003, nil)
	insertPosts(t, s, o1, o2, o3, o4, a1, a2, a3)

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.GetPost(ctx, o1.post.ItemHash)
		if err != nil {
			return err
		}
		samePost(t, got, o1.post)
		_, err = tx.GetPost(ctx, hashOf("none"))
		wantErr(t, err, store.ErrNotFound, "missing post")
		wantErr(t, tx.InsertPost(ctx, o1.post), store.ErrConflict, "duplicate post")
		amends, err := tx.ListAmends(ctx, o1.post.ItemHash)
		if err != nil {
			return err
		}
		if len(amends) != 2 || amends[0].ItemHash != a2.post.ItemHash || amends[1].ItemHash != a1.post.ItemHash {
			t.Errorf("amends of o1 not in creation order")
		} else {
			samePost(t, amends[1], a1.post)
		}
		if none, err := tx.ListAmends(ctx, o3.post.ItemHash); err != nil || len(none) != 0 {
			t.Errorf("amends of o3: %d, %v", len(none), err)
		}
		if err := tx.SetLatestAmend(ctx, o1.post.ItemHash, a1.post.ItemHash); err != nil {
			return err
		}
		if err := tx.SetLatestAmend(ctx, o2.post.ItemHash, a3.post.ItemHash); err != nil {
			return err
		}
		wantErr(t, tx.SetLatestAmend(ctx, hashOf("none"), ""), store.ErrNotFound, "latest amend of missing")
		got, err = tx.GetPost(ctx, o1.post.ItemHash)
		if err != nil {
			return err
		}
		if got.LatestAmend != a1.post.ItemHash {
			t.Errorf("latest amend = %q", got.LatestAmend)
		}
		return nil
	})
	o1.post.LatestAmend, o2.post.LatestAmend = a1.post.ItemHash, a3.post.ItemHash

	// Views: last update times are o1 1005, o2 1003, o3 and o4 1002 (ties by hash).
	tie := "o3 o4"
	if o4.post.ItemHash < o3.post.ItemHash {
		tie = "o4 o3"
	}
	views, next, err := s.QueryPosts(ctx, store.PostFilter{}, store.Page{})
	noErr(t, err, "query posts")
	if next != nil {
		t.Errorf("page mode returned a cursor")
	}
	order := func(vs []*store.PostView) string {
		names := map[string]string{o1.post.ItemHash: "o1", o2.post.ItemHash: "o2", o3.post.ItemHash: "o3", o4.post.ItemHash: "o4"}
		var out []string
		for _, v := range vs {
			out = append(out, names[v.Original.ItemHash])
		}
		return strings.Join(out, " ")
	}
	if got := order(views); got != "o1 o2 "+tie {
		t.Fatalf("posts = %s, want o1 o2 %s (amends folded in, by last update)", got, tie)
	}
	v := views[0]
	samePost(t, v.Original, o1.post)
	samePost(t, v.Latest, a1.post)
	sameMessage(t, v.LatestMessage, a1.msg)
	sameMessage(t, v.OriginalMessage, o1.msg)
	for _, v := range views {
		if v.Original.ItemHash == o3.post.ItemHash && (v.Latest != nil || v.LatestMessage == nil || v.LatestMessage.ItemHash != o3.msg.ItemHash) {
			t.Errorf("unamended view: latest %v, latest message %v", v.Latest, v.LatestMessage)
		}
	}

	cases := []struct {
		name string
		f    store.PostFilter
		want string
	}{
		{"ascending", store.PostFilter{SortOrder: store.Ascending}, tie + " o2 o1"},
		{"owners", store.PostFilter{Owners: []string{"0xB"}}, tie},
		{"hashes", store.PostFilter{Hashes: []string{o2.post.ItemHash, o4.post.ItemHash, a1.post.ItemHash}}, "o2 o4"},
		{"refs", store.PostFilter{Refs: []string{"topic"}}, "o2"},
		{"types", store.PostFilter{Types: []string{"blog"}}, "o1 " + tie},
		{"amend is not a listed type", store.PostFilter{Types: []string{"amend"}}, ""},
		{"tags of the latest version", store.PostFilter{Tags: []string{"z", "y"}}, "o1 o3"},
		{"tags replaced by the amend", store.PostFilter{Tags: []string{"x"}}, ""},
		{"channels", store.PostFilter{Channels: []string{"c1"}}, "o1 o3"},
		{"start on last update", store.PostFilter{StartDate: 1003}, "o1 o2"},
		{"end on last update", store.PostFilter{EndDate: 1003}, tie},
		{"combined", store.PostFilter{Owners: []string{"0xA", "0xB"}, Channels: []string{"c1", "c2"}, StartDate: 1002.5}, "o1 o2"},
	}
	for _, c := range cases {
		views, _, err := s.QueryPosts(ctx, c.f, store.Page{})
		noErr(t, err, c.name)
		if got := order(views); got != c.want {
			t.Errorf("%s: posts = %q, want %q", c.name, got, c.want)
		}
		n, err := s.CountPosts(ctx, c.f)
		noErr(t, err, c.name+" count")
		if want := len(strings.Fields(c.want)); n != int64(want) {
			t.Errorf("%s: count = %d, want %d", c.name, n, want)
		}
	}

	// Page and cursor mode walk the same order.
	for _, f := range []store.PostFilter{{}, {SortOrder: store.Ascending}} {
		all, _, err := s.QueryPosts(ctx, f, store.Page{})
		noErr(t, err, "all posts")
		var paged, walked []*store.PostView
		for page := 1; page <= 3; page++ {
			got, _, err := s.QueryPosts(ctx, f, store.Page{Size: 2, Number: page})
			noErr(t, err, "page")
			paged = append(paged, got...)
		}
		cur := &store.Cursor{}
		for i := 0; cur != nil; i++ {
			got, next, err := s.QueryPosts(ctx, f, store.Page{Size: 3, Cursor: cur})
			noErr(t, err, "cursor")
			walked = append(walked, got...)
			cur = next
			if i > 10 {
				t.Fatal("cursor never ends")
			}
		}
		if order(paged) != order(all) || order(walked) != order(all) {
			t.Errorf("sort %d: pages %q, cursor %q, want %q", f.SortOrder, order(paged), order(walked), order(all))
		}
	}

	// Forgetting the latest amend: the pipeline deletes it and points the
	// original at the next one; the view follows.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.DeletePost(ctx, a1.post.ItemHash); err != nil {
			return err
		}
		if err := tx.DeleteMessage(ctx, a1.msg.ItemHash); err != nil {
			return err
		}
		if err := tx.DeletePost(ctx, a1.post.ItemHash); err != nil {
			return err
		}
		return tx.SetLatestAmend(ctx, o1.post.ItemHash, a2.post.ItemHash)
	})
	views, _, err = s.QueryPosts(ctx, store.PostFilter{Hashes: []string{o1.post.ItemHash}}, store.Page{})
	noErr(t, err, "query after forget")
	if len(views) != 1 || views[0].Latest == nil || views[0].Latest.ItemHash != a2.post.ItemHash ||
		views[0].LatestMessage.ItemHash != a2.msg.ItemHash {
		t.Fatalf("view after forgetting the latest amend is wrong")
	}
	if got, _, _ := s.QueryPosts(ctx, store.PostFilter{Tags: []string{"z"}}, store.Page{}); len(got) != 0 {
		t.Errorf("tags of the forgotten amend still match")
	}
	// Back to no amend: the original's own tags and time.
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.SetLatestAmend(ctx, o1.post.ItemHash, "") })
	views, _, err = s.QueryPosts(ctx, store.PostFilter{Tags: []string{"x"}}, store.Page{})
	noErr(t, err, "query")
	if len(views) != 1 || views[0].Latest != nil || views[0].Original.LatestAmend != "" {
		t.Errorf("view without amends is wrong")
	}

	types, err := s.PostTypes(ctx, "0xA")
	noErr(t, err, "post types")
	sort.Strings(types)
	if strings.Join(types, ",") != "amend,blog,chat" {
		t.Errorf("post types of 0xA = %v", types)
	}
	types, err = s.PostTypes(ctx, "0xNone")
	noErr(t, err, "post types")
	if len(types) != 0 {
		t.Errorf("post types of unknown owner = %v", types)
	}
}
