package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// orderedKeys decodes a JSON object into its keys, in order.
type orderedKeys []string

func (o *orderedKeys) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return err
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		*o = append(*o, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// testTSSDKShapes checks what the TypeScript SDK reads (ts-sdk-http-calls.md §2).
func testTSSDKShapes(t *testing.T, n *node, d *dataset) {
	// getPosts: the exact query it sends.
	var posts struct {
		Posts             []map[string]any `json:"posts"`
		PaginationPage    int              `json:"pagination_page"`
		PaginationTotal   int              `json:"pagination_total"`
		PaginationPerPage int              `json:"pagination_per_page"`
		PaginationItem    string           `json:"pagination_item"`
	}
	n.getJSON(t, "/api/v0/posts.json?types=blog,note&pagination=50&page=1&refs=ext-ref&addresses="+d.b+"&tags=n&hashes="+d.p2+"&channels=OTHER", http.StatusOK, &posts)
	if len(posts.Posts) != 1 || posts.Posts[0]["item_hash"] != d.p2 || posts.PaginationPerPage != 50 || posts.PaginationItem != "posts" {
		t.Errorf("getPosts: %+v", posts)
	}
	for _, k := range []string{"chain", "item_hash", "sender", "type", "channel", "confirmed", "content", "item_content", "item_type", "signature", "size", "time", "original_item_hash", "original_signature", "original_type", "hash", "address"} {
		if _, ok := posts.Posts[0][k]; !ok {
			t.Errorf("PostResponse lacks %s", k)
		}
	}

	// fetchAggregate(s): body.data.
	var agg struct {
		Data map[string]any `json:"data"`
	}
	n.getJSON(t, "/api/v0/aggregates/"+d.a+".json?keys=profile", http.StatusOK, &agg)
	if agg.Data["profile"] == nil {
		t.Errorf("fetchAggregate: %v", agg)
	}
	n.getJSON(t, "/api/v0/aggregates/.json", http.StatusNotFound, nil) // default address ''

	// getMessages: the exact query it sends.
	q := fmt.Sprintf("/api/v0/messages.json?pagination=5&page=1&addresses=%s&channels=TEST&chains=ETH&refs=%s&tags=&contentTypes=amend&contentKeys=&hashes=%s,%s&msgTypes=POST&paymentTypes=&startDate=%s&endDate=1800000000",
		d.a, d.p1, d.p5, d.p1, ff(d.times[d.p1]))
	var msgs messagesPage
	n.getJSON(t, q, http.StatusOK, &msgs)
	if got := hashesOf(msgs.Messages); len(got) != 1 || got[0] != d.p5 {
		t.Errorf("getMessages: %v", got)
	}

	// getMessage: hashes[]= is tolerated; status and message are read.
	var one struct {
		Status  string         `json:"status"`
		Message map[string]any `json:"message"`
	}
	n.getJSON(t, "/api/v0/messages/"+d.p2+"?hashes%5B%5D="+d.p2, http.StatusOK, &one)
	if one.Status != "processed" || one.Message["item_hash"] != d.p2 || one.Message["type"] != "POST" {
		t.Errorf("getMessage: %+v", one)
	}
	n.getJSON(t, "/api/v0/messages/"+d.p2+"?hashes%5B%5D=garbage&messageType=POST", http.StatusOK, nil)

	// getMessage / getMessageError on a forgotten message: message.item_hash and
	// forgotten_by (an array) are required.
	var fg struct {
		Status      string         `json:"status"`
		ItemHash    string         `json:"item_hash"`
		Message     map[string]any `json:"message"`
		ForgottenBy []string       `json:"forgotten_by"`
	}
	n.getJSON(t, "/api/v0/messages/"+d.p6+"?hashes%5B%5D="+d.p6, http.StatusOK, &fg)
	if fg.Status != "forgotten" || fg.ItemHash != d.p6 || fg.Message["item_hash"] != d.p6 || len(fg.ForgottenBy) != 1 {
		t.Errorf("forgotten for the SDK: %+v", fg)
	}
	n.getJSON(t, "/api/v0/messages/"+strings.Repeat("f", 64)+"?hashes%5B%5D=x", http.StatusNotFound, nil)
}

// testHead checks that every GET route answers HEAD with its GET headers and no body.
func testHead(t *testing.T, n *node, d *dataset) {
	paths := []string{
		"/api/v0/messages.json", "/api/v0/messages/page/1.json", "/api/v0/messages/hashes",
		"/api/v0/messages/" + d.p1, "/api/v0/messages/" + d.p1 + "/status", "/api/v0/messages/" + d.p1 + "/content",
		"/api/v0/posts.json", "/api/v0/posts/page/1.json", "/api/v1/posts.json", "/api/v1/posts/page/1.json",
		"/api/v0/aggregates/" + d.a + ".json", "/api/v0/aggregates", "/api/v0/aggregates.json",
		"/api/v0/addresses/stats.json", "/api/v1/addresses/stats.json", "/api/v0/addresses/" + d.a + "/post_types",
		"/api/v0/addresses/" + d.a + "/channels", "/api/v0/channels/list.json", "/api/v0/state/digest", "/api/v0/version", "/version",
		"/api/v0/info/public.json", "/metrics", "/api/docs", "/api/docs/openapi.json",
		"/api/v0/messages/" + strings.Repeat("0", 64), "/api/v0/messages.json?page=0",
	}
	for _, p := range paths {
		getCode, getBody, getH := n.raw(t, http.MethodGet, p, "", nil)
		headCode, headBody, headH := n.raw(t, http.MethodHead, p, "", nil)
		if headCode != getCode || len(headBody) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes; GET gave %d", p, headCode, len(headBody), getCode)
		}
		if headH.Get("Content-Type") != getH.Get("Content-Type") {
			t.Errorf("HEAD %s: Content-Type %q, GET %q", p, headH.Get("Content-Type"), getH.Get("Content-Type"))
		}
		if p != "/metrics" && headH.Get("Content-Length") != fmt.Sprint(len(getBody)) {
			t.Errorf("HEAD %s: Content-Length %q, GET body %d", p, headH.Get("Content-Length"), len(getBody))
		}
	}
	// The websocket route answers HEAD too (no upgrade: 426, no body).
	if code, body, _ := n.raw(t, http.MethodHead, "/api/ws0/messages", "", nil); code != http.StatusUpgradeRequired || len(body) != 0 {
		t.Errorf("HEAD websocket: %d %q", code, body)
	}
}

// testHammer sends malformed parameters to every endpoint: bad hashes are 400,
// bad values 422, unknown parameters are ignored, and nothing is a 500.
func testHammer(t *testing.T, n *node, d *dataset) {
	tests := []struct {
		path string
		want int
	}{
		{"/api/v0/messages.json?pagination=abc", 422},
		{"/api/v0/messages.json?pagination=-1", 422},
		{"/api/v0/messages.json?pagination=99999999999999999999", 422},
		{"/api/v0/messages.json?pagination=2.5", 422},
		{"/api/v0/messages.json?pagination=3.0", 200},
		{"/api/v0/messages.json?page=0", 422},
		{"/api/v0/messages.json?page=1e400", 422},
		{"/api/v0/messages.json?page=2147483648", 422},
		{"/api/v0/messages.json?page=2147483647&pagination=2147483647", 200},
		{"/api/v0/messages.json?startDate=yesterday", 422},
		{"/api/v0/messages.json?startDate=NaN", 422},
		{"/api/v0/messages.json?startDate=inf", 422},
		{"/api/v0/messages.json?startDate=-5", 422},
		{"/api/v0/messages.json?startDate=20&endDate=10", 422},
		{"/api/v0/messages.json?startDate=1e300", 200},
		{"/api/v0/messages.json?endDate=1e300", 200},
		{"/api/v0/messages.json?msgTypes=BOGUS", 422},
		{"/api/v0/messages.json?msgType=V-PROGRAM", 422},
		{"/api/v0/messages.json?msgStatuses=done", 422},
		{"/api/v0/messages.json?chains=NOTACHAIN", 422},
		{"/api/v0/messages.json?hashes=xyz", 422},
		{"/api/v0/messages.json?paymentTypes=cash", 422},
		{"/api/v0/messages.json?sortOrder=0", 422},
		{"/api/v0/messages.json?sortBy=size", 422},
		{"/api/v0/messages.json?contentFormat=html", 422},
		{"/api/v0/messages.json?excludeContent=sure", 422},
		{"/api/v0/messages.json?startBlock=-1", 422},
		{"/api/v0/messages.json?cursor=" + strings.Repeat("A", 5000), 422},
		{"/api/v0/messages.json?addresses=" + strings.Repeat("%00", 300), 422},
		{"/api/v0/messages.json?channels=%FF%FE", 422},
		{"/api/v0/messages.json?channels=caf%C3%A9", 200},
		{"/api/v0/addresses/stats.json?addresses[]=%FF", 422},
		{"/api/v0/aggregates/%FF.json", 400},
		{"/api/v0/messages.json?refs=" + strings.Repeat("x,", 1000), 200},
		{"/api/v0/messages.json?refs=" + strings.Repeat("x,", 40000) + "x", 422},
		{"/api/v0/posts.json?addresses=" + strings.Repeat("x,", 40000) + "x", 422},
		{"/api/v0/addresses/stats.json?addresses=" + strings.Repeat("x,", 40000) + "x", 422},
		{"/api/v0/messages.json?tags=%27%3B%20DROP%20TABLE%20messages%3B--", 200},
		{"/api/v0/messages.json?foo=bar&pagination=1&pagination=abc", 200}, // first value wins
		{"/api/v0/messages/page/abc.json", 422},
		{"/api/v0/messages/page/0.json", 422},
		{"/api/v0/messages/page/-1.json", 422},
		{"/api/v0/messages/page/1", 404},
		{"/api/v0/messages/page/99999999999999999999.json", 422},
		{"/api/v0/messages/%00", 400},
		{"/api/v0/messages/" + strings.Repeat("a", 63), 400},
		{"/api/v0/messages/" + strings.Repeat("a", 65), 400},
		{"/api/v0/messages/" + strings.ToUpper(d.p1), 400},
		{"/api/v0/messages/QmXXX", 400},
		{"/api/v0/messages/hashes?pagination=x", 422},
		{"/api/v0/posts.json?pagination=-3", 422},
		{"/api/v0/posts.json?endDate=abc", 422},
		{"/api/v1/posts.json?cursor=%%%", 200}, // an undecodable query pair is dropped
		{"/api/v1/posts.json?cursor=%25%25", 422},
		{"/api/v0/aggregates/" + d.a + ".json?keys=" + strings.Repeat("k,", 500), 404},
		{"/api/v0/aggregates/%2F%2E%2E.json", 404},
		{"/api/v0/aggregates?pagination=abc", 422},
		{"/api/v0/addresses/stats.json?addresses=" + strings.Repeat("a", 1000), 200},
		{"/api/v1/addresses/stats.json?pagination=-1", 422},
		{"/api/v0/addresses/%FF/channels", 400},
		{"/api/v0/addresses/%00/post_types", 400},
		{"/api/v0/nothing", 404},
		{"/api/v0/messages/" + d.p1 + "/status/extra", 404},
		{"/api/ws0/messages?history=500", 426}, // not an upgrade: checked first
	}
	for _, tt := range tests {
		code, body, h := n.raw(t, http.MethodGet, tt.path, "", nil)
		if code != tt.want {
			t.Errorf("GET %.100s: %d, want %d; %s", tt.path, code, tt.want, clipBody(body))
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || !json.Valid(body) {
			t.Errorf("GET %.100s: answer is not JSON (%q): %s", tt.path, h.Get("Content-Type"), clipBody(body))
		}
		if code == 422 {
			var list []struct {
				Loc []string `json:"loc"`
				Msg string   `json:"msg"`
			}
			if err := json.Unmarshal(body, &list); err != nil || len(list) == 0 || len(list[0].Loc) == 0 || list[0].Msg == "" {
				t.Errorf("GET %.100s: 422 body is not an error list naming the parameter: %s", tt.path, clipBody(body))
			}
		}
	}
	// Bodies sent to GET routes are ignored; methods not served are 405 with JSON.
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPut, "/api/v0/messages", 405},
		{http.MethodGet, "/api/v0/messages", 405},
		{http.MethodDelete, "/api/v0/messages.json", 405},
		{http.MethodPost, "/api/v0/messages.json", 405},
		{http.MethodPost, "/api/v0/nothing", 404},
	} {
		code, body, h := n.raw(t, tt.method, tt.path, "application/json", []byte(`{}`))
		if code != tt.want || !json.Valid(body) {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, code, body, tt.want)
		}
		if code == 405 && h.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}
	// Oversized bodies on every POST route.
	big := bytes.Repeat([]byte(" "), 1<<20+1)
	for _, p := range []string{"/api/v0/messages", "/api/v0/ipfs/pubsub/pub", "/api/v0/p2p/pubsub/pub"} {
		code, body, _ := n.raw(t, http.MethodPost, p, "application/json", big)
		if code != http.StatusRequestEntityTooLarge || !json.Valid(body) {
			t.Errorf("POST %s oversized: %d %s", p, code, body)
		}
	}
}

// TestCORSAndMetrics checks CORS headers, preflights and the Prometheus endpoint.
func TestCORSAndMetrics(t *testing.T) {
	n := newNode(t, api.Config{})
	_, _, h := n.raw(t, http.MethodGet, "/api/v0/version", "", nil)
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET CORS header: %q", h.Get("Access-Control-Allow-Origin"))
	}
	_, _, h = n.raw(t, http.MethodPost, "/api/v0/messages", "application/json", []byte(`{}`))
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("POST CORS header: %q", h.Get("Access-Control-Allow-Origin"))
	}
	for _, tt := range []struct {
		path, method string
		want         int
	}{
		{"/api/v0/messages", "POST", 204},
		{"/api/v0/messages.json", "GET", 204},
		{"/api/v0/messages/" + strings.Repeat("a", 64), "GET", 204},
		{"/api/ws0/messages", "GET", 204},
		{"/nowhere", "GET", 404},
	} {
		req, _ := http.NewRequest(http.MethodOptions, n.url+tt.path, nil)
		req.Header.Set("Origin", "https://explorer.example")
		req.Header.Set("Access-Control-Request-Method", tt.method)
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("preflight %s: %d, want %d", tt.path, resp.StatusCode, tt.want)
			continue
		}
		if tt.want == 204 {
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), tt.method) ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "OPTIONS") || resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
				t.Errorf("preflight %s headers: %v", tt.path, resp.Header)
			}
		}
	}

	// Metrics: request counters by route pattern, latency and the websocket gauge.
	n.getJSON(t, "/api/v0/messages/"+strings.Repeat("0", 64), http.StatusNotFound, nil)
	code, body, h := n.raw(t, http.MethodGet, "/metrics", "", nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", code, h.Get("Content-Type"))
	}
	for _, want := range []string{
		`aleph_api_requests_total{code="404",method="GET",route="GET /api/v0/messages/{hash}"} 1`,
		`aleph_api_requests_total{code="200",method="GET",route="GET /api/v0/version"} 1`,
		`aleph_api_request_duration_seconds_bucket{method="GET",route="GET /api/v0/version"`,
		"aleph_api_websocket_connections 0",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// A second handler on the same registry shares the series instead of panicking.
	_ = api.New(api.Deps{Store: n.store, Metrics: n.reg}, api.Config{})

	// Docs.
	code, page, h := n.raw(t, http.MethodGet, "/api/docs", "", nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !bytes.Contains(page, []byte("/api/v0/messages.json")) {
		t.Errorf("docs page: %d %q", code, h.Get("Content-Type"))
	}
	var spec map[string]any
	n.getJSON(t, "/api/docs/openapi.json", http.StatusOK, &spec)
	if paths, _ := spec["paths"].(map[string]any); paths["/api/v0/messages/{item_hash}"] == nil {
		t.Errorf("openapi document: %v", spec["info"])
	}
	n.noInternalErrors(t)
}

// TestInternalErrors checks that store failures and handler panics (bugs) give a
// generic 500 whose cause is logged, not leaked.
func TestInternalErrors(t *testing.T) {
	ctx := t.Context()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "closed.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		deps api.Deps
		path string
	}{
		{"closed store", api.Deps{Store: st}, "/api/v0/messages.json"},
		{"closed store, one message", api.Deps{Store: st}, "/api/v0/messages/" + strings.Repeat("a", 64)},
		{"panic: no store", api.Deps{}, "/api/v0/channels/list.json"},
	} {
		log := &errorLog{}
		tt.deps.Log = slog.New(log)
		srv := httptest.NewServer(api.New(tt.deps, api.Config{}))
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusInternalServerError || string(body) != "{\"error\":\"internal error\"}\n" {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, body)
		}
		if len(log.errors()) != 1 {
			t.Errorf("%s: logged %q, want one error", tt.name, log.errors())
		}
	}
}
