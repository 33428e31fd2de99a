package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

type messagesPage struct {
	Messages          []map[string]any `json:"messages"`
	PaginationPage    *int             `json:"pagination_page"`
	PaginationTotal   *int             `json:"pagination_total"`
	PaginationPerPage *int             `json:"pagination_per_page"`
	PaginationItem    *string          `json:"pagination_item"`
	NextCursor        *string          `json:"next_cursor"`
}

func hashesOf(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, m := range items {
		out[i], _ = m["item_hash"].(string)
	}
	return out
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

func sameSet(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }

// TestSeeded runs the read endpoints against one node per store backend, seeded
// with real, processed messages.
func TestSeeded(t *testing.T) { backends(t, testSeeded) }

func testSeeded(t *testing.T, backend string) {
	n := newNodeOn(t, backend, api.Config{})
	d := seed(t, n)
	t.Run("filters", func(t *testing.T) { testMessageFilters(t, n, d) })
	t.Run("content formats", func(t *testing.T) { testContentFormats(t, n, d) })
	t.Run("pagination", func(t *testing.T) { testMessagePagination(t, n, d) })
	t.Run("message by hash", func(t *testing.T) { testMessageByHash(t, n, d) })
	t.Run("hashes", func(t *testing.T) { testMessageHashes(t, n, d) })
	t.Run("posts", func(t *testing.T) { testPosts(t, n, d) })
	t.Run("aggregates", func(t *testing.T) { testAggregates(t, n, d) })
	t.Run("addresses", func(t *testing.T) { testAddresses(t, n, d) })
	t.Run("ts sdk", func(t *testing.T) { testTSSDKShapes(t, n, d) })
	t.Run("head", func(t *testing.T) { testHead(t, n, d) })
	t.Run("hammer", func(t *testing.T) { testHammer(t, n, d) })
	n.noInternalErrors(t)
}

func testMessageFilters(t *testing.T, n *node, d *dataset) {
	all := d.processed
	except := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(h string) bool { return slices.Contains(drop, h) })
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", all},
		{"msgTypes=POST", []string{d.p1, d.p2, d.p3, d.p4, d.p5}},
		{"msgTypes=post", []string{d.p1, d.p2, d.p3, d.p4, d.p5}},
		{"msgType=AGGREGATE", []string{d.a1, d.a2, d.a3}},
		{"msgTypes=STORE,FORGET", []string{d.s1, d.s2, d.f1}},
		{"msgType=FORGET&msgTypes=STORE", []string{d.s1, d.s2, d.f1}},
		{"msgTypes=INSTANCE", nil},
		{"msgStatuses=processed", all},
		{"msgStatuses=removing", nil},
		{"msgStatuses=pending", nil},
		{"addresses=" + d.b, []string{d.p2, d.s1, d.f1}},
		{"addresses=" + d.b + "," + d.s, []string{d.p2, d.s1, d.f1, d.p3}},
		{"owners=" + d.a, []string{d.p1, d.a1, d.a2, d.a3, d.s2, d.p5}},
		{"refs=ext-ref", []string{d.p2}},
		{"refs=" + d.p1, []string{d.p5}},
		{"refs=doc", []string{d.s2}},
		{"contentHashes=" + d.fileHello, []string{d.s1}},
		{"contentKeys=profile", []string{d.a1, d.a3}},
		{"contentKeys=profile,settings", []string{d.a1, d.a2, d.a3}},
		{"contentTypes=blog", []string{d.p1, d.p3, d.p4}},
		{"contentTypes=amend", []string{d.p5}},
		{"chains=SOL", []string{d.p3}},
		{"chains=BASE", []string{d.p4}},
		{"chains=ETH", except(d.p3, d.p4)},
		{"channels=OTHER", []string{d.p2}},
		{"channels=FILES,OTHER", []string{d.p2, d.s1, d.s2}},
		{"tags=x", []string{d.p1, d.a2}},
		{"tags=n,nothing", []string{d.p2}},
		{"hashes=" + d.p1 + "," + d.s1, []string{d.p1, d.s1}},
		{"hashes=" + d.p6, nil}, // forgotten
		{"paymentTypes=credit", []string{d.s2}},
		{"paymentTypes=hold", []string{d.s1}},
		{"startDate=" + ff(d.times[d.a1]) + "&endDate=" + ff(d.times[d.s1]), []string{d.a1, d.a2, d.a3}},
		{"startDate=" + ff(d.times[d.p5]), []string{d.p5, d.f1}},
		{"endDate=" + ff(d.times[d.p2]), []string{d.p1}},
		{"startBlock=5", nil},
		{"msgTypes=POST&addresses=" + d.a + "&channels=TEST", []string{d.p1, d.p5}},
		{"sortBy=tx-time", all},
		{"sortBy=time&unknownFilter=whatever", all},
		{"tags=", all}, // an empty list does not filter
	}
	for _, tt := range tests {
		var page messagesPage
		n.getJSON(t, "/api/v0/messages.json?pagination=100&"+tt.query, http.StatusOK, &page)
		if got := hashesOf(page.Messages); !sameSet(got, tt.want) {
			t.Errorf("?%s: got %d messages %v, want %v", tt.query, len(got), got, tt.want)
		}
		if page.PaginationTotal == nil || *page.PaginationTotal != len(tt.want) {
			t.Errorf("?%s: pagination_total %v, want %d", tt.query, page.PaginationTotal, len(tt.want))
		}
	}

	// Sort orders: newest first by default, oldest first with sortOrder=1.
	var desc, asc messagesPage
	n.getJSON(t, "/api/v0/messages.json", http.StatusOK, &desc)
	n.getJSON(t, "/api/v0/messages.json?sortOrder=1", http.StatusOK, &asc)
	want := slices.Clone(all)
	if !slices.Equal(hashesOf(asc.Messages), want) {
		t.Errorf("sortOrder=1: %v, want %v", hashesOf(asc.Messages), want)
	}
	slices.Reverse(want)
	if !slices.Equal(hashesOf(desc.Messages), want) {
		t.Errorf("default order: %v, want %v", hashesOf(desc.Messages), want)
	}
	if *desc.PaginationPerPage != 20 || *desc.PaginationPage != 1 || *desc.PaginationItem != "messages" {
		t.Errorf("default page fields: %+v", desc)
	}
}

func testContentFormats(t *testing.T, n *node, d *dataset) {
	get := func(q string) map[string]any {
		var page messagesPage
		n.getJSON(t, "/api/v0/messages.json?"+q, http.StatusOK, &page)
		if len(page.Messages) != 1 {
			t.Fatalf("?%s: %d messages", q, len(page.Messages))
		}
		return page.Messages[0]
	}
	full := get("hashes=" + d.p2)
	if c, ok := full["content"].(map[string]any); !ok || c["type"] != "note" || c["content"] == nil {
		t.Errorf("full content: %v", full["content"])
	}
	headers := get("contentFormat=headers&hashes=" + d.p2)
	wantHeaders := map[string]any{"address": d.b, "type": "note", "ref": "ext-ref"}
	if c, _ := headers["content"].(map[string]any); fmt.Sprint(c) != fmt.Sprint(wantHeaders) {
		t.Errorf("headers content: %v, want %v", c, wantHeaders)
	}
	if c, _ := get("contentFormat=headers&hashes=" + d.a1)["content"].(map[string]any); fmt.Sprint(c) != fmt.Sprint(map[string]any{"address": d.a, "key": "profile"}) {
		t.Errorf("aggregate headers: %v", c)
	}
	if c, _ := get("contentFormat=headers&hashes=" + d.s1)["content"].(map[string]any); c["item_hash"] != d.fileHello || c["address"] != d.b {
		t.Errorf("store headers: %v", c)
	}
	for _, q := range []string{"contentFormat=none", "excludeContent=true", "excludeContent=1&contentFormat=full"} {
		m := get(q + "&hashes=" + d.p2)
		if _, has := m["content"]; has {
			t.Errorf("?%s still has content", q)
		}
		if m["item_content"] == nil || m["item_hash"] != d.p2 {
			t.Errorf("?%s lost envelope fields: %v", q, m)
		}
	}
}

func testMessagePagination(t *testing.T, n *node, d *dataset) {
	// Page mode: walk every page, through both URL forms.
	for _, form := range []string{"/api/v0/messages.json?page=%d&", "/api/v0/messages/page/%d.json?"} {
		var got []string
		for page := 1; page <= 4; page++ {
			var p messagesPage
			n.getJSON(t, fmt.Sprintf(form, page)+"pagination=3&sortOrder=1", http.StatusOK, &p)
			if *p.PaginationPage != page || *p.PaginationPerPage != 3 || *p.PaginationTotal != len(d.processed) {
				t.Errorf("%s page %d: page %d per %d total %d", form, page, *p.PaginationPage, *p.PaginationPerPage, *p.PaginationTotal)
			}
			got = append(got, hashesOf(p.Messages)...)
		}
		if !slices.Equal(got, d.processed) {
			t.Errorf("%s: walked %v, want %v", form, got, d.processed)
		}
	}
	// pyaleph's short-page rule; a page past the end is counted, not estimated.
	var past messagesPage
	n.getJSON(t, "/api/v0/messages.json?pagination=3&page=9", http.StatusOK, &past)
	if len(past.Messages) != 0 || *past.PaginationTotal != len(d.processed) {
		t.Errorf("page past the end: %d messages, total %d", len(past.Messages), *past.PaginationTotal)
	}
	// pagination=0 lists everything.
	var everything messagesPage
	n.getJSON(t, "/api/v0/messages.json?pagination=0", http.StatusOK, &everything)
	if len(everything.Messages) != len(d.processed) {
		t.Errorf("pagination=0: %d messages", len(everything.Messages))
	}

	// Cursor mode, both orders, with a filter.
	for _, order := range []int{1, -1} {
		want := slices.Clone(d.processed)
		if order == -1 {
			slices.Reverse(want)
		}
		var got []string
		cursor := ""
		for i := 0; ; i++ {
			if i > len(want) {
				t.Fatal("cursor walk does not end")
			}
			var p messagesPage
			n.getJSON(t, fmt.Sprintf("/api/v0/messages.json?pagination=4&sortOrder=%d&cursor=%s", order, url.QueryEscape(cursor)), http.StatusOK, &p)
			if p.PaginationTotal != nil || p.PaginationPage != nil || *p.PaginationPerPage != 4 {
				t.Errorf("cursor page has page-mode fields: %+v", p)
			}
			got = append(got, hashesOf(p.Messages)...)
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
		if !slices.Equal(got, want) {
			t.Errorf("cursor walk order %d: %v, want %v", order, got, want)
		}
	}
	var posts messagesPage
	n.getJSON(t, "/api/v0/messages.json?cursor=&pagination=2&msgTypes=POST&sortOrder=1", http.StatusOK, &posts)
	if !slices.Equal(hashesOf(posts.Messages), []string{d.p1, d.p2}) || posts.NextCursor == nil {
		t.Errorf("filtered cursor page: %v next %v", hashesOf(posts.Messages), posts.NextCursor)
	}
	var rest messagesPage
	n.getJSON(t, "/api/v0/messages.json?pagination=200&msgTypes=POST&sortOrder=1&cursor="+*posts.NextCursor, http.StatusOK, &rest)
	if !slices.Equal(hashesOf(rest.Messages), []string{d.p3, d.p4, d.p5}) || rest.NextCursor != nil {
		t.Errorf("rest of filtered cursor walk: %v next %v", hashesOf(rest.Messages), rest.NextCursor)
	}
	// Cursor-mode limits.
	for _, q := range []string{"cursor=&pagination=0", "cursor=&sortBy=tx-time", "cursor=notbase64!", "cursor=e30"} {
		code, body, _ := n.raw(t, http.MethodGet, "/api/v0/messages.json?"+q, "", nil)
		if code != http.StatusUnprocessableEntity {
			t.Errorf("?%s: %d %s", q, code, body)
		}
	}
	var capped messagesPage
	n.getJSON(t, "/api/v0/messages.json?cursor=&pagination=5000", http.StatusOK, &capped)
	if *capped.PaginationPerPage != 200 {
		t.Errorf("cursor pagination not capped: %d", *capped.PaginationPerPage)
	}
}

func testMessageByHash(t *testing.T, n *node, d *dataset) {
	// Processed: the full message object, with the original time text.
	code, raw, _ := n.raw(t, http.MethodGet, "/api/v0/messages/"+d.p1, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET processed: %d %s", code, raw)
	}
	if !bytes.Contains(raw, []byte(`"time":1700000000.5`)) {
		t.Errorf("time text not kept: %s", clipBody(raw))
	}
	var got struct {
		Status        string         `json:"status"`
		ItemHash      string         `json:"item_hash"`
		ReceptionTime string         `json:"reception_time"`
		Message       map[string]any `json:"message"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "processed" || got.ItemHash != d.p1 || !strings.HasSuffix(got.ReceptionTime, "+00:00") {
		t.Errorf("head: %+v", got)
	}
	keys := make([]string, 0, len(got.Message))
	for k := range got.Message {
		keys = append(keys, k)
	}
	wantKeys := []string{"chain", "channel", "confirmations", "confirmed", "content", "item_content", "item_hash", "item_type", "sender", "signature", "size", "time", "type"}
	if !slices.Equal(sorted(keys), wantKeys) {
		t.Errorf("message keys %v, want %v", sorted(keys), wantKeys)
	}
	ic, _ := got.Message["item_content"].(string)
	if message.HashContent([]byte(ic)) != d.p1 || got.Message["size"] != float64(len(ic)) {
		t.Errorf("item_content not verbatim or size wrong: %v", got.Message["size"])
	}
	if got.Message["confirmed"] != false || fmt.Sprint(got.Message["confirmations"]) != "[]" || got.Message["chain"] != "ETH" || got.Message["channel"] != "TEST" {
		t.Errorf("message fields: %v", got.Message)
	}

	// Forgotten: a skeleton with item_hash and forgotten_by.
	var fg struct {
		Status      string         `json:"status"`
		Message     map[string]any `json:"message"`
		ForgottenBy []string       `json:"forgotten_by"`
	}
	n.getJSON(t, "/api/v0/messages/"+d.p6, http.StatusOK, &fg)
	if fg.Status != "forgotten" || fg.Message["item_hash"] != d.p6 || !slices.Equal(fg.ForgottenBy, []string{d.f1}) {
		t.Errorf("forgotten: %+v", fg)
	}

	// Status endpoint.
	var st map[string]any
	n.getJSON(t, "/api/v0/messages/"+d.p6+"/status", http.StatusOK, &st)
	if st["status"] != "forgotten" || st["item_hash"] != d.p6 || st["reception_time"] == "" || len(st) != 3 {
		t.Errorf("status: %v", st)
	}

	// Content endpoint: inner content for POST, whole content otherwise.
	var inner map[string]any
	n.getJSON(t, "/api/v0/messages/"+d.p1+"/content", http.StatusOK, &inner)
	if inner["body"] != "first" {
		t.Errorf("POST content: %v", inner)
	}
	var whole map[string]any
	n.getJSON(t, "/api/v0/messages/"+d.a1+"/content", http.StatusOK, &whole)
	if whole["key"] != "profile" || whole["address"] != d.a {
		t.Errorf("AGGREGATE content: %v", whole)
	}

	for _, tt := range []struct {
		path string
		want int
	}{
		{"/api/v0/messages/" + d.p6 + "/content", http.StatusUnprocessableEntity},
		{"/api/v0/messages/" + strings.Repeat("0", 64), http.StatusNotFound},
		{"/api/v0/messages/" + strings.Repeat("0", 64) + "/status", http.StatusNotFound},
		{"/api/v0/messages/" + strings.Repeat("0", 64) + "/content", http.StatusNotFound},
		{"/api/v0/messages/nothex", http.StatusBadRequest},
		{"/api/v0/messages/" + strings.Repeat("G", 64), http.StatusBadRequest},
		{"/api/v0/messages/nothex/status", http.StatusBadRequest},
		{"/api/v0/messages/nothex/content", http.StatusBadRequest},
		{"/api/v0/messages/" + d.p1 + "/other", http.StatusNotFound},
	} {
		n.getJSON(t, tt.path, tt.want, nil)
	}
}

func testMessageHashes(t *testing.T, n *node, d *dataset) {
	var all struct {
		Hashes          []string `json:"hashes"`
		PaginationTotal int      `json:"pagination_total"`
		PaginationItem  string   `json:"pagination_item"`
	}
	n.getJSON(t, "/api/v0/messages/hashes?status=processed&pagination=0", http.StatusOK, &all)
	if !sameSet(all.Hashes, d.processed) || all.PaginationTotal != len(d.processed) || all.PaginationItem != "hashes" {
		t.Errorf("processed hashes: %v total %d", all.Hashes, all.PaginationTotal)
	}
	var fg struct{ Hashes []string }
	n.getJSON(t, "/api/v0/messages/hashes?status=forgotten", http.StatusOK, &fg)
	if !slices.Equal(fg.Hashes, []string{d.p6}) {
		t.Errorf("forgotten hashes: %v", fg.Hashes)
	}
	// Walk pages of 4 in reception order; reception follows submission order.
	var walked []string
	for page := 1; page <= 3; page++ {
		var p struct {
			Hashes          []string `json:"hashes"`
			PaginationTotal int      `json:"pagination_total"`
		}
		n.getJSON(t, fmt.Sprintf("/api/v0/messages/hashes?status=processed&pagination=4&page=%d&sortOrder=1", page), http.StatusOK, &p)
		if p.PaginationTotal != len(d.processed) {
			t.Errorf("page %d total %d", page, p.PaginationTotal)
		}
		walked = append(walked, p.Hashes...)
	}
	if !sameSet(walked, d.processed) || len(walked) != len(d.processed) {
		t.Errorf("hash pages: %v", walked)
	}
	var objs struct {
		Hashes []map[string]any `json:"hashes"`
	}
	n.getJSON(t, "/api/v0/messages/hashes?status=forgotten&hash_only=false", http.StatusOK, &objs)
	if len(objs.Hashes) != 1 || objs.Hashes[0]["item_hash"] != d.p6 || objs.Hashes[0]["status"] != "forgotten" {
		t.Errorf("hash_only=false: %v", objs.Hashes)
	}
	future := float64(time.Now().Add(time.Hour).Unix())
	var none struct{ Hashes []string }
	n.getJSON(t, "/api/v0/messages/hashes?startDate="+ff(future), http.StatusOK, &none)
	if none.Hashes == nil || len(none.Hashes) != 0 {
		t.Errorf("future start date: %v", none.Hashes)
	}
	for _, q := range []string{"status=bogus", "page=0", "pagination=-1", "sortOrder=2", "hash_only=maybe", "startDate=x"} {
		n.getJSON(t, "/api/v0/messages/hashes?"+q, http.StatusUnprocessableEntity, nil)
	}
}

// TestSubmit covers POST /api/v0/messages and the legacy pubsub endpoints.
func TestSubmit(t *testing.T) {
	n := newNode(t, api.Config{})
	acc := accounts(t, 2)

	// Sync: processed → 200.
	b := n.build(t, acc[0], message.TypePost, post("blog", `{"x":1}`, ""), "TEST")
	code, body := n.submit(t, b.Message, true)
	if code != http.StatusOK || body["message_status"] != "processed" {
		t.Fatalf("sync submit: %d %v", code, body)
	}
	if ps, _ := body["publication_status"].(map[string]any); ps["status"] != "success" || fmt.Sprint(ps["failed"]) != "[]" {
		t.Errorf("publication_status: %v", body["publication_status"])
	}
	// Again: already processed.
	if code, body := n.submit(t, b.Message, false); code != http.StatusOK || body["message_status"] != "processed" {
		t.Errorf("resubmit: %d %v", code, body)
	}

	// Async: 202 pending, then processed.
	b2 := n.build(t, acc[0], message.TypePost, post("blog", `{"x":2}`, ""), "TEST")
	wait, stop := n.bus.Await(b2.Message.ItemHash)
	defer stop()
	code, body = n.submit(t, b2.Message, false)
	if code != http.StatusAccepted || body["message_status"] != "pending" || body["item_hash"] != b2.Message.ItemHash {
		t.Fatalf("async submit: %d %v", code, body)
	}
	ctx, done := context.WithTimeout(context.Background(), 20*time.Second)
	defer done()
	select {
	case ev := <-wait:
		if ev.Kind != "processed" {
			t.Errorf("async message ended %s", ev.Kind)
		}
	case <-ctx.Done():
		t.Fatal("async message never processed")
	}

	// Sync rejection (permission denied: B posts for A) → 422 with the code.
	denied := post("blog", `{"x":3}`, "")
	denied.Address = acc[0].Address()
	b3 := n.build(t, acc[1], message.TypePost, denied, "TEST")
	code, body = n.submit(t, b3.Message, true)
	if code != http.StatusUnprocessableEntity || body["message_status"] != "rejected" || body["error_code"] != float64(message.CodePermissionDenied) || body["reason"] == "" {
		t.Errorf("rejected submit: %d %v", code, body)
	}
	var rj struct {
		Status    string          `json:"status"`
		ErrorCode int             `json:"error_code"`
		Details   json.RawMessage `json:"details"`
		Message   map[string]any  `json:"message"`
	}
	n.getJSON(t, "/api/v0/messages/"+b3.Message.ItemHash, http.StatusOK, &rj)
	if rj.Status != "rejected" || rj.ErrorCode != int(message.CodePermissionDenied) || rj.Message["item_hash"] != b3.Message.ItemHash || rj.Details == nil {
		t.Errorf("rejected message: %+v", rj)
	}

	// Pending: non-inline content that cannot be fetched stays queued.
	pb := &message.Builder{Signer: acc[0], Now: n.now, NoInline: true}
	pending, err := pb.Build(context.Background(), message.TypePost, post("blog", `{"x":4}`, ""), "TEST")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := n.submit(t, pending.Message, false); code != http.StatusAccepted {
		t.Fatalf("pending submit: %d %v", code, body)
	}
	var pm struct {
		Status   string           `json:"status"`
		Messages []map[string]any `json:"messages"`
	}
	n.getJSON(t, "/api/v0/messages/"+pending.Message.ItemHash, http.StatusOK, &pm)
	if pm.Status != "pending" || len(pm.Messages) != 1 || pm.Messages[0]["item_hash"] != pending.Message.ItemHash || pm.Messages[0]["item_type"] != "storage" {
		t.Errorf("pending message: %+v", pm)
	}

	// Envelope and body errors → 422 naming the problem; oversized → 413.
	good := envelope(t, n.build(t, acc[0], message.TypePost, post("blog", `{"x":5}`, ""), "TEST").Message)
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(map[string]any{"message": m})
		return b
	}
	tests := []struct {
		name  string
		body  []byte
		want  int
		field string
	}{
		{"malformed JSON", []byte(`{"message":`), 422, ""},
		{"not an object", []byte(`[1,2]`), 422, ""},
		{"missing message", []byte(`{"sync":true}`), 422, "message"},
		{"null message", []byte(`{"message":null}`), 422, "message"},
		{"message not an object", []byte(`{"message":"x"}`), 422, "message"},
		{"sync wrong type", []byte(`{"sync":[1],"message":{}}`), 422, "sync"},
		{"empty message", []byte(`{"message":{}}`), 422, "chain"},
		{"unknown chain", mutate(func(m map[string]any) { m["chain"] = "NOPE" }), 422, "chain"},
		{"bad hash", mutate(func(m map[string]any) { m["item_hash"] = "abc" }), 422, "item_hash"},
		{"hash mismatch", mutate(func(m map[string]any) { m["item_hash"] = strings.Repeat("a", 64) }), 422, "item_hash"},
		{"time as string", mutate(func(m map[string]any) { m["time"] = "now" }), 422, "time"},
		{"bad signature", mutate(func(m map[string]any) { m["signature"] = "0x" + strings.Repeat("1", 130) }), 422, ""},
		{"too large", append(append([]byte(`{"message":{"x":"`), bytes.Repeat([]byte("a"), 1<<20)...), `"}}`...), 413, ""},
	}
	for _, tt := range tests {
		code, body := n.do(t, http.MethodPost, "/api/v0/messages", "application/json", tt.body)
		if code != tt.want {
			t.Errorf("%s: status %d, want %d (%v)", tt.name, code, tt.want, body)
			continue
		}
		if body["error"] == nil {
			t.Errorf("%s: no error text: %v", tt.name, body)
		}
		if tt.want == 422 {
			if body["error_code"] == nil || body["message_status"] != "rejected" {
				t.Errorf("%s: no protocol code: %v", tt.name, body)
			}
			if tt.field != "" && body["field"] != tt.field {
				t.Errorf("%s: field %v, want %s", tt.name, body["field"], tt.field)
			}
		}
	}
	if code, body := n.do(t, http.MethodPost, "/api/v0/messages", "application/json", mutate(func(m map[string]any) { m["signature"] = "0x" + strings.Repeat("1", 130) })); body["error_code"] != float64(message.CodeInvalidSignature) {
		t.Errorf("bad signature code: %d %v", code, body)
	}

	// Legacy pubsub endpoints.
	pub := n.build(t, acc[0], message.TypePost, post("blog", `{"x":6}`, ""), "TEST")
	for i, path := range []string{"/api/v0/ipfs/pubsub/pub", "/api/v0/p2p/pubsub/pub"} {
		m := pub.Message
		if i == 1 {
			m = n.build(t, acc[0], message.TypePost, post("blog", `{"x":7}`, ""), "TEST").Message
		}
		data := string(envelope(t, m))
		body, _ := json.Marshal(map[string]any{"topic": "ALEPH-TEST", "data": data})
		if code, resp := n.do(t, http.MethodPost, path, "application/json", body); code != http.StatusOK || resp["status"] != "success" {
			t.Errorf("%s: %d %v", path, code, resp)
		}
		for _, tt := range []struct {
			body string
			want int
		}{
			{`{"topic":"OTHER","data":"{}"}`, 403},
			{`{"topic":"ALEPH-TEST","data":` + data + `}`, 422}, // an object, as the TS SDK sends it
			{`{"topic":"ALEPH-TEST","data":"{\"chain\":\"ETH\"}"}`, 422},
			{`{"topic":"ALEPH-TEST","data":"not json"}`, 422},
			{`{"topic":"ALEPH-TEST"}`, 422},
			{`{"data":"x"}`, 422},
			{`{"topic":5,"data":"x"}`, 422},
			{`nope`, 422},
		} {
			if code, resp := n.do(t, http.MethodPost, path, "application/json", []byte(tt.body)); code != tt.want {
				t.Errorf("%s %s: %d %v, want %d", path, tt.body, code, resp, tt.want)
			}
		}
	}
	n.noInternalErrors(t)
}

// TestRemovingAndRemoved covers the statuses only the balance cron and the
// garbage collector reach, written directly into the store.
func TestRemovingAndRemoved(t *testing.T) {
	n := newNode(t, api.Config{})
	acc := accounts(t, 1)
	h1 := n.mustProcess(t, n.build(t, acc[0], message.TypePost, post("blog", `{"x":1}`, ""), "TEST"))
	h2 := n.mustProcess(t, n.build(t, acc[0], message.TypePost, post("blog", `{"x":2}`, ""), "TEST"))
	h3 := n.mustProcess(t, n.build(t, acc[0], message.TypePost, post("blog", `{"x":3}`, ""), "TEST"))
	n.update(t, func(ctx context.Context, tx store.Tx) error {
		if err := tx.SetMessageStatus(ctx, h1, message.StatusRemoving); err != nil {
			return err
		}
		rec, err := tx.GetStatus(ctx, h1)
		if err != nil {
			return err
		}
		rec.Status = message.StatusRemoving
		if err := tx.SetStatus(ctx, rec); err != nil {
			return err
		}
		if err := tx.DeleteMessage(ctx, h2); err != nil {
			return err
		}
		rec2, err := tx.GetStatus(ctx, h2)
		if err != nil {
			return err
		}
		rec2.Status = message.StatusRemoved
		return tx.SetStatus(ctx, rec2)
	})
	var rm map[string]any
	n.getJSON(t, "/api/v0/messages/"+h1, http.StatusOK, &rm)
	if rm["status"] != "removing" || rm["message"].(map[string]any)["item_hash"] != h1 {
		t.Errorf("removing: %v", rm)
	}
	if _, ok := rm["reason"]; !ok {
		t.Errorf("removing without reason: %v", rm)
	}
	n.getJSON(t, "/api/v0/messages/"+h2, http.StatusGone, nil)

	for _, tt := range []struct {
		q    string
		want []string
	}{
		{"", []string{h1, h3}},
		{"msgStatuses=processed", []string{h3}},
		{"msgStatuses=removing", []string{h1}},
		{"msgStatuses=processed,removing", []string{h1, h3}},
	} {
		var p messagesPage
		n.getJSON(t, "/api/v0/messages.json?"+tt.q, http.StatusOK, &p)
		if !sameSet(hashesOf(p.Messages), tt.want) {
			t.Errorf("?%s: %v, want %v", tt.q, hashesOf(p.Messages), tt.want)
		}
	}
	// Skeleton listings: removed has no snapshot; forgotten must be alone and
	// without content filters.
	n.getJSON(t, "/api/v0/messages.json?msgStatuses=removed", http.StatusBadRequest, nil)
	n.getJSON(t, "/api/v0/messages.json?msgStatuses=forgotten,processed", http.StatusUnprocessableEntity, nil)
	n.getJSON(t, "/api/v0/messages.json?msgStatuses=forgotten&tags=x", http.StatusBadRequest, nil)
	n.noInternalErrors(t)
}
