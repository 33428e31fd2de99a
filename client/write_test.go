package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/chain/solana"
	"github.com/go-aleph/go-aleph/message"
)

// These tests check the requests the client sends and how it reads answers that a
// real node cannot easily be made to give (pyaleph's text rejections, 500s, a node
// that never answers). They run a real HTTP server on 127.0.0.1 that records each
// request and answers what the test says. The client's behaviour against a real
// go-aleph node is covered by the integration tests.

type recorded struct {
	method, path, query, contentType, userAgent string
	body                                        []byte
}

type answer struct {
	status int
	body   string
}

type recorder struct {
	mu       sync.Mutex
	requests []recorded
	answers  map[string]answer // by "METHOD path"
}

func newRecorder(t *testing.T, answers map[string]answer) (*recorder, *httptest.Server) {
	t.Helper()
	rec := &recorder{answers: answers}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), body})
		a, ok := rec.answers[r.Method+" "+r.URL.Path]
		rec.mu.Unlock()
		if !ok {
			a = answer{404, `{"error":"not found"}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

var testClock = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC) }

func ethSigner(t testing.TB) *evm.Account {
	t.Helper()
	a, err := evm.AccountFromHex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efbba0f2d1db744ce06")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// submitted decodes the POST /api/v0/messages body and verifies the message.
func submitted(t *testing.T, req recorded) (bool, *message.Message) {
	t.Helper()
	if req.method != "POST" || req.path != "/api/v0/messages" || req.contentType != "application/json" {
		t.Fatalf("request %s %s (%s)", req.method, req.path, req.contentType)
	}
	var body struct {
		Sync    *bool           `json:"sync"`
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil || body.Sync == nil {
		t.Fatalf("body %s: %v", req.body, err)
	}
	m, err := message.Parse(body.Message)
	if err != nil {
		t.Fatalf("the node would reject the envelope: %v\n%s", err, body.Message)
	}
	if err := all.NewRegistry().Verify(m); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(body.Message, &fields)
	if _, ok := fields["content"]; ok {
		t.Error("the envelope carries content; the SDKs send only the nine broadcast fields")
	}
	return *body.Sync, m
}

func TestWriteMethodsBuildSignedMessages(t *testing.T) {
	ok := map[string]answer{"POST /api/v0/messages": {200, `{"publication_status":{"status":"success","failed":[]},"message_status":"processed"}`}}
	sol, err := solana.AccountFromSeed(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	eth := ethSigner(t)
	tests := []struct {
		name    string
		signer  message.Signer
		write   func(c *Client) (*WriteResult, error)
		typ     message.Type
		content string // the exact item_content
		channel string
		sync    bool
	}{
		{"post", eth, func(c *Client) (*WriteResult, error) {
			return c.CreatePost(t.Context(), "blog", json.RawMessage(`{ "title": "héllo <b>", "n": 1.50 }`), "", WriteOptions{Channel: "TEST", Sync: true})
		}, message.TypePost, `{"address":"` + eth.Address() + `","time":1767323045.678,"type":"blog","content":{"title":"héllo <b>","n":1.50}}`, "TEST", true},
		{"post with Go value and ref", eth, func(c *Client) (*WriteResult, error) {
			return c.CreatePost(t.Context(), "note", map[string]any{"b": 1.0, "a": "x"}, "some-ref", WriteOptions{})
		}, message.TypePost, `{"address":"` + eth.Address() + `","time":1767323045.678,"type":"note","content":{"a":"x","b":1.0},"ref":"some-ref"}`, "", false},
		{"amend", eth, func(c *Client) (*WriteResult, error) {
			return c.AmendPost(t.Context(), hashA, json.RawMessage(`"replaced"`), WriteOptions{Sync: true})
		}, message.TypePost, `{"address":"` + eth.Address() + `","time":1767323045.678,"type":"amend","content":"replaced","ref":"` + hashA + `"}`, "", true},
		{"aggregate on behalf of another address", sol, func(c *Client) (*WriteResult, error) {
			return c.CreateAggregate(t.Context(), "profile", json.RawMessage(`{"name":"x"}`), WriteOptions{Address: "0xOwner", Channel: "c"})
		}, message.TypeAggregate, `{"address":"0xOwner","time":1767323045.678,"key":"profile","content":{"name":"x"}}`, "c", false},
		{"forget", eth, func(c *Client) (*WriteResult, error) {
			return c.Forget(t.Context(), ForgetTargets{Hashes: []string{hashA}, Reason: "spam"}, WriteOptions{Sync: true})
		}, message.TypeForget, `{"address":"` + eth.Address() + `","time":1767323045.678,"hashes":["` + hashA + `"],"aggregates":[],"reason":"spam"}`, "", true},
		{"forget aggregates", eth, func(c *Client) (*WriteResult, error) {
			return c.Forget(t.Context(), ForgetTargets{Aggregates: []string{hashB}}, WriteOptions{})
		}, message.TypeForget, `{"address":"` + eth.Address() + `","time":1767323045.678,"hashes":[],"aggregates":["` + hashB + `"]}`, "", false},
		{"authorizations", eth, func(c *Client) (*WriteResult, error) {
			return c.SetAuthorizations(t.Context(), []Authorization{
				{Address: "0xD", Types: []message.Type{message.TypePost}, PostTypes: []string{"blog"}},
				{Raw: json.RawMessage(`{"address": "0xE", "future_field": true}`)},
			}, WriteOptions{})
		}, message.TypeAggregate, `{"address":"` + eth.Address() + `","time":1767323045.678,"key":"security","content":{"authorizations":[` +
			`{"address":"0xD","channels":[],"types":["POST"],"post_types":["blog"],"aggregate_keys":[]},{"address":"0xE","future_field":true}]}}`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, srv := newRecorder(t, ok)
			c := New(srv.URL+"/", WithSigner(tc.signer), WithClock(testClock), WithUserAgent("test-agent"))
			w, err := tc.write(c)
			if err != nil {
				t.Fatal(err)
			}
			reqs := rec.all()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if reqs[0].userAgent != "test-agent" {
				t.Errorf("user agent %q", reqs[0].userAgent)
			}
			sync, m := submitted(t, reqs[0])
			if sync != tc.sync || m.Type != tc.typ || m.Channel != tc.channel || m.Sender != tc.signer.Address() || m.Chain != tc.signer.Chain() {
				t.Errorf("sent sync %v %s channel %q by %s %s", sync, m.Type, m.Channel, m.Chain, m.Sender)
			}
			if m.ItemContent != tc.content {
				t.Errorf("item_content\n got %s\nwant %s", m.ItemContent, tc.content)
			}
			if m.Time.String() != "1767323045.678" {
				t.Errorf("envelope time %s", m.Time)
			}
			if w.ItemHash != m.ItemHash || w.Message.ItemHash != m.ItemHash || string(w.Content) != tc.content ||
				w.Status != message.StatusProcessed || w.HTTPStatus != 200 || w.PublicationStatus.Status != "success" {
				t.Errorf("result %+v", w)
			}
		})
	}
}

func TestWriteInputErrors(t *testing.T) {
	rec, srv := newRecorder(t, nil)
	c := New(srv.URL, WithSigner(ethSigner(t)))
	noSigner := New(srv.URL)
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
		is   error
	}{
		{"no signer", func() error { _, err := noSigner.CreatePost(ctx, "t", 1, "", WriteOptions{}); return err }, ErrNoSigner},
		{"empty post type", func() error { _, err := c.CreatePost(ctx, " ", 1, "", WriteOptions{}); return err }, nil},
		{"invalid raw JSON", func() error { _, err := c.CreatePost(ctx, "t", json.RawMessage(`{`), "", WriteOptions{}); return err }, nil},
		{"nil content", func() error { _, err := c.CreatePost(ctx, "t", nil, "", WriteOptions{}); return err }, nil},
		{"amend of a non-hash", func() error { _, err := c.AmendPost(ctx, "nope", 1, WriteOptions{}); return err }, nil},
		{"aggregate not an object", func() error { _, err := c.CreateAggregate(ctx, "k", []byte(`[1]`), WriteOptions{}); return err }, nil},
		{"aggregate empty key", func() error { _, err := c.CreateAggregate(ctx, "", []byte(`{}`), WriteOptions{}); return err }, nil},
		{"forget nothing", func() error { _, err := c.Forget(ctx, ForgetTargets{}, WriteOptions{}); return err }, nil},
		{"forget a non-hash", func() error {
			_, err := c.Forget(ctx, ForgetTargets{Hashes: []string{"x"}}, WriteOptions{})
			return err
		}, nil},
		{"forget a plain aggregate key", func() error {
			_, err := c.Forget(ctx, ForgetTargets{Aggregates: []string{"profile"}}, WriteOptions{})
			return err
		}, ErrAggregateKeyNotHash},
		{"channel too long", func() error {
			_, err := c.CreatePost(ctx, "t", 1, "", WriteOptions{Channel: strings.Repeat("c", 129)})
			return err
		}, nil},
		{"authorization post types without POST", func() error {
			_, err := c.SetAuthorizations(ctx, []Authorization{{Address: "0xD", Types: []message.Type{message.TypeStore}, PostTypes: []string{"x"}}}, WriteOptions{})
			return err
		}, nil},
		{"authorization aggregate keys without AGGREGATE", func() error {
			_, err := c.SetAuthorizations(ctx, []Authorization{{Address: "0xD", Types: []message.Type{message.TypePost}, AggregateKeys: []string{"x"}}}, WriteOptions{})
			return err
		}, nil},
		{"authorization without address", func() error {
			_, err := c.SetAuthorizations(ctx, []Authorization{{}}, WriteOptions{})
			return err
		}, nil},
		{"submit nil", func() error { _, err := c.SubmitMessage(ctx, nil, false); return err }, nil},
		{"get message empty hash", func() error { _, err := c.GetMessage(ctx, ""); return err }, nil},
		{"get message path injection", func() error { _, err := c.GetMessage(ctx, "../version"); return err }, nil},
		{"aggregates path injection", func() error { _, err := c.GetAggregates(ctx, "a/../b", AggregateQuery{}); return err }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			if s := err.Error(); s != strings.ToLower(s[:1])+s[1:] {
				t.Errorf("error %q starts with a capital", s)
			}
		})
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d requests sent for invalid input", n)
	}
}

func TestSubmitAnswers(t *testing.T) {
	eth := ethSigner(t)
	tests := []struct {
		name       string
		answers    map[string]answer
		wantStatus message.Status
		wantCode   message.ErrorCode
		rejected   bool
		apiStatus  int
		requests   int
	}{
		{"processed", map[string]answer{"POST /api/v0/messages": {200, `{"message_status":"processed"}`}}, message.StatusProcessed, 0, false, 0, 1},
		{"pending", map[string]answer{"POST /api/v0/messages": {202, `{"publication_status":{"status":"success","failed":[]},"message_status":"pending"}`}}, message.StatusPending, 0, false, 0, 1},
		{"pending without body", map[string]answer{"POST /api/v0/messages": {202, ``}}, message.StatusPending, 0, false, 0, 1},
		{"forgotten copy", map[string]answer{"POST /api/v0/messages": {410, `{"message_status":"forgotten"}`}}, message.StatusForgotten, 0, false, 0, 1},
		{"go-aleph rejection", map[string]answer{"POST /api/v0/messages": {422, `{"message_status":"rejected","error":"message rejected: PERMISSION_DENIED","error_code":2,"reason":"not authorized","details":null}`}},
			message.StatusRejected, message.CodePermissionDenied, true, 0, 1},
		{"pyaleph text rejection, code read back", map[string]answer{
			"POST /api/v0/messages":                {422, `InvalidMessageFormat`},
			"GET /api/v0/messages/__HASH__":        {200, `{"status":"rejected","item_hash":"__HASH__","error_code":0,"details":{"errors":["x"]}}`},
			"GET /api/v0/messages/__HASH__/status": {200, `{}`},
		}, "", message.CodeInvalidFormat, true, 0, 1},
		{"pyaleph signature rejection", map[string]answer{"POST /api/v0/messages": {422, "InvalidSignature"}}, "", message.CodeInvalidSignature, true, 0, 1},
		{"pyaleph sync rejection without code", map[string]answer{
			"POST /api/v0/messages":         {422, `{"publication_status":{"status":"success","failed":[]},"message_status":"rejected"}`},
			"GET /api/v0/messages/__HASH__": {200, `{"status":"rejected","item_hash":"__HASH__","error_code":5,"details":{"errors":[{"account_balance":"0","required_balance":"1"}]}}`},
		}, message.StatusRejected, message.CodeBalanceInsufficient, true, 0, 2},
		{"pydantic list", map[string]answer{"POST /api/v0/messages": {422, `[{"loc":["message","chain"],"msg":"field required","type":"value_error.missing"}]`}}, "", message.CodeInvalidFormat, true, 0, 2},
		{"server error", map[string]answer{"POST /api/v0/messages": {500, `{"error":"internal"}`}}, "", 0, false, 500, 1},
		{"unexpected 201", map[string]answer{"POST /api/v0/messages": {201, `{}`}}, "", 0, false, 201, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := message.Builder{Signer: eth, Now: testClock}
			built, err := b.Build(t.Context(), message.TypePost, &message.PostContent{Type: "t", Content: json.RawMessage(`1`)}, "")
			if err != nil {
				t.Fatal(err)
			}
			h := built.Message.ItemHash
			answers := map[string]answer{}
			for k, v := range tc.answers {
				answers[strings.ReplaceAll(k, "__HASH__", h)] = answer{v.status, strings.ReplaceAll(v.body, "__HASH__", h)}
			}
			rec, srv := newRecorder(t, answers)
			c := New(srv.URL)
			res, err := c.SubmitMessage(t.Context(), built.Message, true)
			if n := len(rec.all()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			switch {
			case tc.rejected:
				var rej *RejectedError
				if !errors.As(err, &rej) {
					t.Fatalf("error %v, want a RejectedError", err)
				}
				if rej.Code != tc.wantCode || rej.ItemHash != h || rej.StatusCode != 422 || message.CodeOf(err) != tc.wantCode {
					t.Errorf("rejection %+v", rej)
				}
				if tc.name == "go-aleph rejection" && rej.Reason != "not authorized" {
					t.Errorf("reason %q", rej.Reason)
				}
				if tc.name == "pydantic list" && rej.Reason != "chain: field required" {
					t.Errorf("reason %q", rej.Reason)
				}
			case tc.apiStatus != 0:
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != tc.apiStatus || ae.Method != "POST" || ae.Path != "/api/v0/messages" {
					t.Fatalf("error %v, want APIError %d", err, tc.apiStatus)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != tc.wantStatus || res.ItemHash != h {
					t.Errorf("result %+v", res)
				}
			}
		})
	}
}

func TestReadAnswers(t *testing.T) {
	_, srv := newRecorder(t, map[string]answer{
		"GET /api/v0/version":                       {200, `{"version":"1.2.3"}`},
		"GET /api/v0/channels/list.json":            {200, `{"channels":null}`},
		"GET /api/v0/messages/" + hashA:             {200, `not json`},
		"GET /api/v0/messages/" + hashB:             {410, `{"error":"gone"}`},
		"GET /api/v0/messages/" + hashA + "/status": {200, `{"item_hash":"x"}`},
		"GET /api/v0/aggregates/0xA.json":           {200, `{"address":"0xA","data":{"k":{"a":1},"n":null}}`},
		"GET /api/v0/addresses/stats.json":          {200, `{"data":{"0xA":{"messages":3,"post":2,"aggregate":1}}}`},
		"GET /api/v0/messages.json":                 {200, `{"messages":[{"item_hash":1}]}`},
	})
	c := New(srv.URL)
	ctx := t.Context()
	if v, err := c.Version(ctx); err != nil || v != "1.2.3" {
		t.Errorf("Version = %q, %v", v, err)
	}
	if ch, err := c.Channels(ctx); err != nil || ch == nil || len(ch) != 0 {
		t.Errorf("Channels = %v, %v", ch, err)
	}
	if _, err := c.GetMessage(ctx, hashA); err == nil || !strings.Contains(err.Error(), "decode answer") {
		t.Errorf("invalid JSON: %v", err)
	}
	var ae *APIError
	if _, err := c.GetMessage(ctx, hashB); !errors.As(err, &ae) || ae.StatusCode != 410 {
		t.Errorf("410 without status: %v", err)
	}
	if _, err := c.MessageStatus(ctx, hashA); err == nil {
		t.Error("status answer without status accepted")
	}
	if _, err := c.GetMessage(ctx, strings.Repeat("c", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hash: %v, want ErrNotFound", err)
	}
	v, err := c.GetAggregate(ctx, "0xA", "k")
	if err != nil || string(v) != `{"a":1}` {
		t.Errorf("GetAggregate = %s, %v", v, err)
	}
	for _, key := range []string{"n", "missing"} {
		if _, err := c.GetAggregate(ctx, "0xA", key); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetAggregate(%s) = %v, want ErrNotFound", key, err)
		}
	}
	if _, err := c.GetAggregates(ctx, "0xB", AggregateQuery{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetAggregates of an unknown address = %v, want ErrNotFound", err)
	}
	auth, err := c.Authorizations(ctx, "0xB")
	if err != nil || auth == nil || len(auth) != 0 {
		t.Errorf("Authorizations without a security aggregate = %v, %v", auth, err)
	}
	stats, err := c.AddressStats(ctx, []string{"0xA", "0xB"})
	if err != nil || stats["0xA"].Messages != 3 || stats["0xA"].Post != 2 {
		t.Errorf("AddressStats = %+v, %v", stats, err)
	}
	if _, err := c.ListMessages(ctx, MessageFilter{}, Page{}); err == nil {
		t.Error("a message with a numeric item_hash was accepted")
	}
}

func TestAddressStatsQuery(t *testing.T) {
	rec, srv := newRecorder(t, map[string]answer{"GET /api/v0/addresses/stats.json": {200, `{"data":{}}`}})
	if _, err := New(srv.URL).AddressStats(t.Context(), []string{"0xA", "0xB"}); err != nil {
		t.Fatal(err)
	}
	if q := rec.all()[0].query; q != "addresses%5B%5D=0xA&addresses%5B%5D=0xB" {
		t.Errorf("query %s", q)
	}
}

func TestAllMessagesPageFallback(t *testing.T) {
	// A node without cursor support answers page-mode pages whatever the cursor.
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		page := r.URL.Query().Get("page")
		n := map[string]int{"": 2, "1": 2, "2": 2, "3": 1}[page]
		var msgs []string
		for i := range n {
			msgs = append(msgs, `{"item_hash":"p`+page+`-`+string(rune('a'+i))+`","time":1}`)
		}
		io.WriteString(w, `{"messages":[`+strings.Join(msgs, ",")+`],"pagination_page":1,"pagination_per_page":2,"pagination_total":7,"pagination_item":"messages"}`)
	}))
	t.Cleanup(srv.Close)
	var got []string
	for m, err := range New(srv.URL).AllMessages(t.Context(), MessageFilter{Channels: []string{"C"}}, 2) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.ItemHash)
	}
	want := "p-a,p-b,p2-a,p2-b,p3-a"
	if strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	wantQ := "channels=C&pagination=2&cursor=|channels=C&pagination=2&page=2|channels=C&pagination=2&page=3"
	if strings.Join(queries, "|") != wantQ {
		t.Errorf("queries %v", queries)
	}
}

func TestNeverHangs(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	t.Run("context deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := New(srv.URL).Version(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want the context's deadline", err)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		c := New(srv.URL, WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
		_, err := c.Version(t.Context())
		if err == nil || !strings.Contains(err.Error(), "GET /api/v0/version") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("default client has a timeout", func(t *testing.T) {
		if c := New(srv.URL); c.http.Timeout != DefaultTimeout {
			t.Errorf("default timeout %v", c.http.Timeout)
		}
	})
	t.Run("unreachable node", func(t *testing.T) {
		l := httptest.NewServer(http.NotFoundHandler())
		url := l.URL
		l.Close()
		if _, err := New(url).Version(t.Context()); err == nil {
			t.Error("no error from a closed port")
		}
	})
}

func TestLargeContentGoesToStorage(t *testing.T) {
	big := strings.Repeat("x", message.InlineThreshold)
	raw, _ := json.Marshal(map[string]string{"body": big})
	eth := ethSigner(t)
	b := message.Builder{Signer: eth, Now: testClock}
	built, err := b.Build(t.Context(), message.TypePost, &message.PostContent{Type: "big", Content: raw}, "")
	if err != nil {
		t.Fatal(err)
	}
	if built.Message.ItemType != message.ItemStorage {
		t.Fatalf("item type %s", built.Message.ItemType)
	}
	tests := []struct {
		name     string
		hash     string
		status   int
		wantErr  string
		requests int
	}{
		{"uploaded", built.Message.ItemHash, 200, "", 2},
		{"node hashes other bytes", strings.Repeat("e", 64), 200, "uploader returned hash", 1},
		{"no storage endpoint", "", 404, "http 404", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, srv := newRecorder(t, map[string]answer{
				"POST /api/v0/storage/add_file": {tc.status, `{"status":"success","hash":"` + tc.hash + `"}`},
				"POST /api/v0/messages":         {202, `{"message_status":"pending"}`},
			})
			c := New(srv.URL, WithSigner(eth), WithClock(testClock))
			w, err := c.CreatePost(t.Context(), "big", json.RawMessage(raw), "", WriteOptions{})
			reqs := rec.all()
			if len(reqs) != tc.requests {
				t.Fatalf("%d requests, want %d", len(reqs), tc.requests)
			}
			if reqs[0].path != "/api/v0/storage/add_file" || reqs[0].contentType != "application/octet-stream" || string(reqs[0].body) != string(built.Content) {
				t.Errorf("upload %s %s, %d bytes", reqs[0].path, reqs[0].contentType, len(reqs[0].body))
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Message map[string]any `json:"message"`
			}
			if err := json.Unmarshal(reqs[1].body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Message["item_type"] != "storage" || body.Message["item_hash"] != built.Message.ItemHash {
				t.Errorf("envelope %v", body.Message)
			}
			if _, has := body.Message["item_content"]; has {
				t.Error("a storage message carries item_content")
			}
			if w.Status != message.StatusPending || w.Message.ItemHash != built.Message.ItemHash {
				t.Errorf("result %+v", w.SubmitResult)
			}
		})
	}
}
