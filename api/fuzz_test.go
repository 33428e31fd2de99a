package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// fuzzPaths are GET routes with their path values filled in.
var fuzzPaths = []string{
	"/api/v0/messages.json", "/api/v0/messages/page/2.json", "/api/v0/messages/hashes",
	"/api/v0/messages/" + strings.Repeat("a", 64), "/api/v0/messages/" + strings.Repeat("a", 64) + "/status",
	"/api/v0/messages/" + strings.Repeat("a", 64) + "/content", "/api/v0/posts.json", "/api/v1/posts/page/1.json",
	"/api/v0/aggregates/0xabc.json", "/api/v0/aggregates.json", "/api/v0/addresses/stats.json",
	"/api/v1/addresses/stats.json", "/api/v0/addresses/0xabc/channels", "/api/v0/addresses/0xabc/post_types",
	"/api/v0/channels/list.json", "/api/v0/version", "/api/v0/info/public.json",
	"/api/v0/addresses/0xabc/files", "/api/v0/storage/limits.json", "/api/v0/storage/count/" + strings.Repeat("a", 64),
	"/api/v0/storage/metadata/" + strings.Repeat("a", 64), "/api/v0/storage/by-ref/0xabc/ref",
}

// fuzzHandler is the API over an empty SQLite store and a pipeline whose sync
// wait ends at once (nothing runs the queue).
func fuzzHandler(f *testing.F) (http.Handler, *errorLog) { return fuzzHandlerT(f) }

func fuzzHandlerT(f testing.TB) (http.Handler, *errorLog) {
	f.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(f.TempDir(), "fuzz.db"), sqlstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	bus := events.NewBus()
	pl, err := pipeline.New(pipeline.Deps{Store: st, Verifier: all.NewRegistry(), Bus: bus}, pipeline.Config{SyncTimeout: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	log := &errorLog{}
	return api.New(api.Deps{Submitter: pl, Store: st, Bus: bus, Log: slog.New(log)}, api.Config{}), log
}

// FuzzQuery sends arbitrary query strings to every GET route: never a 500, always JSON.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{
		"", "pagination=0", "page=2&pagination=3", "cursor=", "cursor=eyJoIjoieCIsInQiOiIyMDIzIn0",
		"msgTypes=POST,STORE&chains=ETH&startDate=1.5&endDate=2", "hashes=abc&sortOrder=1&sortBy=tx-time",
		"msgStatuses=forgotten", "contentFormat=headers&excludeContent=true", "addresses[]=a&addresses=b,c",
		"keys=a,b&with_info=true&value_only=1", "sortBy=creation_time&cursor=", "addressContains=ab&sortBy=post",
		"status=pending&hash_only=false", "pagination=1e3&page=%FF", "tags=%00", "sort_order=1&pagination=0",
	} {
		for i := range fuzzPaths {
			f.Add(uint8(i), q)
		}
	}
	h, log := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, which uint8, rawQuery string) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = path
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("GET %s?%q: %d %s", path, rawQuery, rec.Code, rec.Body.Bytes())
		}
		if errs := log.errors(); len(errs) > 0 {
			t.Fatalf("GET %s?%q logged %q", path, rawQuery, errs)
		}
	})
}

// FuzzSubmit posts arbitrary bodies to the submission endpoints: never a 500,
// always JSON.
func FuzzSubmit(f *testing.F) {
	for _, b := range []string{
		`{"sync":false,"message":{"chain":"ETH","sender":"0x1","type":"POST","time":1,"item_hash":"` + strings.Repeat("a", 64) + `","item_content":"{}"}}`,
		`{"message":{}}`, `{"sync":"yes","message":{"chain":"SOL"}}`, `[]`, `null`, `{"topic":"ALEPH-TEST","data":"{}"}`,
		`{"topic":"ALEPH-TEST","data":"{\"chain\":\"ETH\",\"item_hash\":\"QmX\",\"item_type\":\"ipfs\"}"}`,
	} {
		f.Add(uint8(0), []byte(b))
		f.Add(uint8(1), []byte(b))
	}
	h, log := fuzzHandler(f)
	paths := []string{"/api/v0/messages", "/api/v0/ipfs/pubsub/pub"}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body.Bytes())
		}
		if errs := log.errors(); len(errs) > 0 {
			t.Fatalf("POST %s %q logged %q", path, body, errs)
		}
	})
}
