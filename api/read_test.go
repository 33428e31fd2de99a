package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

type postsPage struct {
	Posts             []map[string]any `json:"posts"`
	PaginationPage    *int             `json:"pagination_page"`
	PaginationTotal   *int             `json:"pagination_total"`
	PaginationPerPage *int             `json:"pagination_per_page"`
	PaginationItem    *string          `json:"pagination_item"`
	NextCursor        *string          `json:"next_cursor"`
}

func originals(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, p := range items {
		out[i], _ = p["original_item_hash"].(string)
	}
	return out
}

func testPosts(t *testing.T, n *node, d *dataset) {
	// v0: the amended post shows its latest version.
	var v0 postsPage
	n.getJSON(t, "/api/v0/posts.json?hashes="+d.p1, http.StatusOK, &v0)
	if len(v0.Posts) != 1 {
		t.Fatalf("v0 posts: %v", v0.Posts)
	}
	p := v0.Posts[0]
	want := map[string]any{
		"item_hash": d.p5, "original_item_hash": d.p1, "hash": d.p1, "type": "amend", "original_type": "blog",
		"address": d.a, "sender": d.a, "chain": "ETH", "channel": "TEST", "confirmed": false, "item_type": "inline",
		"ref": nil, "time": d.times[d.p5],
	}
	for k, v := range want {
		if fmt.Sprint(p[k]) != fmt.Sprint(v) {
			t.Errorf("v0 post %s = %v, want %v", k, p[k], v)
		}
	}
	if c, _ := p["content"].(map[string]any); c["body"] != "first, amended" {
		t.Errorf("v0 content: %v", p["content"])
	}
	if ic, _ := p["item_content"].(string); message.HashContent([]byte(ic)) != d.p5 {
		t.Errorf("v0 item_content is not the amend's")
	}
	for _, k := range []string{"signature", "original_signature", "size", "confirmations"} {
		if p[k] == nil {
			t.Errorf("v0 post has no %s", k)
		}
	}
	if p["signature"] == p["original_signature"] {
		t.Error("v0 signature should be the amend's, original_signature the original's")
	}

	// v1 shape.
	var v1 postsPage
	n.getJSON(t, "/api/v1/posts.json?hashes="+d.p1, http.StatusOK, &v1)
	if len(v1.Posts) != 1 {
		t.Fatalf("v1 posts: %v", v1.Posts)
	}
	q := v1.Posts[0]
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	if want := []string{"address", "channel", "content", "created", "item_hash", "last_updated", "original_item_hash", "original_type", "ref"}; !slices.Equal(sorted(keys), want) {
		t.Errorf("v1 keys %v, want %v", sorted(keys), want)
	}
	if q["item_hash"] != d.p5 || q["original_item_hash"] != d.p1 || q["original_type"] != "blog" ||
		!strings.HasSuffix(q["created"].(string), "+00:00") || q["created"] == q["last_updated"] {
		t.Errorf("v1 post: %v", q)
	}

	// Filters (on the original).
	posts := []string{d.p1, d.p2, d.p3, d.p4}
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"", posts},
		{"addresses=" + d.b, []string{d.p2}},
		{"addresses=" + d.a + "," + d.s, []string{d.p1, d.p3}},
		{"types=blog", []string{d.p1, d.p3, d.p4}},
		{"types=note,blog", posts},
		{"types=amend", nil},
		{"hashes=" + d.p2 + "," + d.p3, []string{d.p2, d.p3}},
		{"refs=ext-ref", []string{d.p2}},
		{"tags=n", []string{d.p2}},
		{"channels=OTHER", []string{d.p2}},
		{"channels=TEST", []string{d.p1, d.p3, d.p4}},
		{"startDate=" + ff(d.times[d.p3]), []string{d.p1, d.p3, d.p4}}, // p1 was updated by p5
		{"endDate=" + ff(d.times[d.p3]), []string{d.p2}},
		{"sortBy=tx-time", posts},
	} {
		for _, base := range []string{"/api/v0/posts.json?", "/api/v1/posts.json?"} {
			var pg postsPage
			n.getJSON(t, base+tt.q, http.StatusOK, &pg)
			if got := originals(pg.Posts); !sameSet(got, tt.want) {
				t.Errorf("%s%s: %v, want %v", base, tt.q, got, tt.want)
			}
			if pg.PaginationTotal == nil || *pg.PaginationTotal != len(tt.want) || *pg.PaginationItem != "posts" {
				t.Errorf("%s%s: pagination %+v", base, tt.q, pg)
			}
		}
	}

	// Walk pages (page mode, both URL forms) and cursors.
	for _, form := range []string{"/api/v0/posts.json?page=%d&", "/api/v0/posts/page/%d.json?", "/api/v1/posts/page/%d.json?"} {
		var got []string
		for page := 1; page <= 2; page++ {
			var pg postsPage
			n.getJSON(t, fmt.Sprintf(form, page)+"pagination=3&sortOrder=1", http.StatusOK, &pg)
			if *pg.PaginationTotal != 4 || *pg.PaginationPage != page {
				t.Errorf("%s page %d: %+v", form, page, pg)
			}
			got = append(got, originals(pg.Posts)...)
		}
		if !sameSet(got, posts) || len(got) != 4 {
			t.Errorf("%s walk: %v", form, got)
		}
	}
	var got []string
	cursor := ""
	for i := 0; ; i++ {
		if i > 5 {
			t.Fatal("posts cursor walk does not end")
		}
		var pg postsPage
		n.getJSON(t, "/api/v0/posts.json?pagination=1&cursor="+url.QueryEscape(cursor), http.StatusOK, &pg)
		got = append(got, originals(pg.Posts)...)
		if pg.PaginationTotal != nil {
			t.Error("cursor mode has pagination_total")
		}
		if pg.NextCursor == nil {
			break
		}
		cursor = *pg.NextCursor
	}
	if !sameSet(got, posts) || len(got) != 4 {
		t.Errorf("posts cursor walk: %v", got)
	}
	for _, q := range []string{"page=0", "pagination=x", "sortOrder=0", "hashes=nothash", "startDate=-1", "sortBy=size", "cursor=&pagination=0"} {
		n.getJSON(t, "/api/v0/posts.json?"+q, http.StatusUnprocessableEntity, nil)
		n.getJSON(t, "/api/v1/posts.json?"+q, http.StatusUnprocessableEntity, nil)
	}
	n.getJSON(t, "/api/v0/posts/page/0.json", http.StatusUnprocessableEntity, nil)
	n.getJSON(t, "/api/v0/posts/page/2", http.StatusNotFound, nil)
}

func testAggregates(t *testing.T, n *node, d *dataset) {
	var one struct {
		Address string                    `json:"address"`
		Data    map[string]map[string]any `json:"data"`
		Info    map[string]map[string]any `json:"info"`
	}
	n.getJSON(t, "/api/v0/aggregates/"+d.a+".json", http.StatusOK, &one)
	if one.Address != d.a || fmt.Sprint(one.Data["profile"]) != "map[age:3 name:alice]" || one.Data["settings"]["theme"] != "dark" || len(one.Info) != 0 {
		t.Errorf("aggregates: %+v", one)
	}
	one.Data, one.Info = nil, nil
	n.getJSON(t, "/api/v0/aggregates/"+d.a+".json?keys=settings&with_info=true&limit=5", http.StatusOK, &one)
	if len(one.Data) != 1 || one.Data["settings"] == nil {
		t.Errorf("keys=settings: %v", one.Data)
	}
	info := one.Info["settings"]
	if info["original_item_hash"] != d.a2 || info["last_update_item_hash"] != d.a2 || !strings.HasSuffix(fmt.Sprint(info["created"]), "+00:00") {
		t.Errorf("with_info: %v", one.Info)
	}
	one.Info = nil
	n.getJSON(t, "/api/v0/aggregates/"+d.a+".json?keys=profile&with_info=1", http.StatusOK, &one)
	// Not swapped (pyaleph quirk A.13): original is the first element, last update the latest.
	if in := one.Info["profile"]; in["original_item_hash"] != d.a1 || in["last_update_item_hash"] != d.a3 {
		t.Errorf("with_info hashes: %v", in)
	}
	var value map[string]any
	n.getJSON(t, "/api/v0/aggregates/"+d.a+".json?keys=profile&value_only=true", http.StatusOK, &value)
	if fmt.Sprint(value) != "map[age:3 name:alice]" {
		t.Errorf("value_only: %v", value)
	}
	var notFound map[string]any
	n.getJSON(t, "/api/v0/aggregates/"+d.b+".json", http.StatusNotFound, &notFound)
	if notFound["error"] != "No aggregate found for this address" {
		t.Errorf("404 body: %v", notFound)
	}
	n.getJSON(t, "/api/v0/aggregates/"+d.a+".json?keys=missing", http.StatusNotFound, nil)
	n.getJSON(t, "/api/v0/aggregates/.json", http.StatusNotFound, nil)
	n.getJSON(t, "/api/v0/aggregates/"+d.a, http.StatusNotFound, nil)
	for _, q := range []string{"with_info=perhaps", "value_only=2", "limit=abc"} {
		n.getJSON(t, "/api/v0/aggregates/"+d.a+".json?"+q, http.StatusUnprocessableEntity, nil)
	}

	// Listing.
	type aggPage struct {
		Aggregates      []map[string]any `json:"aggregates"`
		PaginationTotal *int             `json:"pagination_total"`
		PaginationItem  *string          `json:"pagination_item"`
		NextCursor      *string          `json:"next_cursor"`
	}
	keysOf := func(p aggPage) []string {
		var out []string
		for _, a := range p.Aggregates {
			out = append(out, fmt.Sprint(a["address"], "/", a["key"]))
		}
		return out
	}
	profile, settings := d.a+"/profile", d.a+"/settings"
	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"", []string{profile, settings}}, // profile was updated last (a3)
		{"sortOrder=1", []string{settings, profile}},
		{"sortBy=creation_time&sortOrder=1", []string{profile, settings}},
		{"sortBy=creation_time", []string{settings, profile}},
		{"keys=settings", []string{settings}},
		{"addresses=" + d.b, nil},
		{"addresses=" + d.a + "&keys=profile", []string{profile}},
	} {
		for _, path := range []string{"/api/v0/aggregates?", "/api/v0/aggregates.json?"} {
			var p aggPage
			n.getJSON(t, path+tt.q, http.StatusOK, &p)
			if got := keysOf(p); !slices.Equal(got, tt.want) {
				t.Errorf("%s%s: %v, want %v", path, tt.q, got, tt.want)
			}
			if p.PaginationTotal == nil || *p.PaginationTotal != len(tt.want) || *p.PaginationItem != "aggregates" {
				t.Errorf("%s%s: pagination %+v", path, tt.q, p)
			}
		}
	}
	var first aggPage
	n.getJSON(t, "/api/v0/aggregates.json", http.StatusOK, &first)
	if a := first.Aggregates[0]; fmt.Sprint(a["content"]) != "map[age:3 name:alice]" || !strings.HasSuffix(fmt.Sprint(a["created"]), "+00:00") || a["last_updated"] == nil {
		t.Errorf("aggregate item: %v", a)
	}
	for _, sortBy := range []string{"last_modified", "creation_time"} {
		var walked []string
		cursor := ""
		for i := 0; ; i++ {
			if i > 3 {
				t.Fatal("aggregates cursor walk does not end")
			}
			var p aggPage
			n.getJSON(t, "/api/v0/aggregates.json?pagination=1&sortBy="+sortBy+"&cursor="+url.QueryEscape(cursor), http.StatusOK, &p)
			walked = append(walked, keysOf(p)...)
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
		if !sameSet(walked, []string{profile, settings}) || len(walked) != 2 {
			t.Errorf("aggregates cursor walk (%s): %v", sortBy, walked)
		}
	}
	var p2 aggPage
	n.getJSON(t, "/api/v0/aggregates.json?pagination=1&page=2", http.StatusOK, &p2)
	if !slices.Equal(keysOf(p2), []string{settings}) || *p2.PaginationTotal != 2 {
		t.Errorf("aggregates page 2: %v", keysOf(p2))
	}
	for _, q := range []string{"pagination=0", "pagination=501", "sortBy=name", "sortOrder=x", "page=0", "cursor=xx", "cursor=&pagination=0"} {
		n.getJSON(t, "/api/v0/aggregates.json?"+q, http.StatusUnprocessableEntity, nil)
	}
}

func testAddresses(t *testing.T, n *node, d *dataset) {
	type stats struct {
		Messages, Aggregate, Forget, Instance, Post, Program, Store int
	}
	wantA := stats{Messages: 6, Aggregate: 3, Post: 2, Store: 1}
	wantB := stats{Messages: 3, Post: 1, Store: 1, Forget: 1}
	for _, q := range []string{
		"addresses[]=" + d.a + "&addresses[]=" + d.b,
		"addresses=" + d.a + "," + d.b,
		"addresses%5B%5D=" + d.a + "&addresses=" + d.b,
	} {
		var v0 struct {
			Data map[string]stats `json:"data"`
		}
		n.getJSON(t, "/api/v0/addresses/stats.json?"+q, http.StatusOK, &v0)
		if len(v0.Data) != 2 || v0.Data[d.a] != wantA || v0.Data[d.b] != wantB {
			t.Errorf("v0 stats ?%s: %+v", q, v0.Data)
		}
	}
	var allStats struct {
		Data map[string]stats `json:"data"`
	}
	n.getJSON(t, "/api/v0/addresses/stats.json", http.StatusOK, &allStats)
	if len(allStats.Data) != 4 {
		t.Errorf("stats of every address: %v", allStats.Data)
	}

	type v1Page struct {
		Data            orderedKeys `json:"data"`
		PaginationTotal *int        `json:"pagination_total"`
		NextCursor      *string     `json:"next_cursor"`
	}
	var v1 v1Page
	n.getJSON(t, "/api/v1/addresses/stats.json", http.StatusOK, &v1)
	if len(v1.Data) != 4 || v1.Data[0] != d.a || v1.Data[1] != d.b || *v1.PaginationTotal != 4 {
		t.Errorf("v1 by total: %v", v1.Data)
	}
	v1 = v1Page{}
	n.getJSON(t, "/api/v1/addresses/stats.json?sortBy=forget&pagination=1", http.StatusOK, &v1)
	if len(v1.Data) != 1 || v1.Data[0] != d.b {
		t.Errorf("v1 by forget: %v", v1.Data)
	}
	v1 = v1Page{}
	n.getJSON(t, "/api/v1/addresses/stats.json?addressContains="+strings.ToUpper(d.b[2:10]), http.StatusOK, &v1)
	if len(v1.Data) != 1 || v1.Data[0] != d.b {
		t.Errorf("v1 addressContains: %v", v1.Data)
	}
	var walked []string
	cursor := ""
	for i := 0; ; i++ {
		if i > 5 {
			t.Fatal("address cursor walk does not end")
		}
		var p v1Page
		n.getJSON(t, "/api/v1/addresses/stats.json?pagination=3&cursor="+url.QueryEscape(cursor), http.StatusOK, &p)
		walked = append(walked, p.Data...)
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	if len(walked) != 4 || walked[0] != d.a {
		t.Errorf("address cursor walk: %v", walked)
	}
	for _, q := range []string{"sortBy=size", "addressContains=" + strings.Repeat("a", 67), "page=0", "cursor=zz"} {
		n.getJSON(t, "/api/v1/addresses/stats.json?"+q, http.StatusUnprocessableEntity, nil)
	}

	var pt struct {
		Address   string   `json:"address"`
		PostTypes []string `json:"post_types"`
	}
	n.getJSON(t, "/api/v0/addresses/"+d.a+"/post_types", http.StatusOK, &pt)
	if pt.Address != d.a || !slices.Contains(pt.PostTypes, "blog") {
		t.Errorf("post_types: %+v", pt)
	}
	var ch struct {
		Address  string   `json:"address"`
		Channels []string `json:"channels"`
	}
	n.getJSON(t, "/api/v0/addresses/"+d.a+"/channels", http.StatusOK, &ch)
	if ch.Address != d.a || !slices.Equal(ch.Channels, []string{"FILES", "TEST"}) {
		t.Errorf("address channels: %+v", ch)
	}
	n.getJSON(t, "/api/v0/addresses/nobody/channels", http.StatusOK, &ch)
	if ch.Channels == nil || len(ch.Channels) != 0 {
		t.Errorf("unknown address channels: %+v", ch)
	}
	var list struct {
		Channels []string `json:"channels"`
	}
	n.getJSON(t, "/api/v0/channels/list.json", http.StatusOK, &list)
	if !slices.Equal(sorted(list.Channels), []string{"FILES", "OTHER", "TEST"}) {
		t.Errorf("channels: %v", list.Channels)
	}
	for _, path := range []string{"/api/v0/version", "/version"} {
		var v map[string]string
		n.getJSON(t, path, http.StatusOK, &v)
		if v["version"] != "go-aleph-test" {
			t.Errorf("%s: %v", path, v)
		}
	}
	var info map[string][]string
	n.getJSON(t, "/api/v0/info/public.json", http.StatusOK, &info)
	if !slices.Equal(info["node_multi_addresses"], []string{"/ip4/127.0.0.1/tcp/4025/p2p/QmTest"}) {
		t.Errorf("public info: %v", info)
	}
}
