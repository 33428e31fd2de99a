package client

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// SortOrder is the listing order: Descending (newest first, the nodes' default)
// or Ascending. The zero value leaves the node's default.
type SortOrder int

// Sort orders.
const (
	Descending SortOrder = -1
	Ascending  SortOrder = 1
)

// ContentFormat selects how much of each message's content a listing carries.
type ContentFormat string

// Content formats of GET /api/v0/messages.json.
const (
	ContentFull    ContentFormat = "full"
	ContentHeaders ContentFormat = "headers"
	ContentNone    ContentFormat = "none"
)

// MessageFilter mirrors the filters of GET /api/v0/messages.json (ccn-protocol.md
// §5.3). Empty fields do not filter; list fields match any of their values. The
// deprecated aliases msgType and excludeContent are not offered: Types and
// ContentFormat cover them.
type MessageFilter struct {
	Types         []message.Type   // msgTypes
	Statuses      []message.Status // msgStatuses (the node's default: processed, removing)
	Addresses     []string         // addresses: senders
	Owners        []string         // owners: content.address
	Refs          []string         // refs
	ContentHashes []string         // contentHashes: STORE content.item_hash
	ContentKeys   []string         // contentKeys: AGGREGATE keys
	ContentTypes  []string         // contentTypes: POST types
	Chains        []message.Chain  // chains
	Channels      []string         // channels
	Tags          []string         // tags
	Hashes        []string         // hashes
	PaymentTypes  []string         // paymentTypes
	// StartDate ≤ time < EndDate; zero values do not bound.
	StartDate, EndDate time.Time
	// StartBlock and EndBlock bound the first confirmation's height; 0 does not bound.
	StartBlock, EndBlock int64
	// SortBy is "time" (the default) or "tx-time".
	SortBy        string
	SortOrder     SortOrder
	ContentFormat ContentFormat
}

// Page selects a page of a listing. Size 0 leaves the node's default page size
// (20 for messages and posts) and NoLimit asks for every row where the node allows
// it. With Cursor set (cursor mode) Number is ignored; "" is the first page.
type Page struct {
	Number int
	Size   int
	Cursor *string
}

// NoLimit as Page.Size asks for every row in one page (pagination=0).
const NoLimit = -1

// FirstCursor returns a Page in cursor mode at the first page.
func FirstCursor(size int) Page {
	empty := ""
	return Page{Size: size, Cursor: &empty}
}

// query builds a query string in a fixed key order, with comma-joined lists whose
// commas are left unencoded, as the TypeScript SDK sends them.
type query struct {
	b strings.Builder
}

func (q *query) add(key, value string) {
	if value == "" {
		return
	}
	if q.b.Len() > 0 {
		q.b.WriteByte('&')
	}
	q.b.WriteString(url.QueryEscape(key))
	q.b.WriteByte('=')
	q.b.WriteString(value)
}

// str adds one value, escaped.
func (q *query) str(key, value string) { q.add(key, url.QueryEscape(value)) }

// list adds a comma-joined list; empty elements are dropped.
func (q *query) list(key string, values []string) {
	parts := make([]string, 0, len(values))
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			parts = append(parts, url.QueryEscape(v))
		}
	}
	q.add(key, strings.Join(parts, ","))
}

// repeated adds key=value once per value.
func (q *query) repeated(key string, values []string) {
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			q.add(key, url.QueryEscape(v))
		}
	}
}

func (q *query) date(key string, t time.Time) {
	if !t.IsZero() {
		q.add(key, formatUnix(t))
	}
}

func (q *query) int(key string, n int64) {
	if n != 0 {
		q.add(key, strconv.FormatInt(n, 10))
	}
}

func (q *query) sort(o SortOrder) {
	if o != 0 {
		q.add("sortOrder", strconv.Itoa(int(o)))
	}
}

func (q *query) page(p Page) {
	switch {
	case p.Size == NoLimit:
		q.add("pagination", "0")
	case p.Size > 0:
		q.add("pagination", strconv.Itoa(p.Size))
	}
	if p.Cursor != nil {
		// The key must be present even when empty: it selects cursor mode.
		if q.b.Len() > 0 {
			q.b.WriteByte('&')
		}
		q.b.WriteString("cursor=")
		q.b.WriteString(url.QueryEscape(*p.Cursor))
		return
	}
	if p.Number > 0 {
		q.add("page", strconv.Itoa(p.Number))
	}
}

func (q *query) String() string { return q.b.String() }

// formatUnix writes t as float unix seconds with millisecond precision and no
// trailing zeros ("1700000000.123", "1700000000"), as the SDKs send dates.
func formatUnix(t time.Time) string {
	ms := t.UnixMilli()
	return strconv.FormatFloat(float64(ms)/1e3, 'f', -1, 64)
}

func typeStrings(ts []message.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func statusStrings(ss []message.Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func chainStrings(cs []message.Chain) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// encode writes the filter's parameters.
func (f *MessageFilter) encode(q *query) {
	q.list("msgTypes", typeStrings(f.Types))
	q.list("msgStatuses", statusStrings(f.Statuses))
	q.list("addresses", f.Addresses)
	q.list("owners", f.Owners)
	q.list("refs", f.Refs)
	q.list("contentHashes", f.ContentHashes)
	q.list("contentKeys", f.ContentKeys)
	q.list("contentTypes", f.ContentTypes)
	q.list("chains", chainStrings(f.Chains))
	q.list("channels", f.Channels)
	q.list("tags", f.Tags)
	q.list("hashes", f.Hashes)
	q.list("paymentTypes", f.PaymentTypes)
	q.date("startDate", f.StartDate)
	q.date("endDate", f.EndDate)
	q.int("startBlock", f.StartBlock)
	q.int("endBlock", f.EndBlock)
	q.str("sortBy", f.SortBy)
	q.sort(f.SortOrder)
	q.str("contentFormat", string(f.ContentFormat))
}

// Query returns the query string of GET /api/v0/messages.json for the filter and page.
func (f MessageFilter) Query(p Page) string {
	var q query
	f.encode(&q)
	q.page(p)
	return q.String()
}

// PostFilter mirrors the filters of GET /api/v0/posts.json and /api/v1/posts.json.
// Hashes and Types select originals (amends are folded into them).
type PostFilter struct {
	Types     []string // types: post types of the originals
	Refs      []string
	Addresses []string // owners
	Tags      []string
	Hashes    []string // original hashes
	Channels  []string
	Chains    []message.Chain
	// StartDate ≤ last update < EndDate; zero values do not bound.
	StartDate, EndDate time.Time
	// SortBy is "time" (the default) or "tx-time".
	SortBy    string
	SortOrder SortOrder
}

// Query returns the query string of the posts endpoints for the filter and page.
func (f PostFilter) Query(p Page) string {
	var q query
	q.list("types", f.Types)
	q.list("refs", f.Refs)
	q.list("addresses", f.Addresses)
	q.list("tags", f.Tags)
	q.list("hashes", f.Hashes)
	q.list("channels", f.Channels)
	q.list("chains", chainStrings(f.Chains))
	q.date("startDate", f.StartDate)
	q.date("endDate", f.EndDate)
	q.str("sortBy", f.SortBy)
	q.sort(f.SortOrder)
	q.page(p)
	return q.String()
}

// AggregateFilter mirrors the filters of GET /api/v0/aggregates.
type AggregateFilter struct {
	Keys      []string
	Addresses []string
	// SortBy is "last_modified" (the default) or "creation_time".
	SortBy    string
	SortOrder SortOrder
}

// Query returns the query string of GET /api/v0/aggregates for the filter and page.
func (f AggregateFilter) Query(p Page) string {
	var q query
	q.list("keys", f.Keys)
	q.list("addresses", f.Addresses)
	q.str("sortBy", f.SortBy)
	q.sort(f.SortOrder)
	q.page(p)
	return q.String()
}

// AggregateQuery tunes GET /api/v0/aggregates/{address}.json.
type AggregateQuery struct {
	// Keys restricts the answer to these keys; empty means every key.
	Keys []string
	// WithInfo asks for each key's creation and update times and hashes.
	WithInfo bool
}

func (a AggregateQuery) query() string {
	var q query
	q.list("keys", a.Keys)
	if a.WithInfo {
		q.add("with_info", "true")
	}
	return q.String()
}

// WatchFilter selects the messages a websocket subscription receives: the
// message filters the node applies live (pagination is ignored), and History, how
// many stored matching messages to send first (the node's default is 10; nil
// leaves it, a pointer to 0 asks for none).
type WatchFilter struct {
	MessageFilter
	History *int
}

// Query returns the query string of GET /api/ws0/messages.
func (f WatchFilter) Query() string {
	var q query
	f.encode(&q)
	if f.History != nil {
		q.add("history", strconv.Itoa(*f.History))
	}
	return q.String()
}
