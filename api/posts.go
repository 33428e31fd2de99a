package api

import (
	"encoding/json"
	"net/http"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// postV0JSON is pyaleph's legacy merged post: the latest version's envelope, the
// latest inner content, and the original's identity.
type postV0JSON struct {
	Chain             message.Chain    `json:"chain"`
	ItemHash          string           `json:"item_hash"`
	Sender            string           `json:"sender"`
	Type              string           `json:"type"`
	Channel           *string          `json:"channel"`
	Confirmed         bool             `json:"confirmed"`
	Content           json.RawMessage  `json:"content"`
	ItemContent       *string          `json:"item_content"`
	ItemType          message.ItemType `json:"item_type"`
	Signature         *string          `json:"signature"`
	Size              int64            `json:"size"`
	Time              json.RawMessage  `json:"time"`
	Confirmations     []confirmation   `json:"confirmations"`
	OriginalItemHash  string           `json:"original_item_hash"`
	OriginalSignature *string          `json:"original_signature"`
	OriginalType      string           `json:"original_type"`
	Hash              string           `json:"hash"`
	Address           string           `json:"address"`
	Ref               *string          `json:"ref"`
}

// postV1JSON is the /api/v1 post.
type postV1JSON struct {
	ItemHash         string          `json:"item_hash"`
	Content          json.RawMessage `json:"content"`
	OriginalItemHash string          `json:"original_item_hash"`
	OriginalType     string          `json:"original_type"`
	Address          string          `json:"address"`
	Ref              *string         `json:"ref"`
	Channel          *string         `json:"channel"`
	Created          string          `json:"created"`
	LastUpdated      string          `json:"last_updated"`
}

// latest returns the latest version's post record.
func latest(v *store.PostView) *store.Post {
	if v.Latest != nil {
		return v.Latest
	}
	return v.Original
}

func renderPostV0(v *store.PostView) postV0JSON {
	o, l := v.Original, latest(v)
	out := postV0JSON{
		ItemHash:         l.ItemHash,
		Sender:           o.Owner,
		Type:             l.Type,
		Channel:          optString(l.Channel),
		Content:          rawOrNull(l.Content),
		Time:             json.RawMessage("null"),
		Confirmations:    []confirmation{},
		OriginalItemHash: o.ItemHash,
		OriginalType:     o.Type,
		Hash:             o.ItemHash,
		Address:          o.Owner,
		Ref:              optString(o.Ref),
	}
	lm := v.LatestMessage
	if lm == nil {
		lm = v.OriginalMessage
	}
	if lm != nil {
		out.Chain = lm.Chain
		out.Channel = optString(lm.Channel)
		if lm.ItemType == message.ItemInline {
			ic := lm.ItemContent
			out.ItemContent = &ic
		}
		out.ItemType = lm.ItemType
		out.Signature = optString(lm.Signature)
		out.Size = lm.Size
		out.Time = timeJSON(lm.Time)
	}
	if v.OriginalMessage != nil {
		out.OriginalSignature = optString(v.OriginalMessage.Signature)
	}
	return out
}

func renderPostV1(v *store.PostView) postV1JSON {
	o, l := v.Original, latest(v)
	return postV1JSON{
		ItemHash:         l.ItemHash,
		Content:          rawOrNull(l.Content),
		OriginalItemHash: o.ItemHash,
		OriginalType:     o.Type,
		Address:          o.Owner,
		Ref:              optString(o.Ref),
		Channel:          optString(o.Channel),
		Created:          isoSeconds(o.CreationTime),
		LastUpdated:      isoSeconds(l.CreationTime),
	}
}

type postsPage struct {
	Posts             []any  `json:"posts"`
	PaginationPage    int    `json:"pagination_page"`
	PaginationTotal   int64  `json:"pagination_total"`
	PaginationPerPage int    `json:"pagination_per_page"`
	PaginationItem    string `json:"pagination_item"`
}

type postsCursorPage struct {
	Posts             []any   `json:"posts"`
	PaginationPerPage int     `json:"pagination_per_page"`
	NextCursor        *string `json:"next_cursor"`
}

func (s *server) postsV0(w http.ResponseWriter, r *http.Request) {
	s.listPosts(w, r, func(v *store.PostView) any { return renderPostV0(v) })
}

func (s *server) postsV1(w http.ResponseWriter, r *http.Request) {
	s.listPosts(w, r, func(v *store.PostView) any { return renderPostV1(v) })
}

// listPosts serves the posts listings (§5.4): only originals, with their latest
// amend merged in.
func (s *server) listPosts(w http.ResponseWriter, r *http.Request, render func(*store.PostView) any) {
	if !pageRouteOK(w, r) {
		return
	}
	q := newQuery(r)
	var f store.PostFilter
	f.Owners = q.list("addresses")
	f.Hashes = q.hashes("hashes")
	f.Refs = q.list("refs")
	f.Types = q.list("types")
	f.Tags = q.list("tags")
	f.Channels = q.list("channels")
	f.StartDate, f.EndDate = q.dateRange()
	f.SortOrder = q.sortOrder("sortOrder")
	p := q.paging(r, 20, 0, maxPagination, decodeTimeCursor)
	q.sortBy(p.cursorMode)
	if len(q.errs) > 0 {
		s.writeParamErrors(w, r, q.errs)
		return
	}
	ctx := r.Context()
	rows, next, err := s.d.Store.QueryPosts(ctx, f, p.page())
	if err != nil {
		s.internalError(w, r, "query posts", err)
		return
	}
	items := make([]any, 0, len(rows))
	for _, v := range rows {
		if v == nil || v.Original == nil {
			continue
		}
		items = append(items, render(v))
	}
	if p.cursorMode {
		s.writeJSON(w, r, http.StatusOK, postsCursorPage{Posts: items, PaginationPerPage: p.size, NextCursor: encodeCursor(next)})
		return
	}
	total, err := pageTotal(p, len(rows), func() (int64, error) {
		return s.counts.get(countKey{"posts", f}, func() (int64, error) { return s.d.Store.CountPosts(ctx, f) })
	})
	if err != nil {
		s.internalError(w, r, "count posts", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, postsPage{Posts: items, PaginationPage: p.number, PaginationTotal: total, PaginationPerPage: p.size, PaginationItem: "posts"})
}
