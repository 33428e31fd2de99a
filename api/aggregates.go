package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-aleph/go-aleph/store"
)

// aggregateInfo is the with_info entry of one key. Unlike pyaleph (quirk A.13,
// where the two hashes are swapped), original_item_hash is the first element and
// last_update_item_hash the latest.
type aggregateInfo struct {
	Created            string `json:"created"`
	LastUpdated        string `json:"last_updated"`
	OriginalItemHash   string `json:"original_item_hash"`
	LastUpdateItemHash string `json:"last_update_item_hash"`
}

// orderedObject writes a JSON object whose keys keep the given order.
type orderedObject struct {
	keys []string
	vals []json.RawMessage
}

func (o *orderedObject) add(k string, v json.RawMessage) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(bytes.TrimSuffix(kb, []byte("\n")))
		b.WriteByte(':')
		b.Write(o.vals[i])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// addressAggregates serves GET /api/v0/aggregates/{address}.json.
func (s *server) addressAggregates(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	address, ok := strings.CutSuffix(file, ".json")
	if !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	if !cleanString(address) {
		writeError(w, http.StatusBadRequest, "invalid address")
		return
	}
	q := newQuery(r)
	keys := q.list("keys")
	withInfo := q.bool("with_info", false)
	valueOnly := q.bool("value_only", false)
	q.int("limit", 1000, 1, maxPagination) // accepted and unused, as upstream
	if len(q.errs) > 0 {
		s.writeParamErrors(w, r, q.errs)
		return
	}
	if address == "" {
		writeError(w, http.StatusNotFound, "No aggregate found for this address")
		return
	}
	aggs, err := s.d.Store.GetAggregates(r.Context(), address, keys)
	if err != nil {
		s.internalError(w, r, "get aggregates", err)
		return
	}
	if len(aggs) == 0 {
		writeError(w, http.StatusNotFound, "No aggregate found for this address")
		return
	}
	if valueOnly && len(keys) == 1 {
		for _, a := range aggs {
			if a.Key == keys[0] {
				writeRaw(w, http.StatusOK, append(append([]byte{}, rawOrNull(a.Content)...), '\n'))
				return
			}
		}
		writeError(w, http.StatusNotFound, "No aggregate found for this address")
		return
	}
	var data, info orderedObject
	for _, a := range aggs {
		data.add(a.Key, rawOrNull(a.Content))
		if withInfo {
			b, err := marshal(aggregateInfo{
				Created:            isoSeconds(a.CreationTime),
				LastUpdated:        isoSeconds(a.LastUpdateTime),
				OriginalItemHash:   a.OriginalHash,
				LastUpdateItemHash: a.LastRevisionHash,
			})
			if err != nil {
				s.internalError(w, r, "encode aggregate info", err)
				return
			}
			info.add(a.Key, bytes.TrimSuffix(b, []byte("\n")))
		}
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Address string        `json:"address"`
		Data    orderedObject `json:"data"`
		Info    orderedObject `json:"info"`
	}{address, data, info})
}

type aggregateJSON struct {
	Address     string          `json:"address"`
	Key         string          `json:"key"`
	Content     json.RawMessage `json:"content"`
	Created     string          `json:"created"`
	LastUpdated string          `json:"last_updated"`
}

// listAggregates serves GET /api/v0/aggregates(.json).
//
// In cursor mode store.Cursor is the last row's sort time and "owner/key" (the
// store's convention, sqlstore.AggregateCursor); the cursor text is pyaleph's
// {"k", "o", "t"}.
func (s *server) listAggregates(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	var f store.AggregateFilter
	f.Keys = q.list("keys")
	f.Owners = q.list("addresses")
	switch raw := strings.TrimSpace(q.str("sortBy")); raw {
	case "", "last_modified":
		f.SortBy = "last_modified"
	case "creation_time":
		f.SortBy = "creation_time"
	default:
		q.fail("sortBy", "enum", raw, "input should be last_modified or creation_time")
	}
	f.SortOrder = q.sortOrder("sortOrder")
	p := q.paging(r, 20, 1, 500, decodeAggregateCursor)
	if len(q.errs) > 0 {
		s.writeParamErrors(w, r, q.errs)
		return
	}
	ctx := r.Context()
	page := p.page()
	if p.cursorMode && p.size < maxCursorPagination {
		page.Size++ // one more row tells whether there is a next page
	}
	rows, err := s.d.Store.QueryAggregates(ctx, f, page)
	if err != nil {
		s.internalError(w, r, "query aggregates", err)
		return
	}
	var next *string
	if p.cursorMode && len(rows) >= p.size && len(rows) > 0 {
		rows = rows[:p.size]
		next = encodeAggregateCursor(rows[len(rows)-1], f.SortBy)
	}
	items := make([]aggregateJSON, len(rows))
	for i, a := range rows {
		items[i] = aggregateJSON{
			Address: a.Owner, Key: a.Key, Content: rawOrNull(a.Content),
			Created: isoSeconds(a.CreationTime), LastUpdated: isoSeconds(a.LastUpdateTime),
		}
	}
	if p.cursorMode {
		s.writeJSON(w, r, http.StatusOK, struct {
			Aggregates        []aggregateJSON `json:"aggregates"`
			PaginationPerPage int             `json:"pagination_per_page"`
			NextCursor        *string         `json:"next_cursor"`
		}{items, p.size, next})
		return
	}
	total, err := pageTotal(p, len(rows), func() (int64, error) {
		return s.counts.get(countKey{"aggregates", f}, func() (int64, error) { return s.d.Store.CountAggregates(ctx, f) })
	})
	if err != nil {
		s.internalError(w, r, "count aggregates", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Aggregates        []aggregateJSON `json:"aggregates"`
		PaginationPage    int             `json:"pagination_page"`
		PaginationTotal   int64           `json:"pagination_total"`
		PaginationPerPage int             `json:"pagination_per_page"`
		PaginationItem    string          `json:"pagination_item"`
	}{items, p.number, total, p.size, "aggregates"})
}
