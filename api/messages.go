package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// ForgottenLister is implemented by stores that can list forgotten skeletons,
// which GET /api/v0/messages.json?msgStatuses=forgotten serves. Without it that
// listing answers 400. Order and dates apply to the forgetting time.
type ForgottenLister interface {
	QueryForgotten(ctx context.Context, f store.MessageFilter, p store.Page) ([]*store.Forgotten, *store.Cursor, error)
	CountForgotten(ctx context.Context, f store.MessageFilter) (int64, error)
}

// messageQuery is a parsed messages.json (or websocket) query.
type messageQuery struct {
	filter store.MessageFilter
	format contentFormat
	paging paging
	// noMatch is set when a filter can match nothing on this node (a block range:
	// there are no on-chain confirmations yet).
	noMatch bool
	// skeletons is forgotten or removed for the skeleton listings.
	skeletons message.Status
}

// parseMessageQuery reads every filter of §5.3. withPaging adds pagination, page
// and cursor (messages.json); the websocket has none.
func parseMessageQuery(q *query, r *http.Request, withPaging bool) messageQuery {
	var mq messageQuery
	f := &mq.filter
	f.Types = q.types("msgTypes")
	if q.str("msgType") != "" {
		for _, t := range q.types("msgType") {
			if !slices.Contains(f.Types, t) {
				f.Types = append(f.Types, t)
			}
		}
	}
	f.Statuses = q.statuses("msgStatuses")
	f.Senders = q.list("addresses")
	f.Owners = q.list("owners")
	f.Refs = q.list("refs")
	f.ContentHashes = q.list("contentHashes")
	f.ContentKeys = q.list("contentKeys")
	f.ContentTypes = q.list("contentTypes")
	f.Chains = q.chains("chains")
	f.Channels = q.list("channels")
	f.Tags = q.list("tags")
	f.Hashes = q.hashes("hashes")
	f.PaymentTypes = q.paymentTypes("paymentTypes")
	f.StartDate, f.EndDate = q.dateRange()
	f.SortOrder = q.sortOrder("sortOrder")
	startBlock := q.int("startBlock", 0, 0, maxPage)
	endBlock := q.int("endBlock", 0, 0, maxPage)
	mq.noMatch = startBlock > 0 || endBlock > 0

	mq.format = formatFull
	switch raw := strings.TrimSpace(q.str("contentFormat")); raw {
	case "", "full":
	case "headers":
		mq.format = formatHeaders
	case "none":
		mq.format = formatNone
	default:
		q.fail("contentFormat", "enum", raw, "input should be full, headers or none")
	}
	if q.bool("excludeContent", false) {
		mq.format = formatNone
	}
	if withPaging {
		mq.paging = q.paging(r, 20, 0, maxPagination, decodeTimeCursor)
		q.sortBy(mq.paging.cursorMode)
	} else {
		q.sortBy(false)
	}

	// msgStatuses=forgotten or =removed switch to skeleton listings, alone.
	for _, st := range f.Statuses {
		if st != message.StatusForgotten && st != message.StatusRemoved {
			continue
		}
		if len(f.Statuses) != 1 {
			q.fail("msgStatuses", "value_error", q.str("msgStatuses"), "forgotten and removed must be requested alone")
			break
		}
		mq.skeletons = st
		for _, name := range []string{"refs", "contentTypes", "contentHashes", "contentKeys", "tags", "startBlock", "endBlock", "cursor"} {
			if q.has(name) {
				q.fail(name, "value_error", q.str(name), "not supported with msgStatuses=%s", st)
			}
		}
	}
	return mq
}

// pageRouteOK rejects /…/page/{page} paths that do not end in .json.
func pageRouteOK(w http.ResponseWriter, r *http.Request) bool {
	if v := r.PathValue("page"); v != "" && !strings.HasSuffix(v, ".json") {
		writeError(w, http.StatusNotFound, "not found")
		return false
	}
	return true
}

type messagesPage struct {
	Messages          []any  `json:"messages"`
	PaginationPage    int    `json:"pagination_page"`
	PaginationTotal   int64  `json:"pagination_total"`
	PaginationPerPage int    `json:"pagination_per_page"`
	PaginationItem    string `json:"pagination_item"`
}

type messagesCursorPage struct {
	Messages          []any   `json:"messages"`
	PaginationPerPage int     `json:"pagination_per_page"`
	NextCursor        *string `json:"next_cursor"`
}

// pageTotal is pyaleph's rule: a short, non-empty page gives the total without
// counting. An empty page past the end is counted (pyaleph over-estimates it).
func pageTotal(p paging, rows int, count func() (int64, error)) (int64, error) {
	if p.size == 0 {
		if p.number <= 1 {
			return int64(rows), nil
		}
		return count()
	}
	if rows > 0 && rows < p.size {
		return int64(p.number-1)*int64(p.size) + int64(rows), nil
	}
	return count()
}

// listMessages serves GET /api/v0/messages.json and /api/v0/messages/page/{page}.json.
func (s *server) listMessages(w http.ResponseWriter, r *http.Request) {
	if !pageRouteOK(w, r) {
		return
	}
	q := newQuery(r)
	mq := parseMessageQuery(q, r, true)
	if len(q.errs) > 0 {
		if mq.skeletons != "" && onlySkeletonErrors(q.errs) {
			writeError(w, http.StatusBadRequest, q.errs[0].Loc[0]+": "+q.errs[0].Msg)
			return
		}
		s.writeParamErrors(w, r, q.errs)
		return
	}
	if mq.skeletons != "" {
		s.listSkeletons(w, r, mq)
		return
	}
	ctx := r.Context()
	var (
		rows []*store.Message
		next *store.Cursor
		err  error
	)
	if !mq.noMatch {
		rows, next, err = s.d.Store.QueryMessages(ctx, mq.filter, mq.paging.page())
		if err != nil {
			s.internalError(w, r, "query messages", err)
			return
		}
	}
	items := make([]any, len(rows))
	for i, m := range rows {
		items[i] = renderMessage(m, mq.format)
	}
	if mq.paging.cursorMode {
		s.writeJSON(w, r, http.StatusOK, messagesCursorPage{Messages: items, PaginationPerPage: mq.paging.size, NextCursor: encodeCursor(next)})
		return
	}
	total, err := pageTotal(mq.paging, len(rows), func() (int64, error) {
		if mq.noMatch {
			return 0, nil
		}
		return s.counts.get(countKey{"messages", mq.filter}, func() (int64, error) { return s.d.Store.CountMessages(ctx, mq.filter) })
	})
	if err != nil {
		s.internalError(w, r, "count messages", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, messagesPage{
		Messages: items, PaginationPage: mq.paging.number, PaginationTotal: total,
		PaginationPerPage: mq.paging.size, PaginationItem: "messages",
	})
}

// onlySkeletonErrors reports whether every error is a "not supported with
// msgStatuses=…" one, which pyaleph answers with 400 rather than 422.
func onlySkeletonErrors(errs []paramError) bool {
	for _, e := range errs {
		if !strings.HasPrefix(e.Msg, "not supported with msgStatuses=") {
			return false
		}
	}
	return true
}

// listSkeletons serves msgStatuses=forgotten (and refuses removed: the node keeps
// no snapshot of removed messages).
func (s *server) listSkeletons(w http.ResponseWriter, r *http.Request, mq messageQuery) {
	lister, ok := s.d.Store.(ForgottenLister)
	if mq.skeletons != message.StatusForgotten || !ok {
		writeError(w, http.StatusBadRequest, "listing "+string(mq.skeletons)+" messages is not supported by this node")
		return
	}
	f := mq.filter
	f.Statuses = nil
	ctx := r.Context()
	rows, _, err := lister.QueryForgotten(ctx, f, mq.paging.page())
	if err != nil {
		s.internalError(w, r, "query forgotten messages", err)
		return
	}
	items := make([]any, len(rows))
	for i, sk := range rows {
		items[i] = renderSkeleton(sk)
	}
	total, err := pageTotal(mq.paging, len(rows), func() (int64, error) { return lister.CountForgotten(ctx, f) })
	if err != nil {
		s.internalError(w, r, "count forgotten messages", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, messagesPage{
		Messages: items, PaginationPage: mq.paging.number, PaginationTotal: total,
		PaginationPerPage: mq.paging.size, PaginationItem: "messages",
	})
}

// itemHashParam reads and checks the {hash} path value; it answers 400 itself.
func itemHashParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.PathValue("hash")
	if !message.IsItemHash(h) {
		writeError(w, http.StatusBadRequest, "invalid message hash")
		return "", false
	}
	return h, true
}

// statusOf reads a status record; ok=false means it answered (404 or 500).
func (s *server) statusOf(w http.ResponseWriter, r *http.Request, hash string) (store.StatusRecord, bool) {
	rec, err := s.d.Store.GetStatus(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "message not found")
		return rec, false
	}
	if err != nil {
		s.internalError(w, r, "get message status", err)
		return rec, false
	}
	return rec, true
}

type statusJSON struct {
	Status        message.Status `json:"status"`
	ItemHash      string         `json:"item_hash"`
	ReceptionTime string         `json:"reception_time"`
}

// getMessage serves GET /api/v0/messages/{hash} with every status shape. Query
// parameters (the TS SDK's hashes[]=…) are ignored.
func (s *server) getMessage(w http.ResponseWriter, r *http.Request) {
	hash, ok := itemHashParam(w, r)
	if !ok {
		return
	}
	// A status can change between reading it and reading the record it points to;
	// read again once when they disagree.
	for attempt := 0; ; attempt++ {
		rec, ok := s.statusOf(w, r, hash)
		if !ok {
			return
		}
		body, status, err := s.messageStatusBody(r.Context(), rec)
		if errors.Is(err, store.ErrNotFound) && attempt == 0 {
			continue
		}
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "message not found")
			return
		}
		if err != nil {
			s.internalError(w, r, "get message", err)
			return
		}
		if body == nil {
			writeError(w, status, "message "+string(rec.Status)+" and no snapshot is kept")
			return
		}
		s.writeJSON(w, r, status, body)
		return
	}
}

// messageStatusBody builds the answer for a status record; a nil body with a
// status means an error answer.
func (s *server) messageStatusBody(ctx context.Context, rec store.StatusRecord) (any, int, error) {
	head := statusJSON{Status: rec.Status, ItemHash: rec.ItemHash, ReceptionTime: isoTime(rec.ReceptionTime)}
	switch rec.Status {
	case message.StatusPending:
		ps, err := s.d.Store.PendingByHash(ctx, rec.ItemHash)
		if err != nil {
			return nil, 0, err
		}
		copies := make([]pendingJSON, len(ps))
		for i, p := range ps {
			copies[i] = renderPending(p)
		}
		return struct {
			statusJSON
			Messages []pendingJSON `json:"messages"`
		}{head, copies}, http.StatusOK, nil
	case message.StatusProcessed, message.StatusRemoving:
		m, err := s.d.Store.GetMessage(ctx, rec.ItemHash)
		if err != nil {
			return nil, 0, err
		}
		if rec.Status == message.StatusProcessed {
			return struct {
				statusJSON
				Message messageJSON `json:"message"`
			}{head, renderMessage(m, formatFull)}, http.StatusOK, nil
		}
		return struct {
			statusJSON
			Message messageJSON `json:"message"`
			Reason  *string     `json:"reason"`
		}{head, renderMessage(m, formatFull), nil}, http.StatusOK, nil
	case message.StatusRejected:
		rj, err := s.d.Store.GetRejected(ctx, rec.ItemHash)
		if err != nil {
			return nil, 0, err
		}
		return struct {
			statusJSON
			Message   json.RawMessage   `json:"message"`
			ErrorCode message.ErrorCode `json:"error_code"`
			Details   json.RawMessage   `json:"details"`
		}{head, rawOrString(rj.Message), rj.ErrorCode, rawOrNull(rj.Details)}, http.StatusOK, nil
	case message.StatusForgotten:
		f, err := s.d.Store.GetForgotten(ctx, rec.ItemHash)
		if err != nil {
			return nil, 0, err
		}
		sk := renderSkeleton(f)
		return struct {
			statusJSON
			Message     skeletonJSON `json:"message"`
			ForgottenBy []string     `json:"forgotten_by"`
		}{head, sk, sk.ForgottenBy}, http.StatusOK, nil
	case message.StatusRemoved:
		return nil, http.StatusGone, nil
	}
	return nil, 0, errors.New("unknown message status " + string(rec.Status))
}

// rawOrString keeps a raw JSON value, or wraps invalid bytes in a JSON string.
func rawOrString(raw json.RawMessage) json.RawMessage {
	if len(raw) > 0 && json.Valid(raw) {
		return raw
	}
	b, _ := json.Marshal(string(raw)) // strings always encode
	return b
}

// messageSub serves GET /api/v0/messages/{hash}/status and /content.
func (s *server) messageSub(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("sub") {
	case "status":
		s.messageStatus(w, r)
	case "content":
		s.messageContent(w, r)
	default:
		writeError(w, http.StatusNotFound, "not found")
	}
}

func (s *server) messageStatus(w http.ResponseWriter, r *http.Request) {
	hash, ok := itemHashParam(w, r)
	if !ok {
		return
	}
	rec, ok := s.statusOf(w, r, hash)
	if !ok {
		return
	}
	s.writeJSON(w, r, http.StatusOK, statusJSON{Status: rec.Status, ItemHash: rec.ItemHash, ReceptionTime: isoTime(rec.ReceptionTime)})
}

// messageContent answers the content of a processed message: for a POST only the
// inner content.content.
func (s *server) messageContent(w http.ResponseWriter, r *http.Request) {
	hash, ok := itemHashParam(w, r)
	if !ok {
		return
	}
	rec, ok := s.statusOf(w, r, hash)
	if !ok {
		return
	}
	if rec.Status != message.StatusProcessed {
		writeError(w, http.StatusUnprocessableEntity, "invalid message status: "+string(rec.Status))
		return
	}
	m, err := s.d.Store.GetMessage(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "message not found")
		return
	}
	if err != nil {
		s.internalError(w, r, "get message", err)
		return
	}
	content := rawOrNull(m.Content)
	if m.Type == message.TypePost {
		var c struct {
			Content json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(content, &c); err == nil {
			content = rawOrNull(c.Content)
		}
	}
	writeRaw(w, http.StatusOK, append(append([]byte{}, content...), '\n'))
}

// messageHashes serves GET /api/v0/messages/hashes.
func (s *server) messageHashes(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	var status message.Status
	if raw := strings.TrimSpace(q.str("status")); raw != "" {
		status = message.Status(strings.ToLower(raw))
		if !knownStatus(status) {
			q.fail("status", "enum", raw, "input should be pending, processed, rejected, forgotten, removing or removed")
		}
	}
	p := paging{size: q.int("pagination", 20, 0, maxPagination), number: q.int("page", 1, 1, maxPage)}
	start, end := q.dateRange()
	order := q.sortOrder("sortOrder")
	hashOnly := q.bool("hash_only", true)
	if len(q.errs) > 0 {
		s.writeParamErrors(w, r, q.errs)
		return
	}
	ctx := r.Context()
	hashes, err := s.d.Store.MessageHashes(ctx, status, start, end, order, p.page())
	if err != nil {
		s.internalError(w, r, "list message hashes", err)
		return
	}
	total, err := pageTotal(p, len(hashes), func() (int64, error) {
		if c, ok := s.d.Store.(HashCounter); ok {
			return c.CountMessageHashes(ctx, status, start, end)
		}
		all, err := s.d.Store.MessageHashes(ctx, status, start, end, order, store.Page{})
		return int64(len(all)), err
	})
	if err != nil {
		s.internalError(w, r, "count message hashes", err)
		return
	}
	var items any = hashes
	if hashes == nil {
		items = []string{}
	}
	if !hashOnly {
		// pyaleph's hash_only=false is broken (A.20); we answer status records.
		recs := make([]statusJSON, 0, len(hashes))
		for _, h := range hashes {
			rec, err := s.d.Store.GetStatus(ctx, h)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				s.internalError(w, r, "get message status", err)
				return
			}
			recs = append(recs, statusJSON{Status: rec.Status, ItemHash: rec.ItemHash, ReceptionTime: isoTime(rec.ReceptionTime)})
		}
		items = recs
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Hashes            any    `json:"hashes"`
		PaginationPage    int    `json:"pagination_page"`
		PaginationTotal   int64  `json:"pagination_total"`
		PaginationPerPage int    `json:"pagination_per_page"`
		PaginationItem    string `json:"pagination_item"`
	}{items, p.number, total, p.size, "hashes"})
}

// HashCounter is implemented by stores that count GET /api/v0/messages/hashes
// matches directly; without it the API counts the listing.
type HashCounter interface {
	CountMessageHashes(ctx context.Context, status message.Status, start, end float64) (int64, error)
}
