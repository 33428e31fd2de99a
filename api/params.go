package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// Bounds that keep page arithmetic far from overflow.
const (
	maxPage       = math.MaxInt32
	maxPagination = math.MaxInt32
	// maxCursorPagination is the cursor-mode page size cap (pyaleph: 200).
	maxCursorPagination = 200
	// maxParamLen bounds a query value echoed in an error.
	maxParamLen = 100
	// maxListItems bounds the values of one list filter.
	maxListItems = 1000
)

// query reads query parameters and collects validation errors in pydantic's
// shape. Like pyaleph, the first value of a repeated parameter wins and unknown
// parameters are ignored.
type query struct {
	v    url.Values
	errs []paramError
}

func newQuery(r *http.Request) *query { return &query{v: r.URL.Query()} }

// fail records an error for a parameter; only the first error of each
// parameter is kept.
func (q *query) fail(name, typ, raw, format string, args ...any) {
	for _, e := range q.errs {
		if len(e.Loc) == 1 && e.Loc[0] == name {
			return
		}
	}
	in := clip(raw)
	q.errs = append(q.errs, paramError{Type: typ, Loc: []string{name}, Msg: fmt.Sprintf(format, args...), Input: &in})
}

func clip(s string) string {
	if len(s) <= maxParamLen {
		return s
	}
	cut := maxParamLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// has reports whether the parameter is present (possibly empty).
func (q *query) has(name string) bool {
	_, ok := q.v[name]
	return ok
}

// str returns the parameter's first value, "" when absent. A value that is not
// valid UTF-8 or holds a NUL (which databases refuse) is an error.
func (q *query) str(name string) string {
	v := q.v.Get(name)
	if !cleanString(v) {
		q.fail(name, "string_unicode", strings.ToValidUTF8(strings.ReplaceAll(v, "\x00", ""), "\uFFFD"), "input should be a valid UTF-8 string without NUL")
		return ""
	}
	return v
}

// cleanString reports whether s is valid UTF-8 without NUL characters.
func cleanString(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// list splits a comma-separated parameter, trimming spaces and dropping empty
// items. More than maxListItems values is an error (they become SQL parameters,
// which databases bound).
func (q *query) list(name string) []string {
	raw := q.str(name)
	l := splitList(raw)
	if len(l) > maxListItems {
		q.fail(name, "too_long", raw, "list should have at most %d items", maxListItems)
		return nil
	}
	return l
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// int parses an integer parameter in [lo, hi], or returns def when absent or empty.
func (q *query) int(name string, def, lo, hi int) int {
	raw := strings.TrimSpace(q.str(name))
	if raw == "" {
		return def
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		// pydantic accepts an integral float such as "20.0".
		f, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<62 {
			q.fail(name, "int_parsing", raw, "input should be a valid integer")
			return def
		}
		n = int64(f)
	}
	if n < int64(lo) {
		q.fail(name, "greater_than_equal", raw, "input should be greater than or equal to %d", lo)
		return def
	}
	if n > int64(hi) {
		q.fail(name, "less_than_equal", raw, "input should be less than or equal to %d", hi)
		return def
	}
	return int(n)
}

// float parses a finite, non-negative number, or returns 0 when absent or empty.
func (q *query) date(name string) float64 {
	raw := strings.TrimSpace(q.str(name))
	if raw == "" {
		return 0
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		q.fail(name, "float_parsing", raw, "input should be a valid number")
		return 0
	}
	if f < 0 {
		q.fail(name, "greater_than_equal", raw, "input should be greater than or equal to 0")
		return 0
	}
	return f
}

// bool parses a boolean the way pydantic does, or returns def when absent or empty.
func (q *query) bool(name string, def bool) bool {
	raw := q.str(name)
	if strings.TrimSpace(raw) == "" {
		return def
	}
	b, ok := parseBool(raw)
	if !ok {
		q.fail(name, "bool_parsing", raw, "input should be a valid boolean")
		return def
	}
	return b
}

func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "t", "yes", "y", "on":
		return true, true
	case "0", "false", "f", "no", "n", "off":
		return false, true
	}
	return false, false
}

// sortOrder parses sortOrder (-1 or 1, default -1).
func (q *query) sortOrder(name string) store.SortOrder {
	raw := strings.TrimSpace(q.str(name))
	switch raw {
	case "":
		return store.Descending
	case "-1":
		return store.Descending
	case "1":
		return store.Ascending
	}
	q.fail(name, "enum", raw, "input should be -1 or 1")
	return store.Descending
}

// types parses a list of message types.
func (q *query) types(name string) []message.Type {
	var out []message.Type
	for _, s := range q.list(name) {
		t := message.Type(strings.ToUpper(s))
		if !t.Known() {
			q.fail(name, "enum", s, "input should be one of %s", joinTypes())
			continue
		}
		out = append(out, t)
	}
	return out
}

func joinTypes() string {
	var b strings.Builder
	for i, t := range message.Types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(t))
	}
	return b.String()
}

// chains parses a list of chain codes.
func (q *query) chains(name string) []message.Chain {
	var out []message.Chain
	for _, s := range q.list(name) {
		c := message.Chain(s)
		if !c.Known() {
			q.fail(name, "enum", s, "unknown chain")
			continue
		}
		out = append(out, c)
	}
	return out
}

// statuses parses a list of message statuses.
func (q *query) statuses(name string) []message.Status {
	var out []message.Status
	for _, s := range q.list(name) {
		st := message.Status(strings.ToLower(s))
		if !knownStatus(st) {
			q.fail(name, "enum", s, "input should be pending, processed, rejected, forgotten, removing or removed")
			continue
		}
		out = append(out, st)
	}
	return out
}

func knownStatus(s message.Status) bool {
	for _, k := range message.Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// hashes parses a list of item hashes.
func (q *query) hashes(name string) []string {
	var out []string
	for _, s := range q.list(name) {
		if !message.IsItemHash(s) {
			q.fail(name, "value_error", s, "not a valid item hash")
			continue
		}
		out = append(out, s)
	}
	return out
}

// paymentTypes parses a list of payment types.
func (q *query) paymentTypes(name string) []string {
	var out []string
	for _, s := range q.list(name) {
		switch p := strings.ToLower(s); p {
		case string(message.PaymentHold), string(message.PaymentSuperfluid), string(message.PaymentCredit):
			out = append(out, p)
		default:
			q.fail(name, "enum", s, "input should be hold, superfluid or credit")
		}
	}
	return out
}

// dateRange parses startDate and endDate and checks their order.
func (q *query) dateRange() (start, end float64) {
	start, end = q.date("startDate"), q.date("endDate")
	if start > 0 && end > 0 && end < start {
		q.fail("endDate", "value_error", q.str("endDate"), "end date cannot be lower than start date")
	}
	return start, end
}

// sortBy parses sortBy for time-ordered listings: "time" or "tx-time". Without
// on-chain confirmations every message's tx-time falls back to its time, so both
// sort the same; tx-time is refused in cursor mode, as pyaleph does.
func (q *query) sortBy(cursorMode bool) {
	raw := strings.TrimSpace(q.str("sortBy"))
	switch raw {
	case "", "time":
	case "tx-time":
		if cursorMode {
			q.fail("sortBy", "value_error", raw, "sortBy=tx-time is not supported in cursor mode")
		}
	default:
		q.fail("sortBy", "enum", raw, "input should be time or tx-time")
	}
}

// paging is the parsed pagination of a listing.
type paging struct {
	size   int
	number int
	// cursor is set in cursor mode (an empty cursor parameter gives a zero cursor:
	// the first page).
	cursor     *store.Cursor
	cursorMode bool
}

// page returns the store page.
func (p paging) page() store.Page {
	if p.cursorMode {
		return store.Page{Size: p.size, Cursor: p.cursor}
	}
	return store.Page{Size: p.size, Number: p.number}
}

// paging parses pagination, page (or the {page} path value) and cursor. def is
// the default page size; lo and hi bound it in page mode. decode reads a cursor.
func (q *query) paging(r *http.Request, def, lo, hi int, decode func(string) (*store.Cursor, error)) paging {
	var p paging
	if q.has("cursor") {
		p.cursorMode = true
		raw := q.str("cursor")
		c := &store.Cursor{}
		if raw != "" {
			var err error
			if c, err = decode(raw); err != nil {
				q.fail("cursor", "value_error", raw, "invalid cursor")
			}
		}
		p.cursor = c
		n := q.int("pagination", def, lo, hi)
		if q.has("pagination") && strings.TrimSpace(q.str("pagination")) != "" && n == 0 {
			q.fail("pagination", "value_error", q.str("pagination"), "pagination=0 is not allowed in cursor mode")
		}
		p.size = min(n, maxCursorPagination)
		if p.size == 0 {
			p.size = min(def, maxCursorPagination)
		}
		return p
	}
	p.size = q.int("pagination", def, lo, hi)
	p.number = q.int("page", 1, 1, maxPage)
	if v := r.PathValue("page"); v != "" {
		n, ok := pathPage(v)
		if !ok {
			in := clip(v)
			q.errs = append(q.errs, paramError{Type: "int_parsing", Loc: []string{"page"}, Msg: "input should be a positive integer", Input: &in})
		} else {
			p.number = n
		}
	}
	return p
}

// pathPage parses the {page} of /…/page/{page}.json.
func pathPage(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSuffix(v, ".json"))
	if err != nil || n < 1 || n > maxPage {
		return 0, false
	}
	return n, true
}
