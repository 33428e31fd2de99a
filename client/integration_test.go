package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// These tests run every call against a real go-aleph node (in process, SQLite in
// a temporary directory, HTTP on 127.0.0.1).

func newAccount(t *testing.T) *evm.Account {
	t.Helper()
	a, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// processed returns a checker for write results: the write succeeded and the
// node processed the message.
func processed(t *testing.T) func(*client.WriteResult, error) *client.WriteResult {
	return func(w *client.WriteResult, err error) *client.WriteResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if w.Status != message.StatusProcessed {
			t.Fatalf("message %s: status %s (http %d): %s", w.ItemHash, w.Status, w.HTTPStatus, w.Raw)
		}
		return w
	}
}

func TestIntegrationReadsAndWrites(t *testing.T) {
	mustWrite := processed(t)
	base := nodetest.Start(t)
	ctx := testCtx(t)
	owner := newAccount(t)
	c := client.New(base, client.WithSigner(owner))
	sync := client.WriteOptions{Channel: "GO-TEST", Sync: true}

	v, err := c.Version(ctx)
	if err != nil || v == "" {
		t.Fatalf("Version = %q, %v", v, err)
	}

	// A post, read back every way.
	post := mustWrite(c.CreatePost(ctx, "blog", map[string]any{"title": "first", "tags": []string{"go"}}, "", sync))
	res, err := c.GetMessage(ctx, post.ItemHash)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != message.StatusProcessed || res.Err() != nil || res.Message == nil || res.ReceptionTime.IsZero() {
		t.Fatalf("GetMessage %+v", res)
	}
	m := res.Message
	if m.ItemHash != post.ItemHash || m.Sender != owner.Address() || m.Channel != "GO-TEST" || m.ItemContent != string(post.Content) ||
		m.Time.String() != post.Message.Time.String() || m.Size != int64(len(post.Content)) || m.Signature != post.Message.Signature {
		t.Errorf("served message differs from the sent one: %s", m.Raw)
	}
	var content struct {
		Type    string          `json:"type"`
		Address string          `json:"address"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(m.Content, &content); err != nil || content.Type != "blog" || content.Address != owner.Address() {
		t.Errorf("content %s: %v", m.Content, err)
	}
	if got, err := c.GetProcessedMessage(ctx, post.ItemHash); err != nil || got.ItemHash != post.ItemHash {
		t.Errorf("GetProcessedMessage = %v, %v", got, err)
	}
	st, err := c.MessageStatus(ctx, post.ItemHash)
	if err != nil || st.Status != message.StatusProcessed || st.ItemHash != post.ItemHash {
		t.Errorf("MessageStatus = %+v, %v", st, err)
	}
	inner, err := c.MessageContent(ctx, post.ItemHash)
	if err != nil || compact(t, inner) != `{"tags":["go"],"title":"first"}` {
		t.Errorf("MessageContent = %s, %v", inner, err)
	}
	if _, err := c.GetMessage(ctx, strings.Repeat("0", 64)); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown hash: %v, want ErrNotFound", err)
	}
	if _, err := c.MessageStatus(ctx, strings.Repeat("0", 64)); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown hash status: %v, want ErrNotFound", err)
	}

	// An amend replaces the content; posts views fold it into the original.
	amend := mustWrite(c.AmendPost(ctx, post.ItemHash, map[string]string{"title": "second"}, sync))
	p, err := c.GetPost(ctx, post.ItemHash)
	if err != nil {
		t.Fatal(err)
	}
	if p.ItemHash != amend.ItemHash || p.OriginalItemHash != post.ItemHash || p.OriginalType != "blog" || compact(t, p.Content) != `{"title":"second"}` || p.Address != owner.Address() {
		t.Errorf("GetPost %s", p.Raw)
	}
	v1, err := c.GetPostsV1(ctx, client.PostFilter{Hashes: []string{post.ItemHash}}, client.Page{})
	if err != nil || len(v1.Posts) != 1 {
		t.Fatalf("GetPostsV1 = %+v, %v", v1, err)
	}
	if q := v1.Posts[0]; q.OriginalItemHash != post.ItemHash || q.ItemHash != amend.ItemHash || compact(t, q.Content) != `{"title":"second"}` || q.Created.IsZero() || q.LastUpdated.IsZero() {
		t.Errorf("v1 post %+v", q)
	}
	posts, err := c.GetPosts(ctx, client.PostFilter{Addresses: []string{owner.Address()}, Types: []string{"blog"}}, client.Page{Number: 1, Size: 10})
	if err != nil || len(posts.Posts) != 1 || posts.Total != 1 || posts.Item != "posts" {
		t.Errorf("GetPosts = %+v, %v", posts, err)
	}
	if _, err := c.GetPost(ctx, strings.Repeat("1", 64)); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("GetPost of nothing = %v, want ErrNotFound", err)
	}

	// Aggregates merge top-level keys.
	mustWrite(c.CreateAggregate(ctx, "profile", map[string]any{"name": "alice", "age": 30}, sync))
	mustWrite(c.CreateAggregate(ctx, "profile", map[string]any{"age": 31}, sync))
	mustWrite(c.CreateAggregate(ctx, "settings", map[string]any{"theme": "dark"}, sync))
	got, err := c.GetAggregate(ctx, owner.Address(), "profile")
	if err != nil || compact(t, got) != `{"age":31,"name":"alice"}` {
		t.Errorf("GetAggregate = %s, %v", got, err)
	}
	aggs, err := c.GetAggregates(ctx, owner.Address(), client.AggregateQuery{WithInfo: true})
	if err != nil || len(aggs.Data) != 2 || aggs.Address != owner.Address() || len(aggs.Info) != 2 || aggs.Info["profile"].Created.IsZero() {
		t.Errorf("GetAggregates = %+v, %v", aggs, err)
	}
	if _, err := c.GetAggregate(ctx, owner.Address(), "nothing"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("missing key = %v, want ErrNotFound", err)
	}
	if _, err := c.GetAggregates(ctx, newAccount(t).Address(), client.AggregateQuery{}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("address without aggregates = %v, want ErrNotFound", err)
	}
	list, err := c.ListAggregates(ctx, client.AggregateFilter{Addresses: []string{owner.Address()}, SortBy: "creation_time", SortOrder: client.Ascending}, client.Page{Number: 1, Size: 10})
	if err != nil || len(list.Aggregates) != 2 || list.Aggregates[0].Key != "profile" || list.Aggregates[1].Key != "settings" {
		t.Errorf("ListAggregates = %+v, %v", list, err)
	}

	// Statistics, channels, address views.
	stats, err := c.AddressStats(ctx, []string{owner.Address()})
	if err != nil || stats[owner.Address()].Post != 2 || stats[owner.Address()].Aggregate != 3 || stats[owner.Address()].Messages != 5 {
		t.Errorf("AddressStats = %+v, %v", stats, err)
	}
	channels, err := c.Channels(ctx)
	if err != nil || !slices.Contains(channels, "GO-TEST") {
		t.Errorf("Channels = %v, %v", channels, err)
	}
	if pt, err := c.AddressPostTypes(ctx, owner.Address()); err != nil || !slices.Contains(pt, "blog") {
		t.Errorf("AddressPostTypes = %v, %v", pt, err)
	}
	if ch, err := c.AddressChannels(ctx, owner.Address()); err != nil || !slices.Equal(ch, []string{"GO-TEST"}) {
		t.Errorf("AddressChannels = %v, %v", ch, err)
	}

	// Forget the post: it becomes a typed ForgottenError.
	fg := mustWrite(c.Forget(ctx, client.ForgetTargets{Hashes: []string{post.ItemHash}, Reason: "test"}, sync))
	res, err = c.GetMessage(ctx, post.ItemHash)
	if err != nil {
		t.Fatal(err)
	}
	var fe *client.ForgottenError
	if !errors.As(res.Err(), &fe) || !slices.Contains(fe.ForgottenBy, fg.ItemHash) || res.Status != message.StatusForgotten {
		t.Errorf("forgotten post: %+v, Err %v", res, res.Err())
	}
	if _, err := c.GetProcessedMessage(ctx, post.ItemHash); !errors.As(err, &fe) {
		t.Errorf("GetProcessedMessage of a forgotten message = %v", err)
	}

	// Forget a whole aggregate: its key must look like an item hash.
	hashKey := strings.Repeat("ab", 32)
	mustWrite(c.CreateAggregate(ctx, hashKey, map[string]int{"x": 1}, sync))
	mustWrite(c.Forget(ctx, client.ForgetTargets{Aggregates: []string{hashKey}}, sync))
	if _, err := c.GetAggregate(ctx, owner.Address(), hashKey); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("forgotten aggregate = %v, want ErrNotFound", err)
	}
	if _, err := c.Forget(ctx, client.ForgetTargets{Aggregates: []string{"profile"}}, sync); !errors.Is(err, client.ErrAggregateKeyNotHash) {
		t.Errorf("forget of a plain key = %v, want ErrAggregateKeyNotHash", err)
	}

	// Asynchronous submission answers pending; the message is processed soon.
	async := client.WriteOptions{Channel: "GO-TEST"}
	w, err := c.CreatePost(ctx, "note", "async", "", async)
	if err != nil || w.Status != message.StatusPending || w.HTTPStatus != 202 {
		t.Fatalf("async post: %+v, %v", w, err)
	}
	waitProcessed(t, c, w.ItemHash)
}

// waitProcessed watches for the message (the websocket's history covers a
// message processed before the subscription).
func waitProcessed(t *testing.T, c *client.Client, h string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	watch, err := c.WatchMessages(ctx, client.WatchFilter{MessageFilter: client.MessageFilter{Hashes: []string{h}}, History: intPtr(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	m, err := watch.Next(ctx)
	if err != nil || m.ItemHash != h {
		t.Fatalf("waiting for %s: %v, %v", h, m, err)
	}
}

func intPtr(n int) *int { return &n }

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := json.Marshal(v) // sorted keys
	return string(b)
}

func TestIntegrationRejections(t *testing.T) {
	mustWrite := processed(t)
	base := nodetest.Start(t)
	ctx := testCtx(t)
	owner, delegate, stranger := newAccount(t), newAccount(t), newAccount(t)
	oc := client.New(base, client.WithSigner(owner))
	sync := client.WriteOptions{Sync: true}

	// Acting for another address without its authorization: PERMISSION_DENIED.
	sc := client.New(base, client.WithSigner(stranger))
	w, err := sc.CreatePost(ctx, "blog", "hi", "", client.WriteOptions{Address: owner.Address(), Sync: true})
	var rej *client.RejectedError
	if !errors.As(err, &rej) || rej.Code != message.CodePermissionDenied || rej.ItemHash != w.ItemHash || rej.StatusCode != 422 {
		t.Fatalf("unauthorized post: %v", err)
	}
	if message.CodeOf(err) != message.CodePermissionDenied {
		t.Errorf("CodeOf = %v", message.CodeOf(err))
	}
	// The rejection is readable afterwards.
	res, err := oc.GetMessage(ctx, w.ItemHash)
	if err != nil || res.Status != message.StatusRejected || res.ErrorCode != message.CodePermissionDenied || !errors.As(res.Err(), &rej) {
		t.Errorf("rejected message read back: %+v, %v", res, err)
	}

	// A delegation through the security aggregate lets the delegate post.
	list, err := oc.Authorizations(ctx, owner.Address())
	if err != nil || len(list) != 0 {
		t.Fatalf("Authorizations before = %v, %v", list, err)
	}
	mustWrite(oc.SetAuthorizations(ctx, []client.Authorization{{Address: delegate.Address(), Types: []message.Type{message.TypePost}, PostTypes: []string{"blog"}}}, sync))
	list, err = oc.Authorizations(ctx, owner.Address())
	if err != nil || len(list) != 1 || list[0].Address != delegate.Address() || !slices.Equal(list[0].PostTypes, []string{"blog"}) {
		t.Fatalf("Authorizations after = %+v, %v", list, err)
	}
	dc := client.New(base, client.WithSigner(delegate))
	onBehalf := client.WriteOptions{Address: owner.Address(), Sync: true}
	mustWrite(dc.CreatePost(ctx, "blog", "by the delegate", "", onBehalf))
	if _, err := dc.CreatePost(ctx, "news", "wrong post type", "", onBehalf); !errors.As(err, &rej) || rej.Code != message.CodePermissionDenied {
		t.Errorf("post type outside the delegation: %v", err)
	}
	if _, err := dc.CreateAggregate(ctx, "k", map[string]int{"a": 1}, onBehalf); !errors.As(err, &rej) || rej.Code != message.CodePermissionDenied {
		t.Errorf("type outside the delegation: %v", err)
	}
	// Revoking (writing the list without the delegate) removes the right.
	mustWrite(oc.SetAuthorizations(ctx, nil, sync))
	if _, err := dc.CreatePost(ctx, "blog", "after revoke", "", onBehalf); !errors.As(err, &rej) || rej.Code != message.CodePermissionDenied {
		t.Errorf("post after revoke: %v", err)
	}

	// A tampered signature is refused at once with code 1.
	b := message.Builder{Signer: owner}
	built, err := b.Build(ctx, message.TypePost, &message.PostContent{Type: "t", Content: json.RawMessage(`1`)}, "")
	if err != nil {
		t.Fatal(err)
	}
	bad := *built.Message
	bad.Signature = "0x" + strings.Repeat("1", 130)
	if _, err := oc.SubmitMessage(ctx, &bad, true); !errors.As(err, &rej) || rej.Code != message.CodeInvalidSignature {
		t.Errorf("bad signature: %v", err)
	}
	// A malformed envelope: code 0, naming the field.
	bad = *built.Message
	bad.ItemHash = strings.Repeat("f", 64)
	if _, err := oc.SubmitMessage(ctx, &bad, true); !errors.As(err, &rej) || rej.Code != message.CodeInvalidFormat || !strings.Contains(rej.Error(), "item_hash") {
		t.Errorf("hash mismatch: %v", err)
	}
	// Submitting the good one twice is idempotent.
	for range 2 {
		r, err := oc.SubmitMessage(ctx, built.Message, true)
		if err != nil || r.Status != message.StatusProcessed {
			t.Fatalf("submit: %+v, %v", r, err)
		}
	}
}

func TestIntegrationListingAndWatch(t *testing.T) {
	mustWrite := processed(t)
	base := nodetest.Start(t)
	ctx := testCtx(t)
	acc := newAccount(t)
	c := client.New(base, client.WithSigner(acc))
	const n = 7
	var hashes []string
	for i := range n {
		w := mustWrite(c.CreatePost(ctx, "list-test", map[string]int{"i": i}, "", client.WriteOptions{Channel: "LIST", Sync: true}))
		hashes = append(hashes, w.ItemHash)
	}
	f := client.MessageFilter{Addresses: []string{acc.Address()}, Types: []message.Type{message.TypePost}}

	// Page mode.
	page, err := c.ListMessages(ctx, f, client.Page{Number: 2, Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 3 || page.Page != 2 || page.PerPage != 3 || page.Total != n || page.Item != "messages" || page.Cursor {
		t.Errorf("page 2: %d messages, pagination %+v", len(page.Messages), page.Pagination)
	}
	// Newest first by default: page 2 of 3 holds posts 3, 2, 1.
	for i, m := range page.Messages {
		if m.ItemHash != hashes[n-4-i] {
			t.Errorf("page 2 item %d is %s, want %s", i, m.ItemHash, hashes[n-4-i])
		}
	}
	asc, err := c.ListMessages(ctx, client.MessageFilter{Addresses: f.Addresses, SortOrder: client.Ascending, ContentFormat: client.ContentNone}, client.Page{Size: client.NoLimit})
	if err != nil || len(asc.Messages) != n || asc.Messages[0].ItemHash != hashes[0] || asc.Messages[0].Content != nil {
		t.Errorf("ascending without content: %+v, %v", asc, err)
	}

	// Cursor mode, page by page.
	first, err := c.ListMessages(ctx, f, client.FirstCursor(4))
	if err != nil || !first.Cursor || first.NextCursor == nil || len(first.Messages) != 4 {
		t.Fatalf("cursor page 1: %+v, %v", first, err)
	}
	second, err := c.ListMessages(ctx, f, client.Page{Size: 4, Cursor: first.NextCursor})
	if err != nil || len(second.Messages) != 3 || second.NextCursor != nil {
		t.Errorf("cursor page 2: %+v, %v", second, err)
	}

	// The iterator walks every page.
	var all []string
	for m, err := range c.AllMessages(ctx, f, 2) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m.ItemHash)
	}
	want := slices.Clone(hashes)
	slices.Reverse(want)
	if !slices.Equal(all, want) {
		t.Errorf("AllMessages = %v\nwant %v", all, want)
	}
	// Breaking out early stops the iteration.
	count := 0
	for range c.AllMessages(ctx, f, 2) {
		if count++; count == 3 {
			break
		}
	}
	if count != 3 {
		t.Errorf("early break: %d", count)
	}

	// Watch: history first (oldest first), then live messages.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	watch, err := c.WatchMessages(wctx, client.WatchFilter{MessageFilter: client.MessageFilter{Addresses: []string{acc.Address()}, Channels: []string{"LIST"}}, History: intPtr(2)})
	if err != nil {
		t.Fatal(err)
	}
	for i, wantHash := range hashes[n-2:] {
		m, err := watch.Next(wctx)
		if err != nil || m.ItemHash != wantHash {
			t.Fatalf("history %d: %v, %v; want %s", i, m, err, wantHash)
		}
	}
	live := mustWrite(c.CreatePost(ctx, "list-test", "live", "", client.WriteOptions{Channel: "LIST", Sync: true}))
	// A message in another channel does not match the filter.
	mustWrite(c.CreatePost(ctx, "list-test", "elsewhere", "", client.WriteOptions{Channel: "OTHER", Sync: true}))
	last := mustWrite(c.CreatePost(ctx, "list-test", "live 2", "", client.WriteOptions{Channel: "LIST", Sync: true}))
	var seen []string
	for m, err := range watch.Messages() {
		if err != nil {
			t.Fatal(err)
		}
		if m.Channel != "LIST" || m.Content == nil {
			t.Errorf("watched %s", m.Raw)
		}
		seen = append(seen, m.ItemHash)
		if len(seen) == 2 {
			break
		}
	}
	if !slices.Equal(seen, []string{live.ItemHash, last.ItemHash}) {
		t.Errorf("live messages %v, want %s %s", seen, live.ItemHash, last.ItemHash)
	}

	// Cancelling the context ends a subscription with the context's error.
	cctx, ccancel := context.WithCancel(ctx)
	w2, err := c.WatchMessages(cctx, client.WatchFilter{MessageFilter: client.MessageFilter{Hashes: []string{strings.Repeat("9", 64)}}, History: intPtr(0)})
	if err != nil {
		t.Fatal(err)
	}
	ccancel()
	if _, err := w2.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
	w2.Close()

	// A refused subscription is an APIError.
	if _, err := c.WatchMessages(ctx, client.WatchFilter{MessageFilter: client.MessageFilter{Statuses: []message.Status{message.StatusForgotten}}}); err == nil {
		t.Error("websocket on forgotten messages accepted")
	} else {
		var ae *client.APIError
		if !errors.As(err, &ae) {
			t.Errorf("refused websocket: %v (%T)", err, err)
		}
	}
}
