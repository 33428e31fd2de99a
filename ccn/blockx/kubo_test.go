package blockx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/blockx"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/internal/kubotest"
	"github.com/go-aleph/go-aleph/unixfs"
)

// kuboCall POSTs an RPC call and returns the body; non-200 fails the test.
func kuboCall(t *testing.T, ctx context.Context, api, cmd string, args url.Values, body io.Reader, contentType string) []byte {
	t.Helper()
	u := api + "/api/v0/" + cmd
	if len(args) > 0 {
		u += "?" + args.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("kubo %s: %v", cmd, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("kubo %s: %v", cmd, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("kubo %s: http %d: %s", cmd, resp.StatusCode, b)
	}
	if msg := resp.Trailer.Get("X-Stream-Error"); msg != "" {
		t.Fatalf("kubo %s: %s", cmd, msg)
	}
	return b
}

// kuboAdd adds data to kubo (`ipfs add` with extra query args) and returns
// the CID.
func kuboAdd(t *testing.T, ctx context.Context, api string, data []byte, extra url.Values) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", "data.bin")
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	mw.Close()
	args := url.Values{"pin": {"true"}, "quieter": {"true"}}
	for k, v := range extra {
		args[k] = v
	}
	var out struct{ Hash string }
	if err := json.Unmarshal(kuboCall(t, ctx, api, "add", args, &body, mw.FormDataContentType()), &out); err != nil || out.Hash == "" {
		t.Fatalf("kubo add: %v", err)
	}
	return out.Hash
}

// TestKuboInterop: kubo connects to our host; we fetch files added to kubo
// (CIDv0 and CIDv1 with raw leaves), and kubo fetches a file added to our
// store.
func TestKuboInterop(t *testing.T) {
	api := kubotest.StartOnline(t)
	ctx := testCtx(t)
	n := newNode(t, blockx.Config{StallTimeout: 10 * time.Second})
	addr := fmt.Sprintf("%s/p2p/%s", n.h.Addrs()[0], n.h.ID())
	kuboCall(t, ctx, api, "swarm/connect", url.Values{"arg": {addr}}, nil, "")

	t.Run("we fetch from kubo", func(t *testing.T) {
		for i, extra := range []url.Values{
			nil,
			{"cid-version": {"1"}, "raw-leaves": {"true"}, "chunker": {"size-1048576"}},
		} {
			data := randBytes(uint64(100+i), 3<<20+11)
			c := kuboAdd(t, ctx, api, data, extra)
			row, err := n.svc.EnsureFile(ctx, filestore.EngineIPFS, c)
			if err != nil {
				t.Fatalf("ensure %s from kubo: %v", c, err)
			}
			if row.Size != int64(len(data)) {
				t.Errorf("row %+v, want %d bytes", row, len(data))
			}
			if got := readFile(t, n.fs, c); !bytes.Equal(got, data) {
				t.Fatalf("fetched %d bytes, want the %d added to kubo", len(got), len(data))
			}
		}
	})

	t.Run("kubo fetches from us", func(t *testing.T) {
		data := randBytes(200, 2<<20+3)
		info, err := n.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", &unixfs.KuboV1)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		got := kuboCall(t, cctx, api, "cat", url.Values{"arg": {info.Hash}}, nil, "")
		if !bytes.Equal(got, data) {
			t.Fatalf("kubo cat gave %d bytes, want the %d added here", len(got), len(data))
		}
	})
}
