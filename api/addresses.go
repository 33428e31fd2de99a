package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// statsJSON counts an address's messages by type, with pyaleph's keys.
type statsJSON struct {
	Messages  int64 `json:"messages"`
	Aggregate int64 `json:"aggregate"`
	Forget    int64 `json:"forget"`
	Instance  int64 `json:"instance"`
	Post      int64 `json:"post"`
	Program   int64 `json:"program"`
	Store     int64 `json:"store"`
}

func renderStats(a *store.AddressStats) statsJSON {
	return statsJSON{
		Messages:  a.Messages,
		Aggregate: a.ByType[message.TypeAggregate],
		Forget:    a.ByType[message.TypeForget],
		Instance:  a.ByType[message.TypeInstance],
		Post:      a.ByType[message.TypePost],
		Program:   a.ByType[message.TypeProgram],
		Store:     a.ByType[message.TypeStore],
	}
}

// statsObject renders stats as {address: {…}} in the given order.
func statsObject(rows []*store.AddressStats) (orderedObject, error) {
	var o orderedObject
	for _, a := range rows {
		b, err := marshal(renderStats(a))
		if err != nil {
			return o, err
		}
		o.add(a.Address, b[:len(b)-1])
	}
	return o, nil
}

// addressStatsV0 serves GET /api/v0/addresses/stats.json: addresses[] repeated,
// or addresses as a comma list, or both.
func (s *server) addressStatsV0(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	var addrs []string
	for _, name := range []string{"addresses[]", "addresses"} {
		for _, val := range v[name] {
			if !cleanString(val) {
				in := clip(strings.ToValidUTF8(val, "\uFFFD"))
				s.writeParamErrors(w, r, []paramError{{Type: "string_unicode", Loc: []string{name}, Msg: "input should be a valid UTF-8 string without NUL", Input: &in}})
				return
			}
			items := splitList(val)
			if len(addrs)+len(items) > maxListItems {
				in := clip(val)
				s.writeParamErrors(w, r, []paramError{{Type: "too_long", Loc: []string{name}, Msg: fmt.Sprintf("at most %d addresses", maxListItems), Input: &in}})
				return
			}
			for _, a := range items {
				if !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
		}
	}
	rows, err := s.d.Store.AddressStats(r.Context(), addrs)
	if err != nil {
		s.internalError(w, r, "address stats", err)
		return
	}
	data, err := statsObject(rows)
	if err != nil {
		s.internalError(w, r, "encode address stats", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Data orderedObject `json:"data"`
	}{data})
}

// maxAddressContains bounds addressContains (pyaleph: 66 characters).
const maxAddressContains = 66

// addressStatsV1 serves GET /api/v1/addresses/stats.json: every address's stats,
// filtered by a case-insensitive substring, sorted by one count and paginated.
// It is computed from the full stats listing, which suits a node of modest size.
func (s *server) addressStatsV1(w http.ResponseWriter, r *http.Request) {
	q := newQuery(r)
	contains := q.str("addressContains")
	if len(contains) > maxAddressContains {
		q.fail("addressContains", "string_too_long", contains, "string should have at most %d characters", maxAddressContains)
	}
	sortBy := strings.TrimSpace(q.str("sortBy"))
	pick := map[string]func(statsJSON) int64{
		"total":     func(s statsJSON) int64 { return s.Messages },
		"messages":  func(s statsJSON) int64 { return s.Messages },
		"post":      func(s statsJSON) int64 { return s.Post },
		"aggregate": func(s statsJSON) int64 { return s.Aggregate },
		"store":     func(s statsJSON) int64 { return s.Store },
		"forget":    func(s statsJSON) int64 { return s.Forget },
		"program":   func(s statsJSON) int64 { return s.Program },
		"instance":  func(s statsJSON) int64 { return s.Instance },
	}
	if sortBy == "" {
		sortBy = "total"
	}
	key, ok := pick[sortBy]
	if !ok {
		q.fail("sortBy", "enum", sortBy, "input should be total, post, aggregate, store, forget, program or instance")
	}
	order := q.sortOrder("sortOrder")
	var p paging
	var after string
	if q.has("cursor") {
		p.cursorMode = true
		p.size = q.int("pagination", 20, 1, maxPagination)
		p.size = min(p.size, maxCursorPagination)
		if raw := q.str("cursor"); raw != "" {
			var err error
			if after, err = decodeAddressCursor(raw); err != nil {
				q.fail("cursor", "value_error", raw, "invalid cursor")
			}
		}
	} else {
		p.size = q.int("pagination", 20, 0, maxPagination)
		p.number = q.int("page", 1, 1, maxPage)
	}
	if len(q.errs) > 0 {
		s.writeParamErrors(w, r, q.errs)
		return
	}
	all, err := s.d.Store.AddressStats(r.Context(), nil)
	if err != nil {
		s.internalError(w, r, "address stats", err)
		return
	}
	needle := strings.ToLower(contains)
	rows := slices.DeleteFunc(all, func(a *store.AddressStats) bool {
		return a == nil || needle != "" && !strings.Contains(strings.ToLower(a.Address), needle)
	})
	slices.SortStableFunc(rows, func(a, b *store.AddressStats) int {
		c := cmp.Compare(key(renderStats(a)), key(renderStats(b)))
		if order == store.Descending {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(a.Address, b.Address)
		}
		return c
	})
	total := len(rows)
	var pageRows []*store.AddressStats
	var next *string
	if p.cursorMode {
		start := 0
		if after != "" {
			start = len(rows)
			for i, a := range rows {
				if a.Address == after {
					start = i + 1
					break
				}
			}
		}
		end := min(start+p.size, len(rows))
		pageRows = rows[start:end]
		if end < len(rows) && len(pageRows) > 0 {
			next = encodeAddressCursor(pageRows[len(pageRows)-1].Address)
		}
	} else {
		start, end := 0, len(rows)
		if p.size > 0 {
			start = min((p.number-1)*p.size, len(rows))
			end = min(start+p.size, len(rows))
		}
		pageRows = rows[start:end]
	}
	data, err := statsObject(pageRows)
	if err != nil {
		s.internalError(w, r, "encode address stats", err)
		return
	}
	if p.cursorMode {
		s.writeJSON(w, r, http.StatusOK, struct {
			Data              orderedObject `json:"data"`
			PaginationPerPage int           `json:"pagination_per_page"`
			NextCursor        *string       `json:"next_cursor"`
		}{data, p.size, next})
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Data              orderedObject `json:"data"`
		PaginationPage    int           `json:"pagination_page"`
		PaginationTotal   int           `json:"pagination_total"`
		PaginationPerPage int           `json:"pagination_per_page"`
		PaginationItem    string        `json:"pagination_item"`
	}{data, p.number, total, p.size, "addresses"})
}

// addressParam reads the {address} path value; it answers 400 itself.
func addressParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	addr := r.PathValue("address")
	if !cleanString(addr) {
		writeError(w, http.StatusBadRequest, "invalid address")
		return "", false
	}
	return addr, true
}

func (s *server) addressPostTypes(w http.ResponseWriter, r *http.Request) {
	addr, ok := addressParam(w, r)
	if !ok {
		return
	}
	types, err := s.d.Store.PostTypes(r.Context(), addr)
	if err != nil {
		s.internalError(w, r, "post types", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Address   string   `json:"address"`
		PostTypes []string `json:"post_types"`
	}{addr, nonNil(types)})
}

func (s *server) addressChannels(w http.ResponseWriter, r *http.Request) {
	addr, ok := addressParam(w, r)
	if !ok {
		return
	}
	chans, err := s.d.Store.AddressChannels(r.Context(), addr)
	if err != nil {
		s.internalError(w, r, "address channels", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Address  string   `json:"address"`
		Channels []string `json:"channels"`
	}{addr, nonNil(chans)})
}

func (s *server) channelsList(w http.ResponseWriter, r *http.Request) {
	chans, err := s.d.Store.Channels(r.Context())
	if err != nil {
		s.internalError(w, r, "channels", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Channels []string `json:"channels"`
	}{nonNil(chans)})
}

func (s *server) version(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, struct {
		Version string `json:"version"`
	}{s.d.Version})
}

func (s *server) publicInfo(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, struct {
		NodeMultiAddresses []string `json:"node_multi_addresses"`
	}{nonNil(s.d.NodeMultiAddresses)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
