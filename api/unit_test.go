package api

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

func TestExactISORoundTrip(t *testing.T) {
	for _, f := range []float64{
		0, 1, 1700000000, 1700000000.5, 1700000000.123, 1712345678.9876543,
		1648467547.771, 1.5e9 + 1e-6, 9223372036, 1700000000.0000001,
	} {
		iso := exactISO(f)
		if !strings.HasSuffix(iso, "+00:00") || !strings.Contains(iso, "T") {
			t.Errorf("exactISO(%v) = %q, not an ISO UTC time", f, iso)
		}
		got, err := parseISOSeconds(iso)
		if err != nil {
			t.Errorf("parseISOSeconds(%q): %v", iso, err)
			continue
		}
		if got != f {
			t.Errorf("round trip of %v through %q gave %v", f, iso, got)
		}
	}
}

func TestParseISOSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"2023-11-14T22:13:20+00:00", 1700000000, true},
		{"2023-11-14T22:13:20.123000+00:00", 1700000000.123, true},
		{"2023-11-14T22:13:20.5Z", 1700000000.5, true},
		{"2023-11-14T22:13:20.5", 1700000000.5, true},         // naive is UTC
		{"2023-11-14 22:13:20.25+00:00", 1700000000.25, true}, // Python str(datetime)
		{"2023-11-15T00:13:20+02:00", 1700000000, true},
		{"2023-11-15T00:13:20+0200", 1700000000, true},
		{"1969-12-31T23:59:59+00:00", 0, false},
		{"2023-13-14T22:13:20+00:00", 0, false},
		{"yesterday", 0, false},
		{"", 0, false},
		{"2023-11-14T22:13:20.+00:00", 0, false},
	}
	for _, tt := range tests {
		got, err := parseISOSeconds(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseISOSeconds(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("parseISOSeconds(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCursors(t *testing.T) {
	c := &store.Cursor{Time: 1712345678.9876542, Hash: strings.Repeat("ab", 32)}
	text := encodeCursor(c)
	if text == nil || strings.ContainsAny(*text, "=+/") {
		t.Fatalf("cursor %v is not unpadded base64url", text)
	}
	raw, err := base64.RawURLEncoding.DecodeString(*text)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"h":"` + c.Hash + `","t":"2024-04-05T19:34:38.9876542+00:00"}`; string(raw) != want {
		t.Errorf("cursor JSON = %s, want %s", raw, want)
	}
	back, err := decodeTimeCursor(*text)
	if err != nil || *back != *c {
		t.Errorf("decode = %+v, %v; want %+v", back, err, c)
	}
	if encodeCursor(nil) != nil {
		t.Error("nil cursor must encode as null")
	}
	// A cursor as pyaleph writes it.
	py := base64.RawURLEncoding.EncodeToString([]byte(`{"h": "x", "t": "2023-11-14T22:13:20.123000+00:00"}`))
	if got, err := decodeTimeCursor(py); err != nil || got.Time != 1700000000.123 || got.Hash != "x" {
		t.Errorf("pyaleph cursor: %+v, %v", got, err)
	}
	for _, bad := range []string{"!!!", base64.RawURLEncoding.EncodeToString([]byte(`[]`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"h":"x"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"h":"x","t":"soon"}`)), strings.Repeat("A", 2000)} {
		if _, err := decodeTimeCursor(bad); err == nil {
			t.Errorf("decodeTimeCursor(%.40q) accepted", bad)
		}
	}

	a := &store.Aggregate{Key: "profile", Owner: "0xabc", LastUpdateTime: 1700000001.5, CreationTime: 1700000000}
	at := encodeAggregateCursor(a, "last_modified")
	ac, err := decodeAggregateCursor(*at)
	if err != nil || ac.Time != 1700000001.5 || ac.Hash != "0xabc/profile" {
		t.Errorf("aggregate cursor: %+v, %v", ac, err)
	}
	if ac, _ := decodeAggregateCursor(*encodeAggregateCursor(a, "creation_time")); ac == nil || ac.Time != 1700000000 {
		t.Errorf("creation_time aggregate cursor: %+v", ac)
	}
	if _, err := decodeAggregateCursor(*text); err == nil {
		t.Error("a message cursor was accepted as an aggregate cursor")
	}
	addr := encodeAddressCursor("0xabc")
	if got, err := decodeAddressCursor(*addr); err != nil || got != "0xabc" {
		t.Errorf("address cursor: %q, %v", got, err)
	}
	if _, err := decodeAddressCursor(*text); err == nil {
		t.Error("a message cursor was accepted as an address cursor")
	}
}

func TestIsoTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Unix(1700000000, 0), "2023-11-14T22:13:20+00:00"},
		{time.Unix(1700000000, 123456789), "2023-11-14T22:13:20.123457+00:00"},
		{time.Unix(1700000000, 500).In(time.FixedZone("x", 3600)), "2023-11-14T22:13:20.000001+00:00"},
	}
	for _, tt := range tests {
		if got := isoTime(tt.in); got != tt.want {
			t.Errorf("isoTime(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := isoSeconds(1700000000.25); got != "2023-11-14T22:13:20.250000+00:00" {
		t.Errorf("isoSeconds = %q", got)
	}
}

func TestSplitListAndBool(t *testing.T) {
	if got := splitList(" a, b,,c ,"); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("splitList = %q", got)
	}
	if splitList("") != nil {
		t.Error("empty list must be nil")
	}
	for in, want := range map[string]bool{"true": true, "1": true, "YES": true, "on": true, "false": false, "0": false, "Off": false, "n": false} {
		if got, ok := parseBool(in); !ok || got != want {
			t.Errorf("parseBool(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "2", "maybe", "tru"} {
		if _, ok := parseBool(in); ok {
			t.Errorf("parseBool(%q) accepted", in)
		}
	}
}

func TestPageTotal(t *testing.T) {
	count := func() (int64, error) { return 999, nil }
	tests := []struct {
		name string
		p    paging
		rows int
		want int64
	}{
		{"short page, no count", paging{size: 20, number: 3}, 5, 45},
		{"full page, counted", paging{size: 20, number: 1}, 20, 999},
		{"empty page past the end, counted", paging{size: 20, number: 9}, 0, 999},
		{"no limit, first page", paging{size: 0, number: 1}, 7, 7},
	}
	for _, tt := range tests {
		got, err := pageTotal(tt.p, tt.rows, count)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}

func TestMatchMessage(t *testing.T) {
	m := &store.Message{
		Message: message.Message{Chain: message.ChainETH, Sender: "0xS", Type: message.TypePost, Channel: "TEST",
			ItemHash: strings.Repeat("1", 64), Time: message.TimeFromSeconds(1700000000)},
		Owner: "0xO", ContentType: "blog", ContentRef: "r", Tags: []string{"a", "b"}, Status: message.StatusProcessed,
	}
	tests := []struct {
		name string
		f    store.MessageFilter
		want bool
	}{
		{"empty", store.MessageFilter{}, true},
		{"type", store.MessageFilter{Types: []message.Type{message.TypePost}}, true},
		{"other type", store.MessageFilter{Types: []message.Type{message.TypeStore}}, false},
		{"sender", store.MessageFilter{Senders: []string{"0xX", "0xS"}}, true},
		{"other sender", store.MessageFilter{Senders: []string{"0xX"}}, false},
		{"owner", store.MessageFilter{Owners: []string{"0xO"}}, true},
		{"other owner", store.MessageFilter{Owners: []string{"0xS"}}, false},
		{"chain", store.MessageFilter{Chains: []message.Chain{message.ChainSOL}}, false},
		{"channel", store.MessageFilter{Channels: []string{"TEST"}}, true},
		{"other channel", store.MessageFilter{Channels: []string{"X"}}, false},
		{"tags overlap", store.MessageFilter{Tags: []string{"z", "b"}}, true},
		{"tags disjoint", store.MessageFilter{Tags: []string{"z"}}, false},
		{"content type", store.MessageFilter{ContentTypes: []string{"note"}}, false},
		{"ref", store.MessageFilter{Refs: []string{"r"}}, true},
		{"content key", store.MessageFilter{ContentKeys: []string{"k"}}, false},
		{"content hash", store.MessageFilter{ContentHashes: []string{"h"}}, false},
		{"hash", store.MessageFilter{Hashes: []string{strings.Repeat("1", 64)}}, true},
		{"payment", store.MessageFilter{PaymentTypes: []string{"hold"}}, false},
		{"start", store.MessageFilter{StartDate: 1700000000}, true},
		{"start after", store.MessageFilter{StartDate: 1700000001}, false},
		{"end exclusive", store.MessageFilter{EndDate: 1700000000}, false},
		{"end", store.MessageFilter{EndDate: 1700000001}, true},
		{"statuses", store.MessageFilter{Statuses: []message.Status{message.StatusRemoving}}, false},
	}
	for _, tt := range tests {
		if got := matchMessage(&tt.f, m, false); got != tt.want {
			t.Errorf("%s: match = %v, want %v", tt.name, got, tt.want)
		}
	}
	if matchMessage(&store.MessageFilter{}, m, true) {
		t.Error("noMatch must match nothing")
	}
}

// TestDocsCoverEveryRoute checks that the OpenAPI document describes every
// registered route and that the HTML page lists them without loading anything.
func TestDocsCoverEveryRoute(t *testing.T) {
	d, err := loadDocs(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	page := string(d.page)
	for _, rt := range routes {
		ops, ok := d.spec.Paths[rt.docPath]
		if !ok {
			t.Errorf("route %s %s: path %s missing from openapi.json", rt.method, rt.pattern, rt.docPath)
			continue
		}
		if _, ok := ops[strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s: method missing from openapi.json", rt.method, rt.docPath)
		}
		if !strings.Contains(page, ">"+rt.docPath+"<") {
			t.Errorf("docs page does not list %s", rt.docPath)
		}
	}
	// And nothing is documented that is not served.
	for path, ops := range d.spec.Paths {
		for method := range ops {
			found := false
			for _, rt := range routes {
				if rt.docPath == path && strings.EqualFold(rt.method, method) {
					found = true
				}
			}
			if !found {
				t.Errorf("openapi.json documents %s %s, which no route serves", method, path)
			}
		}
	}
	for _, bad := range []string{"<script", "http://", "https://", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("docs page contains %q: it must be self-contained", bad)
		}
	}
	var anyDoc map[string]any
	if err := json.Unmarshal(openAPIDoc, &anyDoc); err != nil || !strings.HasPrefix(anyDoc["openapi"].(string), "3.") {
		t.Errorf("openapi.json is not an OpenAPI 3 document: %v", err)
	}
	if _, err := loadDocs([]byte(`{"paths":{"/x":{"get":{"parameters":[{"$ref":"#/components/parameters/nope"}]}}}}`)); err == nil {
		t.Error("a dangling parameter reference was accepted")
	}
}
