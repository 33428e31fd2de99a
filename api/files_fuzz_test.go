package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// fuzzBoundary is the multipart boundary of the fuzzed bodies.
const fuzzBoundary = "fuzzboundary"

// uploadPaths are the multipart upload routes.
var uploadPaths = []string{"/api/v0/storage/add_file", "/api/v0/ipfs/add_file", "/api/v0/ipfs/add_car"}

// fuzzFileHandler is the API over an empty SQLite store, a real file service
// and file store, and a pipeline whose sync wait ends at once.
func fuzzFileHandler(f *testing.F) (http.Handler, *errorLog) {
	f.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(f.TempDir(), "fuzz.db"), sqlstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	fs, err := filestore.Open(filepath.Join(f.TempDir(), "files"), filestore.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fs.Close() })
	svc, err := files.New(files.Deps{Files: fs, DB: st}, files.Config{})
	if err != nil {
		f.Fatal(err)
	}
	verifier := all.NewRegistry()
	pl, err := pipeline.New(pipeline.Deps{Store: st, Verifier: verifier, Bus: events.NewBus(), Files: svc, Fetcher: svc}, pipeline.Config{SyncTimeout: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	log := &errorLog{}
	return api.New(api.Deps{Submitter: pl, Store: st, Log: slog.New(log), Files: svc, Verifier: verifier}, smallLimits), log
}

// FuzzAddFileMultipart posts arbitrary multipart bodies to the upload routes:
// never a 500 nor a panic, always JSON.
func FuzzAddFileMultipart(f *testing.F) {
	acct := accounts(f, 1)[0]
	n := &node{}
	part := func(name, extra, body string) string {
		return "--" + fuzzBoundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"" + extra + "\r\n\r\n" + body + "\r\n"
	}
	end := "--" + fuzzBoundary + "--\r\n"
	data := "hello world\n"
	signed := n.build(f, acct, message.TypeStore, &message.StoreContent{ItemType: message.ItemStorage, ItemHash: sha256hex([]byte(data))}, "TEST")
	meta := string(metadataJSON(f, signed.Message, false, false))
	for _, b := range []string{
		part("file", "", data) + end,
		part("file", "; filename=\"a.txt\"\r\nContent-Type: text/plain", data) + end,
		part("metadata", "", meta) + part("file", "", data) + end,
		part("file", "", data) + part("metadata", "", meta) + end,
		part("metadata", "", `{"message":{"chain":"ETH"},"sync":1}`) + part("file", "", data) + end,
		part("metadata", "", "{") + end,
		part("file", "", "\x3a\xa2\x65roots\x81") + end,
		part("file", "", data[:5]),
		part("other", "", "x") + end,
		"--" + fuzzBoundary + "\r\n\r\n" + end,
		"",
	} {
		for i := range uploadPaths {
			f.Add(uint8(i), []byte(b))
		}
	}
	h, log := fuzzFileHandler(f)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := uploadPaths[int(which)%len(uploadPaths)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+fuzzBoundary)
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
