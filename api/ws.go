package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// maxHistory bounds the websocket's history parameter (pyaleph: < 200).
const maxHistory = 199

// messagesSocket serves the websocket GET /api/ws0/messages: the latest history
// matching messages (oldest first), then every newly processed matching message,
// one JSON message object per text frame. A client that falls WSBuffer messages
// behind, or does not take a frame within WSWriteTimeout, is disconnected rather
// than slowing the node down.
func (s *server) messagesSocket(w http.ResponseWriter, r *http.Request) {
	if !isWebsocketUpgrade(r) {
		writeError(w, http.StatusUpgradeRequired, "websocket upgrade required")
		return
	}
	q := newQuery(r)
	mq := parseMessageQuery(q, r, false)
	history := q.int("history", 10, 0, maxHistory)
	if mq.skeletons != "" {
		q.fail("msgStatuses", "value_error", q.str("msgStatuses"), "the websocket streams processed messages only")
	}
	if len(q.errs) > 0 {
		s.writeParamErrors(w, r, q.errs)
		return
	}
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true} // CORS is "*" for the whole API
	if n := s.wsConns.Add(1); n > int64(s.cfg.MaxWebsockets) {
		s.wsConns.Add(-1)
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		_ = c.Close(websocket.StatusTryAgainLater, "Too many connections")
		return
	}
	defer s.wsConns.Add(-1)
	s.metrics.wsConnections.Inc()
	defer s.metrics.wsConnections.Dec()

	// Subscribe before the upgrade completes and before reading history, so that
	// nothing processed once the client is connected is lost; what is in both
	// history and the live stream is sent once.
	var sub *events.Subscription
	if s.d.Bus != nil {
		sub = s.d.Bus.Subscribe(s.cfg.WSBuffer)
		defer sub.Close()
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		return // Accept answered the client
	}
	defer func() { _ = c.CloseNow() }()

	// The client sends nothing; reading in the background answers pings and
	// notices when it leaves.
	ctx, cancel := context.WithCancel(c.CloseRead(r.Context()))
	defer cancel()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.heartbeat(ctx, c)
	}()
	defer wg.Wait()
	defer cancel()

	sent := map[string]bool{}
	if history > 0 && !mq.noMatch {
		f := mq.filter
		f.SortOrder = store.Descending
		rows, _, err := s.d.Store.QueryMessages(ctx, f, store.Page{Size: history, Number: 1})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("websocket history", "err", err)
				_ = c.Close(websocket.StatusInternalError, "internal error")
			}
			return
		}
		for i := len(rows) - 1; i >= 0; i-- {
			if !s.wsSend(ctx, c, rows[i], mq.format) {
				return
			}
			sent[rows[i].ItemHash] = true
		}
	}
	var live <-chan events.Event
	if sub != nil {
		live = sub.C
	}
	for {
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				_ = c.Close(websocket.StatusGoingAway, "server shutting down")
			}
			return
		case ev, ok := <-live:
			if !ok {
				// Dropped by the bus for lagging. Its buffers are likely full, so a
				// close handshake would only wait; drop the connection at once.
				s.log.Debug("websocket client fell behind; disconnecting", "remote", r.RemoteAddr)
				_ = c.CloseNow()
				return
			}
			if ev.Kind != events.Processed || ev.Message == nil || !matchMessage(&mq.filter, ev.Message, mq.noMatch) {
				continue
			}
			if sent[ev.ItemHash] {
				delete(sent, ev.ItemHash)
				continue
			}
			if !s.wsSend(ctx, c, ev.Message, mq.format) {
				return
			}
		}
	}
}

// wsSend writes one message object; false means the connection is done.
func (s *server) wsSend(ctx context.Context, c *websocket.Conn, m *store.Message, f contentFormat) bool {
	b, err := marshal(renderMessage(m, f))
	if err != nil {
		s.log.Error("websocket encode", "item_hash", m.ItemHash, "err", err)
		return true // skip it; never send non-JSON
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WSWriteTimeout)
	defer cancel()
	return c.Write(wctx, websocket.MessageText, b[:len(b)-1]) == nil // drop the encoder's newline
}

// heartbeat pings every WSPingInterval and closes the connection when a pong
// does not come back in time.
func (s *server) heartbeat(ctx context.Context, c *websocket.Conn) {
	t := time.NewTicker(s.cfg.WSPingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, s.cfg.WSWriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					_ = c.CloseNow()
				}
				return
			}
		}
	}
}

func isWebsocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// matchMessage applies a message filter in memory, to live websocket messages.
func matchMessage(f *store.MessageFilter, m *store.Message, noMatch bool) bool {
	if noMatch {
		return false
	}
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []message.Status{message.StatusProcessed, message.StatusRemoving}
	}
	st := m.Status
	if st == "" {
		st = message.StatusProcessed
	}
	if !slices.Contains(statuses, st) {
		return false
	}
	if !in(f.Hashes, m.ItemHash) || !in(f.Senders, m.Sender) || !in(f.Owners, m.Owner) ||
		!in(f.Refs, m.ContentRef) || !in(f.ContentHashes, m.ContentItemHash) ||
		!in(f.ContentKeys, m.ContentKey) || !in(f.ContentTypes, m.ContentType) ||
		!in(f.Channels, m.Channel) || !in(f.PaymentTypes, m.PaymentType) {
		return false
	}
	if len(f.Chains) > 0 && !slices.Contains(f.Chains, m.Chain) {
		return false
	}
	if len(f.Types) > 0 && !slices.Contains(f.Types, m.Type) {
		return false
	}
	if len(f.Tags) > 0 && !slices.ContainsFunc(m.Tags, func(t string) bool { return slices.Contains(f.Tags, t) }) {
		return false
	}
	t := m.Time.Seconds()
	if f.StartDate > 0 && t < f.StartDate || f.EndDate > 0 && t >= f.EndDate {
		return false
	}
	return true
}

// in reports whether v is in a filter list; an empty list matches everything.
func in(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
