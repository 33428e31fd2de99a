package guestapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

func TestProperties(t *testing.T) {
	s := devSigner(t)
	g := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: s})
	var p Properties
	if err := json.Unmarshal(g.expect("GET", "/properties", nil, 200, ""), &p); err != nil {
		t.Fatal(err)
	}
	want := Properties{Chain: message.ChainETH, Curve: "secp256k1", Address: s.Address(), PublicKey: s.(*evm.Account).PublicKeyCompressedHex()}
	if p != want {
		t.Fatalf("properties = %+v, want %+v", p, want)
	}
	if len(p.PublicKey) != 68 {
		t.Fatalf("public key %q: want 0x + 33 bytes hex, as the SDK's get_public_key", p.PublicKey)
	}
	g.expect("POST", "/properties", []byte("{}"), 405, "")
}

// unsigned builds the dict the SDK posts to /sign: an inline POST whose
// content address is addr, with the given envelope overrides.
func unsigned(t *testing.T, addr string, override map[string]any) []byte {
	t.Helper()
	content := fmt.Sprintf(`{"address":%q,"time":1700000000.5,"type":"test","content":{"answer":42}}`, addr)
	m := map[string]any{
		"chain": "ETH", "sender": devSigner(t).Address(), "type": "POST", "channel": "TEST",
		"time": 1700000000.5, "item_type": "inline", "item_content": content,
		"item_hash": message.HashContent([]byte(content)),
	}
	for k, v := range override {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSign(t *testing.T) {
	s := devSigner(t)
	g := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: s, MaxSignBody: 4096})
	reg := all.NewRegistry()

	b32 := "vkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkvkva" // base32 of 32 0xaa bytes
	for _, tc := range []struct {
		name     string
		addr     string
		override map[string]any
	}{
		{"hex address", vmA, nil},
		{"base32 address (ALEPH_ADDRESS_TO_USE)", b32, nil},
		{"sender and chain filled in", vmA, map[string]any{"sender": nil, "chain": nil}},
		{"sender in another case", vmA, map[string]any{"sender": strings.ToLower(s.Address())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := g.with(t).expect("POST", "/sign", unsigned(t, tc.addr, tc.override), 200, "")
			var signed map[string]any
			if err := json.Unmarshal(body, &signed); err != nil {
				t.Fatal(err)
			}
			if signed["sender"] != s.Address() || signed["channel"] != "TEST" {
				t.Fatalf("signed message %s: sender or channel lost", body)
			}
			m, err := message.Parse(body)
			if err != nil {
				t.Fatalf("signed message does not parse: %v", err)
			}
			if err := reg.Verify(m); err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
		})
	}

	other := devSigner(t).Address()
	accts, err := all.DevAccounts(2)
	if err != nil {
		t.Fatal(err)
	}
	content := `{"address":"` + vmA + `","time":1,"type":"t"}`
	for _, tc := range []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"another vm's address", unsigned(t, vmB, nil), 400, "does not match the VM item_hash"},
		{"the node's own address", unsigned(t, other, nil), 400, "does not match the VM item_hash"},
		{"item_hash of other content", unsigned(t, vmA, map[string]any{"item_hash": message.HashContent([]byte("x"))}), 400, "sha256 of item_content"},
		{"no item_content", unsigned(t, vmA, map[string]any{"item_content": nil, "item_type": "storage"}), 400, "only inline messages"},
		{"storage with content", unsigned(t, vmA, map[string]any{"item_type": "storage"}), 400, "item_content"},
		{"another sender", unsigned(t, vmA, map[string]any{"sender": accts[1].Address}), 400, "not the node's signing account"},
		{"another chain", unsigned(t, vmA, map[string]any{"chain": "SOL"}), 400, "not the node's signing account"},
		{"address case trick", []byte(`{"chain":"ETH","type":"POST","time":1,"item_type":"inline","item_content":` +
			jsonString(`{"address":"`+vmA+`","ADDRESS":"`+other+`","time":1,"type":"t"}`) + `,"item_hash":"` +
			message.HashContent([]byte(`{"address":"`+vmA+`","ADDRESS":"`+other+`","time":1,"type":"t"}`)) + `"}`), 400, "ADDRESS"},
		{"envelope case trick", []byte(`{"chain":"ETH","type":"POST","time":1,"item_content":` + jsonString(content) +
			`,"item_hash":"` + message.HashContent([]byte(content)) + `","ITEM_HASH":"x"}`), 400, "appears twice"},
		{"not json", []byte("nope"), 400, "JSON object"},
		{"array", []byte("[]"), 400, "JSON object"},
		{"trailing data", append(unsigned(t, vmA, nil), []byte(" {}")...), 400, "trailing"},
		{"content not an object", unsigned(t, vmA, map[string]any{"item_content": "[1]", "item_hash": message.HashContent([]byte("[1]"))}), 400, "not a JSON object"},
		{"too large", []byte(`{"x":"` + strings.Repeat("a", 5000) + `"}`), 413, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.with(t).expect("POST", "/sign", tc.body, tc.code, tc.want)
		})
	}
	g.expect("GET", "/sign", nil, 403, "") // GET goes to the proxy allow-list
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestMethodsRefused(t *testing.T) {
	g := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: devSigner(t)})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, p := range []string{"/api/v0/messages", "/api/v0/storage/add_file", "/anything", "/properties"} {
			got, b, h := g.do(m, p, []byte("{}"))
			var e errorBody
			if got != 405 || json.Unmarshal(b, &e) != nil || e.Error == "" || h.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: status %d body %s allow %q, want 405 with a JSON error", m, p, got, b, h.Get("Allow"))
			}
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := openCache(t, CacheConfig{})
	s := devSigner(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"bad vm hash", Config{VMHash: "xyz", Cache: c, Signer: s, CCN: "http://x"}},
		{"no cache", Config{VMHash: vmA, Signer: s, CCN: "http://x"}},
		{"no signer", Config{VMHash: vmA, Cache: c, CCN: "http://x"}},
		{"bad ccn", Config{VMHash: vmA, Cache: c, Signer: s, CCN: "unix:///x"}},
	} {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
}

func TestProxyToCCN(t *testing.T) {
	ccn := nodetest.Start(t)
	g := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: devSigner(t), CCN: ccn})

	direct := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(ccn + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, p := range []string{"/api/v0/version", "/api/v0/messages.json?pagination=1&page=1", "/api/v0/messages/" + vmA} {
		wantCode, wantBody := direct(p)
		code, body, h := g.do("GET", p, nil)
		if code != wantCode || string(body) != string(wantBody) {
			t.Errorf("GET %s via guest api = %d %s; direct %d %s", p, code, body, wantCode, wantBody)
		}
		if code == 200 && !strings.Contains(h.Get("Content-Type"), "json") {
			t.Errorf("GET %s: content type %q not passed on", p, h.Get("Content-Type"))
		}
	}
	if code, body, _ := g.do("HEAD", "/api/v0/version", nil); code != 200 || len(body) != 0 {
		t.Errorf("HEAD = %d with %d body bytes", code, len(body))
	}

	// Outside the allow-list: the CCN serves these, the program must not reach them.
	for _, p := range []string{"/metrics", "/version", "/api/docs", "/api/ws0/messages", "/ipfs/bafy", "/", "/api/v0"} {
		g.expect("GET", p, nil, 403, "not reachable")
	}
	// Dot segments are cleaned (and redirected) before the allow-list sees them.
	if code, _, h := g.do("GET", "/api/v0/../../metrics", nil); code/100 != 3 || h.Get("Location") != "/metrics" {
		t.Errorf("dot segments: %d to %q", code, h.Get("Location"))
	}
	g.expect("GET", "/api/v0/..%2F..%2Fmetrics", nil, 403, "")
	g.expect("GET", "/api/v0/version", []byte("body"), 400, "must not have a body")
	g.expect("POST", "/api/v0/messages", []byte(`{"sync":true}`), 405, "only proxies GET and HEAD")
}

func TestProxyCCNDown(t *testing.T) {
	g := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: devSigner(t), CCN: "http://127.0.0.1:1"})
	g.expect("GET", "/api/v0/version", nil, 502, "unreachable")
}

func TestPubsubPublishes(t *testing.T) {
	ccn := nodetest.Start(t)
	s := devSigner(t)
	clk := newClock()
	pub := ClientPublisher{Client: client.New(ccn), Sync: true}
	g := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: s, CCN: ccn, Publisher: pub, Now: clk.Now})

	// What the SDK's old pubsub path sends: a whole message as JSON text, here
	// claiming an amend under some other address.
	inner := `{"address":"0x0000000000000000000000000000000000000001","time":1,"type":"amend","ref":"` + vmB + `","content":{"hello":"world"}}`
	data, _ := json.Marshal(map[string]any{"chain": "ETH", "channel": "MY-CHANNEL", "item_content": inner, "type": "POST"})
	for _, path := range []string{"/api/v0/ipfs/pubsub/pub", "/api/v0/p2p/pubsub/pub"} {
		body, _ := json.Marshal(map[string]string{"topic": "ALEPH-TEST", "data": string(data)})
		var res struct {
			Status   string `json:"status"`
			ItemHash string `json:"item_hash"`
		}
		if err := json.Unmarshal(g.expect("POST", path, body, 200, `"success"`), &res); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second) // a distinct message per path

		// Read it back through the guest API's own proxy.
		raw := g.expect("GET", "/api/v0/messages/"+res.ItemHash, nil, 200, "")
		var got struct {
			Status  string `json:"status"`
			Message struct {
				Sender  string `json:"sender"`
				Channel string `json:"channel"`
				Content struct {
					Address string          `json:"address"`
					Type    string          `json:"type"`
					Ref     any             `json:"ref"`
					Content json.RawMessage `json:"content"`
				} `json:"content"`
			} `json:"message"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		m := got.Message
		if got.Status != "processed" || m.Sender != s.Address() || m.Content.Address != s.Address() ||
			m.Content.Type != PubsubPostType || m.Content.Ref != nil || m.Channel != "MY-CHANNEL" || string(m.Content.Content) != `{"hello":"world"}` {
			t.Fatalf("published message = %s", raw)
		}
	}

	for _, tc := range []struct{ name, body, want string }{
		{"not json", "x", "topic and data"},
		{"no topic", `{"data":"{}"}`, "topic"},
		{"data not a string", `{"topic":"t","data":{}}`, "topic and data"},
		{"data not json", `{"topic":"t","data":"nope"}`, "JSON text of a message"},
		{"no item_content", `{"topic":"t","data":"{}"}`, "item_content"},
		{"long channel", `{"topic":"t","data":` + jsonString(`{"channel":"`+strings.Repeat("c", 200)+`","item_content":"{}"}`) + `}`, "channel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.with(t).expect("POST", "/api/v0/p2p/pubsub/pub", []byte(tc.body), 400, tc.want)
		})
	}
}

func TestPubsubPublisherFailure(t *testing.T) {
	fail := publisherFunc(func(context.Context, []byte) error { return fmt.Errorf("ccn said no") })
	g := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: devSigner(t), Publisher: fail})
	body := `{"topic":"t","data":` + jsonString(`{"item_content":"{\"content\":1}"}`) + `}`
	g.expect("POST", "/api/v0/ipfs/pubsub/pub", []byte(body), 502, "ccn said no")

	none := startGuest(t, Config{VMHash: vmA, Cache: openCache(t, CacheConfig{}), Signer: devSigner(t)})
	none.expect("POST", "/api/v0/ipfs/pubsub/pub", []byte(body), 503, "not available")
}

// publisherFunc injects a publisher fault the real CCN cannot be made to give.
type publisherFunc func(context.Context, []byte) error

func (f publisherFunc) Submit(ctx context.Context, raw []byte) error { return f(ctx, raw) }
