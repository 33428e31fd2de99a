package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/internal/kubotest"
	"github.com/go-aleph/go-aleph/message"
)

// kuboRPC POSTs to kubo's RPC API and returns the body; body may be nil.
func kuboRPC(t *testing.T, ctx context.Context, api, cmd string, args url.Values, data []byte) []byte {
	t.Helper()
	var body io.Reader
	ctype := ""
	if data != nil {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		part, _ := mw.CreateFormFile("file", "data.bin")
		part.Write(data)
		mw.Close()
		body, ctype = &b, mw.FormDataContentType()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/api/v0/"+cmd+"?"+args.Encode(), body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("kubo %s: %d %s", cmd, resp.StatusCode, out)
	}
	return out
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// TestExternalKubo runs a node with --ipfs-api pointing at a real kubo: a
// STORE of a CID only kubo has is fetched from it (and re-hashed), and a file
// uploaded to the node is pinned in kubo too.
func TestExternalKubo(t *testing.T) {
	api := kubotest.Start(t)
	base := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.IPFS.API = api }))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	accts, err := all.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(base, client.WithSigner(accts[0].Signer))

	t.Run("read from kubo", func(t *testing.T) {
		data := randomBytes(700*1024, 1)
		var added struct{ Hash string }
		if err := json.Unmarshal(kuboRPC(t, ctx, api, "add", url.Values{"pin": {"true"}}, data), &added); err != nil {
			t.Fatal(err)
		}
		res, err := c.PinFile(ctx, added.Hash, client.PinOptions{WriteOptions: client.WriteOptions{Sync: true}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != message.StatusProcessed {
			t.Fatalf("STORE of a CID only kubo has: %s, want processed", res.Status)
		}
		var got bytes.Buffer
		if _, err := c.DownloadFile(ctx, added.Hash, &got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatal("the node serves other bytes than kubo's")
		}
	})

	t.Run("pin to kubo", func(t *testing.T) {
		data := randomBytes(600*1024, 2)
		up, err := c.UploadFile(ctx, bytes.NewReader(data), client.UploadOptions{Engine: message.ItemIPFS, WriteOptions: client.WriteOptions{Sync: true}})
		if err != nil {
			t.Fatal(err)
		}
		// The push runs after the STORE's file check; wait for the pin (bounded).
		for {
			var ls struct {
				Keys map[string]struct{ Type string }
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api+"/api/v0/pin/ls?type=recursive&arg="+up.FileHash, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&ls)
			resp.Body.Close()
			if _, ok := ls.Keys[up.FileHash]; ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never pinned in kubo", up.FileHash)
			case <-time.After(50 * time.Millisecond):
			}
		}
		got := kuboRPC(t, ctx, api, "cat", url.Values{"arg": {up.FileHash}}, nil)
		if !bytes.Equal(got, data) {
			t.Fatal("kubo serves other bytes than the node's upload")
		}
	})
}
