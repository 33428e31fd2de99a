package api_test

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/message"
)

type refJSON struct {
	Ref         string `json:"ref"`
	Owner       string `json:"owner"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
	Size        int64  `json:"size"`
}

// TestStorageUpload: a signed STORE with its file, in the TypeScript SDK's
// shape and in the Python SDK's, is processed, and the file is then served by
// every read endpoint with identical bytes.
func TestStorageUpload(t *testing.T) { backends(t, testStorageUpload) }

func testStorageUpload(t *testing.T, backend string) {
	n := newFileNode(t, backend, smallLimits)
	acct := accounts(t, 2)
	data := binary(2500, 1) // over the unauthenticated limit: only a signed upload may send it
	sha := sha256hex(data)
	b := n.storeMsg(t, acct[0], message.ItemStorage, sha, "my-doc")

	// TypeScript SDK: metadata as a text field (no content in the envelope),
	// then the file as a field with no filename and no content type.
	body, ct := multipartBody(t,
		mpart{name: "metadata", body: metadataJSON(t, b.Message, true, false)},
		mpart{name: "file", body: data})
	code, resp := n.post(t, "/api/v0/storage/add_file", ct, body)
	if code != http.StatusOK || resp["status"] != "success" || resp["hash"] != sha || resp["message_status"] != "processed" {
		t.Fatalf("add_file: %d %v", code, resp)
	}
	row := n.kept(t, sha)
	if row.Size != int64(len(data)) || row.Type != "file" {
		t.Errorf("file row %+v", row)
	}

	// Raw download, with the TypeScript SDK's ?find.
	code, got, h := n.raw(t, http.MethodGet, "/api/v0/storage/raw/"+sha+"?find", "", nil)
	if code != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("raw: %d, %d bytes, equal=%v", code, len(got), bytes.Equal(got, data))
	}
	for k, want := range map[string]string{
		"Content-Type": "application/octet-stream", "ETag": `"` + sha + `"`, "Accept-Ranges": "bytes",
		"Content-Length": strconv.Itoa(len(data)), "Cache-Control": "public, max-age=31536000, immutable",
	} {
		if h.Get(k) != want {
			t.Errorf("raw %s = %q, want %q", k, h.Get(k), want)
		}
	}

	// Base64 content API.
	var content struct{ Status, Hash, Engine, Content string }
	n.getJSON(t, "/api/v0/storage/"+sha, http.StatusOK, &content)
	dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(content.Content, "\n", ""))
	if err != nil || !bytes.Equal(dec, data) || content.Engine != "storage" || content.Hash != sha || content.Status != "success" {
		t.Errorf("storage/{hash}: %+v (decode %v)", content.Engine, err)
	}

	var ref refJSON
	n.getJSON(t, "/api/v0/storage/by-message-hash/"+b.Message.ItemHash, http.StatusOK, &ref)
	want := refJSON{Ref: "my-doc", Owner: acct[0].Address(), FileHash: sha, DownloadURL: "/api/v0/storage/raw/" + sha, Size: int64(len(data))}
	if ref != want {
		t.Errorf("by-message-hash = %+v, want %+v", ref, want)
	}
	ref = refJSON{}
	n.getJSON(t, "/api/v0/storage/by-ref/"+acct[0].Address()+"/my-doc", http.StatusOK, &ref)
	if ref != want {
		t.Errorf("by-ref/{address}/{ref} = %+v, want %+v", ref, want)
	}
	n.getJSON(t, "/api/v0/storage/by-ref/"+acct[1].Address()+"/my-doc", http.StatusNotFound, nil)
	var count int
	n.getJSON(t, "/api/v0/storage/count/"+sha, http.StatusOK, &count)
	if count < 1 {
		t.Errorf("count = %d, want the STORE's pin at least", count)
	}
	var meta map[string]any
	n.getJSON(t, "/api/v0/storage/metadata/"+sha, http.StatusOK, &meta)
	if meta["file_hash"] != sha || meta["type"] != "file" || meta["size"] != float64(len(data)) || meta["download_url"] != "/api/v0/storage/raw/"+sha {
		t.Errorf("metadata = %v", meta)
	}

	// Python SDK: metadata as a JSON file part with the content, a named file
	// part, no ref (so the tag and the by-message-hash ref are the item hash).
	data2 := binary(700, 2)
	sha2 := sha256hex(data2)
	b2 := n.storeMsg(t, acct[0], message.ItemStorage, sha2, "")
	body, ct = multipartBody(t,
		mpart{name: "metadata", filename: "metadata.json", contentType: "application/json", body: metadataJSON(t, b2.Message, true, true)},
		mpart{name: "file", filename: "blob", contentType: "application/octet-stream", body: data2})
	code, resp = n.post(t, "/api/v0/storage/add_file", ct, body)
	if code != http.StatusOK || resp["hash"] != sha2 || resp["message_status"] != "processed" {
		t.Fatalf("python-style add_file: %d %v", code, resp)
	}
	ref = refJSON{}
	n.getJSON(t, "/api/v0/storage/by-ref/"+b2.Message.ItemHash, http.StatusOK, &ref)
	if ref.Ref != b2.Message.ItemHash || ref.FileHash != sha2 || ref.Owner != acct[0].Address() {
		t.Errorf("by-ref/{item_hash} = %+v", ref)
	}
	ref = refJSON{}
	n.getJSON(t, "/api/v0/storage/by-message-hash/"+b2.Message.ItemHash, http.StatusOK, &ref)
	if ref.Ref != b2.Message.ItemHash || ref.FileHash != sha2 {
		t.Errorf("by-message-hash without ref = %+v", ref)
	}
	if _, got, _ := n.raw(t, http.MethodGet, "/api/v0/storage/raw/"+sha2, "", nil); !bytes.Equal(got, data2) {
		t.Error("raw download of the second file differs")
	}

	// Asynchronous: 202, pending.
	data3 := binary(10, 3)
	b3 := n.storeMsg(t, acct[1], message.ItemStorage, sha256hex(data3), "")
	body, ct = multipartBody(t, mpart{name: "metadata", body: metadataJSON(t, b3.Message, false, false)}, mpart{name: "file", body: data3})
	code, resp = n.post(t, "/api/v0/storage/add_file", ct, body)
	if code != http.StatusAccepted && code != http.StatusOK || resp["hash"] != sha256hex(data3) {
		t.Errorf("async add_file: %d %v", code, resp)
	}

	// The owner's files.
	var list struct {
		Address           string           `json:"address"`
		TotalSize         int64            `json:"total_size"`
		Files             []map[string]any `json:"files"`
		PaginationPage    int              `json:"pagination_page"`
		PaginationTotal   int              `json:"pagination_total"`
		PaginationPerPage int              `json:"pagination_per_page"`
	}
	n.getJSON(t, "/api/v0/addresses/"+acct[0].Address()+"/files", http.StatusOK, &list)
	if list.Address != acct[0].Address() || list.TotalSize != int64(len(data)+len(data2)) || len(list.Files) != 2 ||
		list.PaginationTotal != 2 || list.PaginationPerPage != 100 || list.PaginationPage != 1 {
		t.Fatalf("address files: %+v", list)
	}
	// Newest first by default.
	f0 := list.Files[0]
	if f0["file_hash"] != sha2 || f0["item_hash"] != b2.Message.ItemHash || f0["type"] != "file" || f0["size"] != float64(len(data2)) {
		t.Errorf("first file %v", f0)
	}
	if c, _ := f0["created"].(string); !strings.HasSuffix(c, "+00:00") {
		t.Errorf("created %v is not ISO-8601 UTC", f0["created"])
	}
	n.getJSON(t, "/api/v0/addresses/"+acct[0].Address()+"/files?sort_order=1&pagination=1&page=1", http.StatusOK, &list)
	if len(list.Files) != 1 || list.Files[0]["file_hash"] != sha || list.PaginationTotal != 2 || list.PaginationPerPage != 1 {
		t.Errorf("oldest first, one per page: %+v", list)
	}
	n.getJSON(t, "/api/v0/addresses/"+acct[0].Address()+"/files?sort_order=2", http.StatusUnprocessableEntity, nil)
	n.getJSON(t, "/api/v0/addresses/0xnobody/files", http.StatusOK, &list)
	if len(list.Files) != 0 || list.TotalSize != 0 {
		t.Errorf("no files: %+v", list)
	}
	n.noInternalErrors(t)
}

// TestUploadRefusals: a bad signature, a hash mismatch or a wrong message keep
// nothing and name the problem.
func TestUploadRefusals(t *testing.T) {
	n := newFileNode(t, "sqlite", smallLimits)
	acct := accounts(t, 1)[0]
	data := binary(500, 4)
	sha := sha256hex(data)
	upload := func(meta []byte) (int, map[string]any) {
		t.Helper()
		body, ct := multipartBody(t, mpart{name: "metadata", body: meta}, mpart{name: "file", body: data})
		return n.post(t, "/api/v0/storage/add_file", ct, body)
	}

	bad := n.storeMsg(t, acct, message.ItemStorage, sha, "")
	sig := []byte(bad.Message.Signature)
	sig[10] ^= 1 // still hex, no longer the signature
	bad.Message.Signature = string(sig)
	code, resp := upload(metadataJSON(t, bad.Message, true, false))
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(resp["error"]), "signature") {
		t.Errorf("bad signature: %d %v", code, resp)
	}
	n.notKept(t, sha)
	n.getJSON(t, "/api/v0/messages/"+bad.Message.ItemHash, http.StatusNotFound, nil)

	other := n.storeMsg(t, acct, message.ItemStorage, sha256hex([]byte("something else")), "")
	code, resp = upload(metadataJSON(t, other.Message, true, false))
	if code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(resp["error"]), "file hash does not match") {
		t.Errorf("hash mismatch: %d %v", code, resp)
	}
	n.notKept(t, sha)
	n.getJSON(t, "/api/v0/messages/"+other.Message.ItemHash, http.StatusNotFound, nil)

	cid := cidv0(t, data)
	for name, meta := range map[string][]byte{
		"not a STORE":      metadataJSON(t, n.build(t, acct, message.TypePost, post("note", `{"x":1}`, ""), "TEST").Message, true, false),
		"ipfs STORE":       metadataJSON(t, n.storeMsg(t, acct, message.ItemIPFS, cid, "").Message, true, false),
		"not JSON":         []byte("{nope"),
		"no message":       []byte(`{"sync":true}`),
		"message not obj":  []byte(`{"message":"x","sync":true}`),
		"bad sync":         []byte(`{"message":{},"sync":"maybe"}`),
		"invalid envelope": []byte(`{"message":{"chain":"ETH"},"sync":true}`),
	} {
		code, resp := upload(meta)
		if code != http.StatusUnprocessableEntity || resp["error"] == nil {
			t.Errorf("%s: %d %v", name, code, resp)
		}
	}
	n.notKept(t, sha)

	// The wrong engine the other way: a storage STORE on ipfs/add_file.
	body, ct := multipartBody(t, mpart{name: "metadata", body: metadataJSON(t, n.storeMsg(t, acct, message.ItemStorage, sha, "").Message, true, false)}, mpart{name: "file", body: data})
	if code, resp := n.post(t, "/api/v0/ipfs/add_file", ct, body); code != http.StatusUnprocessableEntity {
		t.Errorf("storage STORE on ipfs/add_file: %d %v", code, resp)
	}
	n.notKept(t, cid)

	// Framing problems.
	noFile, ct := multipartBody(t, mpart{name: "other", body: []byte("x")})
	twoFiles, ct2 := multipartBody(t, mpart{name: "file", body: []byte("a")}, mpart{name: "file", body: []byte("b")})
	for _, tc := range []struct {
		name, path, ct string
		body           []byte
		want           int
	}{
		{"no file part", "/api/v0/storage/add_file", ct, noFile, http.StatusBadRequest},
		{"two file parts", "/api/v0/storage/add_file", ct2, twoFiles, http.StatusBadRequest},
		{"no boundary", "/api/v0/storage/add_file", "multipart/form-data", []byte("x"), http.StatusBadRequest},
		{"ipfs not multipart", "/api/v0/ipfs/add_file", "application/octet-stream", data, http.StatusBadRequest},
		{"car without metadata", "/api/v0/ipfs/add_car", ct2, twoFiles, http.StatusUnprocessableEntity},
		{"garbage", "/api/v0/ipfs/add_file", ct, []byte("--not the boundary\r\n\r\n"), http.StatusBadRequest},
	} {
		if code, resp := n.post(t, tc.path, tc.ct, tc.body); code != tc.want || resp["error"] == nil {
			t.Errorf("%s: %d %v, want %d", tc.name, code, resp, tc.want)
		}
	}
	n.noInternalErrors(t)
}

// TestUploadLimits: at the limit is accepted, one byte more is 413 and keeps
// nothing, whether the client announces the length or streams.
func TestUploadLimits(t *testing.T) {
	n := newFileNode(t, "sqlite", smallLimits)
	acct := accounts(t, 1)[0]
	type upload struct {
		name string
		send func(t *testing.T, data []byte) (int, map[string]any)
		hash func(t testing.TB, data []byte) string
		// limit is the largest accepted file.
		limit int
	}
	sha := func(_ testing.TB, b []byte) string { return sha256hex(b) }
	signed := func(path string, it message.ItemType, hash func(testing.TB, []byte) string, first bool) func(t *testing.T, data []byte) (int, map[string]any) {
		return func(t *testing.T, data []byte) (int, map[string]any) {
			meta := mpart{name: "metadata", body: metadataJSON(t, n.storeMsg(t, acct, it, hash(t, data), "").Message, true, false)}
			file := mpart{name: "file", filename: "f.bin", body: data}
			parts := []mpart{meta, file}
			if !first {
				parts = []mpart{file, meta}
			}
			body, ct := multipartBody(t, parts...)
			return n.post(t, path, ct, body)
		}
	}
	unsigned := func(path string, stream bool) func(t *testing.T, data []byte) (int, map[string]any) {
		return func(t *testing.T, data []byte) (int, map[string]any) {
			body, ct := multipartBody(t, mpart{name: "file", filename: "f.bin", body: data})
			if stream {
				return n.postStream(t, path, ct, body)
			}
			return n.post(t, path, ct, body)
		}
	}
	for _, u := range []upload{
		{"storage raw", func(t *testing.T, d []byte) (int, map[string]any) {
			return n.post(t, "/api/v0/storage/add_file", "application/octet-stream", d)
		}, sha, 1000},
		{"storage raw streamed", func(t *testing.T, d []byte) (int, map[string]any) {
			return n.postStream(t, "/api/v0/storage/add_file", "application/octet-stream", d)
		}, sha, 1000},
		{"storage multipart", unsigned("/api/v0/storage/add_file", false), sha, 1000},
		{"storage multipart streamed", unsigned("/api/v0/storage/add_file", true), sha, 1000},
		{"storage signed", signed("/api/v0/storage/add_file", message.ItemStorage, sha, true), sha, 3000},
		{"storage signed, file first", signed("/api/v0/storage/add_file", message.ItemStorage, sha, false), sha, 1000},
		{"ipfs multipart", unsigned("/api/v0/ipfs/add_file", false), cidv0, 1000},
		{"ipfs multipart streamed", unsigned("/api/v0/ipfs/add_file", true), cidv0, 1000},
		{"ipfs signed", signed("/api/v0/ipfs/add_file", message.ItemIPFS, cidv0, true), cidv0, 3000},
	} {
		t.Run(u.name, func(t *testing.T) {
			seed := byte(len(u.name))
			at := binary(u.limit, seed)
			if code, resp := u.send(t, at); code != http.StatusOK || resp["hash"] != u.hash(t, at) {
				t.Errorf("%d bytes (the limit): %d %v", u.limit, code, resp)
			}
			over := binary(u.limit+1, seed)
			code, resp := u.send(t, over)
			if code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(resp["error"]), "limit") {
				t.Errorf("%d bytes: %d %v, want 413", u.limit+1, code, resp)
			}
			n.notKept(t, u.hash(t, over))
		})
	}

	// add_json bounds the body.
	at := []byte(`"` + strings.Repeat("x", 998) + `"`)
	if code, resp := n.post(t, "/api/v0/storage/add_json", "application/json", at); code != http.StatusOK {
		t.Errorf("add_json of 1000 bytes: %d %v", code, resp)
	}
	over := []byte(`"` + strings.Repeat("y", 999) + `"`)
	if code, resp := n.post(t, "/api/v0/storage/add_json", "application/json", over); code != http.StatusRequestEntityTooLarge {
		t.Errorf("add_json of 1001 bytes: %d %v", code, resp)
	}
	n.notKept(t, sha256hex(over))

	var limits map[string]map[string]int64
	n.getJSON(t, "/api/v0/storage/limits.json", http.StatusOK, &limits)
	want := map[string]map[string]int64{
		"storage": {"max_file_size": 3000, "max_unauthenticated_upload_file_size": 1000},
		"ipfs":    {"max_upload_file_size": 3000, "max_upload_car_size": 6000, "max_unauthenticated_upload_file_size": 1000},
	}
	if fmt.Sprint(limits) != fmt.Sprint(want) {
		t.Errorf("limits.json = %v, want %v", limits, want)
	}
	n.noInternalErrors(t)
}

// TestInterruptedUploads: a body cut mid-file, and a client that goes away
// mid-upload, get 400 (or nobody to answer) and leave no file.
func TestInterruptedUploads(t *testing.T) {
	n := newFileNode(t, "sqlite", smallLimits)
	acct := accounts(t, 1)[0]
	data := binary(900, 5)
	sha := sha256hex(data)

	body, ct := multipartBody(t, mpart{name: "file", body: data})
	cut := body[:bytes.Index(body, data)+len(data)/2]
	if code, resp := n.post(t, "/api/v0/storage/add_file", ct, cut); code != http.StatusBadRequest || resp["error"] == nil {
		t.Errorf("truncated multipart: %d %v", code, resp)
	}
	n.notKept(t, sha)
	if code, resp := n.post(t, "/api/v0/ipfs/add_file", ct, cut); code != http.StatusBadRequest {
		t.Errorf("truncated ipfs multipart: %d %v", code, resp)
	}
	n.notKept(t, cidv0(t, data))

	// Signed, cut mid-file: no file and no message.
	b := n.storeMsg(t, acct, message.ItemStorage, sha, "")
	body, ct = multipartBody(t, mpart{name: "metadata", body: metadataJSON(t, b.Message, true, false)}, mpart{name: "file", body: data})
	cut = body[:bytes.Index(body, data)+len(data)/2]
	if code, resp := n.post(t, "/api/v0/storage/add_file", ct, cut); code != http.StatusBadRequest {
		t.Errorf("truncated signed multipart: %d %v", code, resp)
	}
	n.notKept(t, sha)
	n.getJSON(t, "/api/v0/messages/"+b.Message.ItemHash, http.StatusNotFound, nil)

	// A client that announces the whole body, sends half and hangs up.
	for _, tc := range []struct{ path, ct string }{
		{"/api/v0/storage/add_file", ct},
		{"/api/v0/storage/add_file", "application/octet-stream"},
		{"/api/v0/ipfs/add_file", ct},
	} {
		full := body
		if tc.ct == "application/octet-stream" {
			full = data
		}
		n.drainDone()
		u, _ := url.Parse(n.url)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", tc.path, u.Host, tc.ct, len(full))
		half := bytes.Index(full, data) + len(data)/2
		if _, err := conn.Write(full[:half]); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		n.waitDone(t, tc.path)
		n.notKept(t, sha)
		n.notKept(t, cidv0(t, data))
	}
	n.getJSON(t, "/api/v0/messages/"+b.Message.ItemHash, http.StatusNotFound, nil)
	n.noInternalErrors(t)
}

// TestRawDownload: Range (one byte, suffix, several ranges, unsatisfiable),
// If-Range, If-None-Match and HEAD on /api/v0/storage/raw/{hash}.
func TestRawDownload(t *testing.T) {
	n := newFileNode(t, "sqlite", smallLimits)
	data := binary(1000, 6)
	sha := sha256hex(data)
	if code, resp := n.post(t, "/api/v0/storage/add_file", "application/octet-stream", data); code != http.StatusOK || resp["hash"] != sha {
		t.Fatalf("upload: %d %v", code, resp)
	}
	path := "/api/v0/storage/raw/" + sha
	etag := `"` + sha + `"`
	for _, tc := range []struct {
		name    string
		hdr     map[string]string
		code    int
		body    []byte
		crange  string
		partial bool
	}{
		{"first byte", map[string]string{"Range": "bytes=0-0"}, http.StatusPartialContent, data[:1], "bytes 0-0/1000", true},
		{"suffix", map[string]string{"Range": "bytes=-5"}, http.StatusPartialContent, data[995:], "bytes 995-999/1000", true},
		{"open end", map[string]string{"Range": "bytes=990-"}, http.StatusPartialContent, data[990:], "bytes 990-999/1000", true},
		{"if-range matches", map[string]string{"Range": "bytes=10-19", "If-Range": etag}, http.StatusPartialContent, data[10:20], "bytes 10-19/1000", true},
		{"if-range differs", map[string]string{"Range": "bytes=10-19", "If-Range": `"other"`}, http.StatusOK, data, "", false},
		{"no range", nil, http.StatusOK, data, "", false},
	} {
		code, got, h := n.get(t, http.MethodGet, path, tc.hdr)
		if code != tc.code || !bytes.Equal(got, tc.body) || h.Get("Content-Range") != tc.crange {
			t.Errorf("%s: %d, %d bytes, Content-Range %q", tc.name, code, len(got), h.Get("Content-Range"))
		}
	}

	// Several ranges: multipart/byteranges.
	code, got, h := n.get(t, http.MethodGet, path, map[string]string{"Range": "bytes=0-1,500-509"})
	mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if code != http.StatusPartialContent || mt != "multipart/byteranges" {
		t.Fatalf("multi-range: %d %s", code, h.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(got), params["boundary"])
	for _, want := range [][]byte{data[0:2], data[500:510]} {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("multi-range part: %v", err)
		}
		b, _ := io.ReadAll(p)
		if !bytes.Equal(b, want) {
			t.Errorf("multi-range part %s: %d bytes", p.Header.Get("Content-Range"), len(b))
		}
	}

	// Unsatisfiable: 416 as JSON.
	code, got, h = n.get(t, http.MethodGet, path, map[string]string{"Range": "bytes=5000-"})
	var e map[string]any
	if code != http.StatusRequestedRangeNotSatisfiable || json.Unmarshal(got, &e) != nil || e["error"] == nil || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("unsatisfiable range: %d %s %q", code, h.Get("Content-Type"), got)
	}

	code, got, h = n.get(t, http.MethodHead, path, nil)
	if code != http.StatusOK || len(got) != 0 || h.Get("Content-Length") != "1000" || h.Get("ETag") != etag || h.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD: %d, %d bytes, %v", code, len(got), h)
	}
	if code, _, _ := n.get(t, http.MethodGet, path, map[string]string{"If-None-Match": etag}); code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", code)
	}

	for p, want := range map[string]int{
		"/api/v0/storage/raw/" + sha256hex([]byte("unknown")):     http.StatusNotFound,
		"/api/v0/storage/raw/" + cidv0(t, []byte("unknown")):      http.StatusNotFound,
		"/api/v0/storage/raw/nothash":                             http.StatusBadRequest,
		"/api/v0/storage/raw/" + strings.ToUpper(sha):             http.StatusBadRequest,
		"/api/v0/storage/" + sha256hex([]byte("unknown")):         http.StatusNotFound,
		"/api/v0/storage/nothash":                                 http.StatusBadRequest,
		"/api/v0/storage/metadata/nothash":                        http.StatusBadRequest,
		"/api/v0/storage/metadata/" + sha256hex([]byte("x")):      http.StatusNotFound,
		"/api/v0/storage/count/nothash":                           http.StatusBadRequest,
		"/api/v0/storage/by-message-hash/nothash":                 http.StatusBadRequest,
		"/api/v0/storage/by-message-hash/" + sha256hex([]byte{1}): http.StatusNotFound,
		"/api/v0/storage/by-ref/nothing":                          http.StatusNotFound,
	} {
		n.getJSON(t, p, want, nil)
	}
	var count int
	n.getJSON(t, "/api/v0/storage/count/"+sha256hex([]byte("unknown")), http.StatusOK, &count)
	if count != 0 {
		t.Errorf("count of an unknown file = %d", count)
	}
	n.getJSON(t, "/api/v0/storage/count/"+sha, http.StatusOK, &count)
	if count != 1 {
		t.Errorf("count of an unauthenticated upload = %d, want its grace-period pin", count)
	}
	n.noInternalErrors(t)
}

// TestStorageBase64: GET /api/v0/storage/{hash} lays the base64 out as
// Python's base64.encodebytes, and refuses files over MaxStorageFile.
func TestStorageBase64(t *testing.T) {
	n := newFileNode(t, "sqlite", api.Config{MaxUnauthenticatedUpload: 5000, MaxStorageFile: 3000})
	for _, size := range []int{0, 1, 57, 114, 200, 3000} {
		data := binary(size, 7)
		sha := sha256hex(data)
		if code, resp := n.post(t, "/api/v0/storage/add_file", "application/octet-stream", data); code != http.StatusOK {
			t.Fatalf("upload %d bytes: %d %v", size, code, resp)
		}
		var got struct{ Status, Hash, Engine, Content string }
		n.getJSON(t, "/api/v0/storage/"+sha, http.StatusOK, &got)
		all := base64.StdEncoding.EncodeToString(data)
		var want strings.Builder
		for i := 0; i < len(all); i += 76 {
			want.WriteString(all[i:min(i+76, len(all))] + "\n")
		}
		if got.Content != want.String() || got.Status != "success" || got.Hash != sha || got.Engine != "storage" {
			t.Errorf("%d bytes: content %q, want %q", size, got.Content, want.String())
		}
	}
	big := binary(3001, 8)
	if code, resp := n.post(t, "/api/v0/storage/add_file", "application/octet-stream", big); code != http.StatusOK {
		t.Fatalf("upload: %d %v", code, resp)
	}
	n.getJSON(t, "/api/v0/storage/"+sha256hex(big), http.StatusRequestEntityTooLarge, nil)
	if code, got, _ := n.raw(t, http.MethodGet, "/api/v0/storage/raw/"+sha256hex(big), "", nil); code != http.StatusOK || !bytes.Equal(got, big) {
		t.Errorf("raw has no cap: %d", code)
	}

	// The ipfs engine.
	small := []byte("hello world\n")
	body, ct := multipartBody(t, mpart{name: "file", filename: "hello.txt", body: small})
	code, resp := n.post(t, "/api/v0/ipfs/add_file", ct, body)
	if code != http.StatusOK {
		t.Fatalf("ipfs add: %d %v", code, resp)
	}
	var got struct{ Engine, Content string }
	n.getJSON(t, "/api/v0/storage/"+resp["hash"].(string), http.StatusOK, &got)
	if got.Engine != "ipfs" || got.Content != base64.StdEncoding.EncodeToString(small)+"\n" {
		t.Errorf("ipfs content: %+v", got)
	}
	n.noInternalErrors(t)
}

// TestAddJSON: the stored bytes are the sorted-keys serialisation, and the
// hash is their sha256 (storage) or their CIDv0 (ipfs).
func TestAddJSON(t *testing.T) {
	n := newFileNode(t, "sqlite", smallLimits)
	in := []byte(`{"time": 1700000000.50, "b": [1.0, 2, 1e16], "a": "é\u00e9", "c": {"z": 1, "y": null}}`)
	want := []byte(`{"a":"éé","b":[1.0,2,1e16],"c":{"y":null,"z":1},"time":1700000000.5}`)
	code, resp := n.post(t, "/api/v0/storage/add_json", "application/json", in)
	if code != http.StatusOK || resp["status"] != "success" || resp["hash"] != sha256hex(want) {
		t.Fatalf("storage/add_json: %d %v, want hash %s", code, resp, sha256hex(want))
	}
	if _, got, _ := n.raw(t, http.MethodGet, "/api/v0/storage/raw/"+sha256hex(want), "", nil); !bytes.Equal(got, want) {
		t.Errorf("stored %s, want %s", got, want)
	}
	code, resp = n.post(t, "/api/v0/ipfs/add_json", "application/json", in)
	if code != http.StatusOK || resp["hash"] != cidv0(t, want) {
		t.Fatalf("ipfs/add_json: %d %v, want %s", code, resp, cidv0(t, want))
	}
	if _, got, _ := n.raw(t, http.MethodGet, "/ipfs/"+cidv0(t, want), "", nil); !bytes.Equal(got, want) {
		t.Errorf("gateway gives %s, want %s", got, want)
	}
	for _, bad := range []string{"", "{", "NaN", `{"a":1}{`} {
		code, resp := n.post(t, "/api/v0/storage/add_json", "application/json", []byte(bad))
		if code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(resp["error"]), "JSON") {
			t.Errorf("add_json %q: %d %v", bad, code, resp)
		}
	}
	n.noInternalErrors(t)
}

// TestIPFSAddFileGolden: ipfs/add_file gives the CID kubo's `ipfs add`
// gives (testdata/cids.json goldens), with or without a filename.
func TestIPFSAddFileGolden(t *testing.T) {
	n := newFileNode(t, "sqlite", api.Config{})
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "cids.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []struct {
			Input     string `json:"input"`
			Size      int    `json:"size"`
			Generator struct {
				Kind  string `json:"kind"`
				Text  string `json:"text"`
				N     int    `json:"n"`
				Unit  string `json:"unit"`
				Count int    `json:"count"`
			} `json:"generator"`
			CIDs   map[string]string `json:"cids"`
			Golden []string          `json:"golden_profiles"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, v := range doc.Vectors {
		golden := false
		for _, p := range v.Golden {
			golden = golden || p == "kubo-default-cidv0"
		}
		if !golden {
			continue
		}
		var data []byte
		switch v.Generator.Kind {
		case "literal":
			data = []byte(v.Generator.Text)
		case "pattern":
			data = pattern(v.Generator.N)
		case "repeat":
			data = []byte(strings.Repeat(v.Generator.Unit, v.Generator.Count))
		default:
			t.Fatalf("unknown generator %q", v.Generator.Kind)
		}
		want := v.CIDs["kubo-default-cidv0"]
		for _, filename := range []string{"blob", ""} {
			body, ct := multipartBody(t, mpart{name: "file", filename: filename, contentType: "application/octet-stream", body: data})
			code, resp := n.post(t, "/api/v0/ipfs/add_file", ct, body)
			wantName := filename
			if wantName == "" {
				wantName = want
			}
			if code != http.StatusOK || resp["status"] != "success" || resp["hash"] != want || resp["name"] != wantName || resp["size"] != float64(len(data)) {
				t.Errorf("%s (filename %q): %d %v, want %s", v.Input, filename, code, resp, want)
			}
		}
		if _, got, _ := n.raw(t, http.MethodGet, "/api/v0/storage/raw/"+want, "", nil); !bytes.Equal(got, data) {
			t.Errorf("%s: raw download differs", v.Input)
		}
		tested++
	}
	if tested < 3 {
		t.Fatalf("only %d golden vectors", tested)
	}
	n.noInternalErrors(t)
}

// TestAddCARAndGateway: a CAR of a directory, signed, is imported; the
// gateway serves its files by path and lists it; raw gives a tar; traversal
// and invalid CIDs are refused.
func TestAddCARAndGateway(t *testing.T) {
	n := newFileNode(t, "sqlite", smallLimits)
	acct := accounts(t, 1)[0]
	index := []byte("<h1>not an index.html</h1>\n")
	deep := binary(1500, 9)
	root, car := buildDirCAR(t, map[string][]byte{"readme.txt": index, "sub/path.bin": deep})

	upload := func(meta, file mpart) (int, map[string]any) {
		body, ct := multipartBody(t, meta, file)
		return n.post(t, "/api/v0/ipfs/add_car", ct, body)
	}
	b := n.storeMsg(t, acct, message.ItemIPFS, root, "site")
	meta := mpart{name: "metadata", body: metadataJSON(t, b.Message, true, false)}
	file := mpart{name: "file", filename: "site.car", contentType: "application/vnd.ipld.car", body: car}

	// Refused first: metadata after the file, a root other than item_hash, a
	// broken CAR.
	if code, resp := upload(file, meta); code != http.StatusUnprocessableEntity {
		t.Errorf("file before metadata: %d %v", code, resp)
	}
	wrong := n.storeMsg(t, acct, message.ItemIPFS, cidv0(t, index), "")
	if code, resp := upload(mpart{name: "metadata", body: metadataJSON(t, wrong.Message, true, false)}, file); code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(resp["error"]), "CAR") {
		t.Errorf("wrong root: %d %v", code, resp)
	}
	broken := mpart{name: "file", body: car[:len(car)-100]}
	if code, resp := upload(meta, broken); code != http.StatusUnprocessableEntity && code != http.StatusBadRequest {
		t.Errorf("truncated CAR: %d %v", code, resp)
	}
	n.notKept(t, root)

	code, resp := upload(meta, file)
	if code != http.StatusOK || resp["status"] != "success" || resp["hash"] != root || resp["size"] != float64(len(index)+len(deep)) || resp["message_status"] != "processed" {
		t.Fatalf("add_car: %d %v", code, resp)
	}
	if f := n.kept(t, root); f.Type != "dir" {
		t.Errorf("root row %+v", f)
	}
	var ref refJSON
	n.getJSON(t, "/api/v0/storage/by-ref/"+acct.Address()+"/site", http.StatusOK, &ref)
	if ref.FileHash != root {
		t.Errorf("by-ref: %+v", ref)
	}

	// The gateway.
	code, got, h := n.get(t, http.MethodGet, "/ipfs/"+root+"/sub/path.bin", nil)
	if code != http.StatusOK || !bytes.Equal(got, deep) {
		t.Errorf("gateway file: %d, %d bytes", code, len(got))
	}
	if !strings.Contains(h.Get("Cache-Control"), "immutable") || h.Get("Etag") == "" {
		t.Errorf("gateway headers: %v", h)
	}
	code, got, _ = n.get(t, http.MethodGet, "/ipfs/"+root+"/sub/path.bin", map[string]string{"Range": "bytes=100-199"})
	if code != http.StatusPartialContent || !bytes.Equal(got, deep[100:200]) {
		t.Errorf("gateway range: %d, %d bytes", code, len(got))
	}
	code, got, _ = n.get(t, http.MethodHead, "/ipfs/"+root+"/readme.txt", nil)
	if code != http.StatusOK || len(got) != 0 {
		t.Errorf("gateway HEAD: %d", code)
	}
	code, got, _ = n.get(t, http.MethodGet, "/ipfs/"+root+"/", nil)
	if code != http.StatusOK || !bytes.Contains(got, []byte("readme.txt")) || !bytes.Contains(got, []byte("sub")) {
		t.Errorf("gateway listing: %d %s", code, clipBody(got))
	}
	for _, p := range []string{"/ipfs/" + root + "/nothing-here", "/ipfs/" + cidv0(t, []byte("not here"))} {
		if code, _, _ := n.get(t, http.MethodGet, p, nil); code != http.StatusNotFound {
			t.Errorf("gateway %s: %d, want 404", p, code)
		}
	}

	// Raw: a tar of the directory.
	code, got, h = n.get(t, http.MethodGet, "/api/v0/storage/raw/"+root, nil)
	if code != http.StatusOK || h.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("raw dir: %d %s", code, h.Get("Content-Type"))
	}
	tr := tar.NewReader(bytes.NewReader(got))
	found := map[string][]byte{}
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		found[hd.Name] = b
	}
	var sawDeep bool
	for name, b := range found {
		if strings.HasSuffix(name, "sub/path.bin") && bytes.Equal(b, deep) {
			sawDeep = true
		}
	}
	if !sawDeep {
		t.Errorf("tar entries: %v", keys(found))
	}
	code, got, _ = n.get(t, http.MethodHead, "/api/v0/storage/raw/"+root, nil)
	if code != http.StatusOK || len(got) != 0 {
		t.Errorf("raw dir HEAD: %d", code)
	}
	n.getJSON(t, "/api/v0/storage/"+root, http.StatusUnprocessableEntity, nil)

	// Traversal and invalid CIDs: 400, and never the file.
	for _, p := range []string{
		"/ipfs/" + root + "/../" + root + "/sub/path.bin",
		"/ipfs/" + root + "/sub/../sub/path.bin",
		"/ipfs/" + root + "/sub/%2e%2e/sub/path.bin",
		"/ipfs/" + root + "/sub/%2E%2E/%2E%2E/etc/passwd",
		"/ipfs/" + root + "/sub/%252e%252e/sub/path.bin",
		"/ipfs/" + root + "/./sub/path.bin",
		"/ipfs/" + root + "//sub/path.bin",
		"/ipfs/" + root + "/sub%2fpath.bin",
		"/ipfs/..%2f..%2fetc/passwd",
		"/ipfs/../api/v0/version",
		"/ipfs/not-a-cid/sub/path.bin",
		"/ipfs/QmInvalid",
		"/ipfs/" + sha256hex(deep),
		"/ipfs/" + root + "x/sub/path.bin",
	} {
		code, got, h := n.get(t, http.MethodGet, p, nil)
		if code != http.StatusBadRequest || bytes.Contains(got, deep[:64]) || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %s %q", p, code, h.Get("Content-Type"), clipBody(got))
		}
	}
	n.noInternalErrors(t)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFilesDisabled: without a file service, uploads are 503 and downloads
// 404, as JSON.
func TestFilesDisabled(t *testing.T) {
	n := newNode(t, api.Config{})
	for _, p := range []string{"/api/v0/storage/add_file", "/api/v0/storage/add_json", "/api/v0/ipfs/add_file", "/api/v0/ipfs/add_json", "/api/v0/ipfs/add_car"} {
		if code, resp := n.do(t, http.MethodPost, p, "application/json", []byte(`{}`)); code != http.StatusServiceUnavailable || resp["error"] == nil {
			t.Errorf("POST %s: %d %v", p, code, resp)
		}
	}
	sha := sha256hex([]byte("x"))
	for _, p := range []string{"/api/v0/storage/raw/" + sha, "/api/v0/storage/" + sha, "/api/v0/storage/metadata/" + sha, "/ipfs/" + cidv0(t, []byte("x"))} {
		n.getJSON(t, p, http.StatusNotFound, nil)
	}
	n.getJSON(t, "/api/v0/storage/limits.json", http.StatusOK, nil)
	n.getJSON(t, "/api/v0/storage/add_file", http.StatusMethodNotAllowed, nil)
	n.noInternalErrors(t)
}
