package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

func wsURL(n *node, query string) string {
	return "ws" + strings.TrimPrefix(n.url, "http") + "/api/ws0/messages?" + query
}

func dial(t *testing.T, ctx context.Context, n *node, query string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, wsURL(n, query), opts)
	if err != nil {
		t.Fatalf("dial ?%s: %v", query, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// readFrame reads one text frame and decodes the message object.
func readFrame(t *testing.T, ctx context.Context, c *websocket.Conn) map[string]any {
	t.Helper()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("frame type %v", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame is not a JSON object: %q", b)
	}
	return m
}

func TestWebsocket(t *testing.T) {
	n := newNode(t, api.Config{})
	acc := accounts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var posts []string
	for i := range 3 {
		posts = append(posts, n.mustProcess(t, n.build(t, acc[0], message.TypePost, post("blog", `{"i":`+string(rune('0'+i))+`}`, ""), "TEST")))
	}
	n.mustProcess(t, n.build(t, acc[0], message.TypeAggregate, &message.AggregateContent{Key: message.AggregateKey{Name: "k"}, Content: json.RawMessage(`{"a":1}`)}, "TEST"))

	// History: the latest two matching, oldest first; then live messages that match.
	c := dial(t, ctx, n, "msgType=POST&history=2", nil)
	if m := readFrame(t, ctx, c); m["item_hash"] != posts[1] {
		t.Errorf("history frame 1: %v, want %s", m["item_hash"], posts[1])
	}
	m := readFrame(t, ctx, c)
	if m["item_hash"] != posts[2] || m["content"] == nil || m["size"] == nil || m["confirmed"] != false {
		t.Errorf("history frame 2: %v", m)
	}
	// A message processed between the subscription and the history query is in
	// both; it is sent once.
	dup, err := n.store.GetMessage(ctx, posts[2])
	if err != nil {
		t.Fatal(err)
	}
	n.bus.Publish(events.Event{Kind: events.Processed, ItemHash: posts[2], Message: dup})
	// Another socket with no history, filtered on the second account, without content.
	other := dial(t, ctx, n, "history=0&addresses="+acc[1].Address()+"&contentFormat=none", nil)

	n.mustProcess(t, n.build(t, acc[0], message.TypeAggregate, &message.AggregateContent{Key: message.AggregateKey{Name: "k"}, Content: json.RawMessage(`{"b":2}`)}, "TEST"))
	fromB := n.mustProcess(t, n.build(t, acc[1], message.TypePost, post("note", `{"from":"b"}`, ""), "OTHER"))
	live := n.mustProcess(t, n.build(t, acc[0], message.TypePost, post("blog", `{"live":true}`, ""), "TEST"))
	// Events arrive in processing order, so the AGGREGATE was filtered out if the
	// next POST frames are these.
	if m := readFrame(t, ctx, c); m["item_hash"] != fromB {
		t.Errorf("live frame 1: %v, want %s", m["item_hash"], fromB)
	}
	m = readFrame(t, ctx, c)
	if m["item_hash"] != live || m["type"] != "POST" {
		t.Errorf("live frame 2: %v, want %s", m["item_hash"], live)
	}
	if c, _ := m["content"].(map[string]any); c["type"] != "blog" {
		t.Errorf("live frame content: %v", m["content"])
	}
	mb := readFrame(t, ctx, other)
	if mb["item_hash"] != fromB {
		t.Errorf("filtered socket got %v, want %s", mb["item_hash"], fromB)
	}
	if _, has := mb["content"]; has {
		t.Error("contentFormat=none frame has content")
	}
	_ = other.Close(websocket.StatusNormalClosure, "Work complete")
	_ = c.Close(websocket.StatusNormalClosure, "Work complete")

	// Parameters are checked before the upgrade.
	for _, q := range []string{"history=200", "history=-1", "msgType=NOPE", "chains=X", "msgStatuses=forgotten"} {
		_, resp, err := websocket.Dial(ctx, wsURL(n, q), nil)
		if err == nil {
			t.Errorf("?%s: upgraded", q)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("?%s: %v", q, err)
		}
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
	}
	n.noInternalErrors(t)
}

func TestWebsocketConnectionLimit(t *testing.T) {
	n := newNode(t, api.Config{MaxWebsockets: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial(t, ctx, n, "history=0", nil)
	dial(t, ctx, n, "history=0", nil)
	third := dial(t, ctx, n, "history=0", nil)
	_, _, err := third.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusTryAgainLater {
		t.Errorf("third connection: %v (status %d), want close 1013", err, got)
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Reason != "Too many connections" {
		t.Errorf("close reason %q", ce.Reason)
	}
}

func TestWebsocketHeartbeat(t *testing.T) {
	n := newNode(t, api.Config{WSPingInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pinged := make(chan struct{}, 1)
	c := dial(t, ctx, n, "history=0", &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return true
	}})
	readCtx := c.CloseRead(ctx) // answers pings
	select {
	case <-pinged:
	case <-readCtx.Done():
		t.Fatal("connection closed before a ping")
	case <-ctx.Done():
		t.Fatal("no ping")
	}
}

// TestWebsocketSlowClient checks that a client that stops reading is
// disconnected while the bus keeps publishing without blocking.
func TestWebsocketSlowClient(t *testing.T) {
	n := newNode(t, api.Config{WSBuffer: 1, WSWriteTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(t, ctx, n, "history=0", nil)
	c.SetReadLimit(-1)

	big := json.RawMessage(`{"blob":"` + strings.Repeat("x", 64<<10) + `"}`)
	var sent int
	for ctx.Err() == nil {
		for range 16 {
			sent++
			h := message.HashContent([]byte{byte(sent), byte(sent >> 8), byte(sent >> 16)})
			n.bus.Publish(events.Event{Kind: events.Processed, ItemHash: h, Message: &store.Message{
				Message: message.Message{Chain: message.ChainETH, Sender: "0xS", Type: message.TypePost, ItemType: message.ItemStorage,
					ItemHash: h, Time: message.TimeFromSeconds(t0)},
				Content: big, Size: int64(len(big)), Status: message.StatusProcessed,
			}})
		}
		if gauge(t, n, "aleph_api_websocket_connections") == 0 {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("slow client still connected after %d events", sent)
	}
	// The client sees the end of the stream after what was buffered.
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("read did not end")
			}
			break
		}
	}
}

// gauge reads a gauge from the node's registry.
func gauge(t *testing.T, n *node, name string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
