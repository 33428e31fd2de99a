package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// maxFrameSize bounds one websocket frame: an inline message is at most 200,000
// characters, which JSON escaping and the parsed content can multiply.
const maxFrameSize = 16 << 20

// Watch is a subscription to the messages websocket. Close it when done.
type Watch struct {
	conn *websocket.Conn
	ctx  context.Context
}

// WatchMessages subscribes to GET /api/ws0/messages: the node first sends up to
// f.History stored matching messages (oldest first), then every newly processed
// message that matches. The subscription ends when ctx ends or Close is called.
func (c *Client) WatchMessages(ctx context.Context, f WatchFilter) (*Watch, error) {
	u, err := wsURL(c.base)
	if err != nil {
		return nil, fmt.Errorf("watch messages: %w", err)
	}
	path := "/api/ws0/messages"
	if q := f.Query(); q != "" {
		path += "?" + q
	}
	hdr := http.Header{}
	hdr.Set("User-Agent", c.userAgent)
	// The client's timeout bounds the handshake only (the library applies it to
	// the dial and clears it for the connection).
	conn, resp, err := websocket.Dial(ctx, u+path, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: hdr})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
				resp.Body.Close()
			}
			return nil, &APIError{Method: http.MethodGet, Path: path, StatusCode: resp.StatusCode, Body: body}
		}
		return nil, fmt.Errorf("watch messages: %w", err)
	}
	conn.SetReadLimit(maxFrameSize)
	return &Watch{conn: conn, ctx: ctx}, nil
}

// wsURL maps an http(s) base URL to ws(s).
func wsURL(base string) (string, error) {
	switch {
	case strings.HasPrefix(base, "http://"):
		return "ws://" + strings.TrimPrefix(base, "http://"), nil
	case strings.HasPrefix(base, "https://"):
		return "wss://" + strings.TrimPrefix(base, "https://"), nil
	case strings.HasPrefix(base, "ws://"), strings.HasPrefix(base, "wss://"):
		return base, nil
	}
	return "", fmt.Errorf("base URL %q is not http(s)", base)
}

// Next waits for the next message. It returns the context's error when the
// subscription's context (or ctx) ends, and another error when the connection
// fails or the node sends something that is not a message.
func (w *Watch) Next(ctx context.Context) (*Message, error) {
	rctx, cancel := mergeContexts(w.ctx, ctx)
	defer cancel()
	typ, data, err := w.conn.Read(rctx)
	if err != nil {
		if e := w.ctx.Err(); e != nil {
			return nil, e
		}
		if e := ctx.Err(); e != nil {
			return nil, e
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("watch messages: closed by the node: %d %s", ce.Code, ce.Reason)
		}
		return nil, fmt.Errorf("watch messages: %w", err)
	}
	if typ != websocket.MessageText {
		return nil, errors.New("watch messages: the node sent a binary frame")
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("watch messages: %w", err)
	}
	return &m, nil
}

// Messages iterates over the subscription until its context ends or an error
// occurs; the last pair carries that error (the context's error on a normal end).
// The connection is closed when the iteration ends.
func (w *Watch) Messages() iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		defer w.Close()
		for {
			m, err := w.Next(w.ctx)
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

// Close ends the subscription with a normal closure. Closing a subscription whose
// connection already ended is not an error.
func (w *Watch) Close() error {
	if err := w.conn.Close(websocket.StatusNormalClosure, "done"); err != nil {
		_ = w.conn.CloseNow()
	}
	return nil
}

// mergeContexts returns a context that ends when either a or b ends.
func mergeContexts(a, b context.Context) (context.Context, context.CancelFunc) {
	if a == b || b == nil {
		return context.WithCancel(a)
	}
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}
