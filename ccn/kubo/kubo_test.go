package kubo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/ccn/kubo"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/internal/kubotest"
	"github.com/go-aleph/go-aleph/unixfs"
)

// pattern is the cids.json "pattern" generator: byte i = i % 251.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// kuboAdd adds data through kubo's own /api/v0/add (what `ipfs add` does) and
// returns the CID kubo computed.
func kuboAdd(t *testing.T, ctx context.Context, api string, data []byte, extra string) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", "data.bin")
	if err != nil {
		t.Fatal(err)
	}
	part.Write(data)
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/api/v0/add?pin=true&quieter=true"+extra, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Hash string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Hash == "" {
		t.Fatalf("kubo add: status %d, %v", resp.StatusCode, err)
	}
	return out.Hash
}

func TestKuboClient(t *testing.T) {
	api := kubotest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := kubo.New(api, nil)

	if id, err := c.ID(ctx); err != nil || id == "" {
		t.Fatalf("ID = %q, %v", id, err)
	}

	// The same CIDs as kubo's `ipfs add`, for every profile it offers.
	data := pattern(3<<20 + 17) // 13 chunks of 256 KiB, 4 of 1 MiB
	for _, tc := range []struct {
		name  string
		extra string
		p     unixfs.Profile
	}{
		{"cidv0", "", unixfs.KuboV0},
		{"cidv1", "&cid-version=1", unixfs.KuboV1},
		{"v1-2025", "&cid-version=1&raw-leaves=true&chunker=size-1048576&max-file-links=1024", unixfs.V1_2025},
	} {
		t.Run("cid/"+tc.name, func(t *testing.T) {
			want := kuboAdd(t, ctx, api, data, tc.extra)
			got, err := unixfs.SumBytes(data, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Fatalf("unixfs.Sum = %s, kubo add = %s", got, want)
			}
		})
	}

	cid := kuboAdd(t, ctx, api, data, "")
	t.Run("fetch", func(t *testing.T) {
		rc, err := c.Fetch(ctx, filestore.EngineIPFS, cid, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("fetched %d bytes (err %v), want the %d added", len(got), err, len(data))
		}
		st, err := c.Stat(ctx, cid)
		if err != nil || st.Type != "file" || st.Size != int64(len(data)) {
			t.Fatalf("Stat = %+v, %v", st, err)
		}
	})
	t.Run("fetch limit", func(t *testing.T) {
		rc, err := c.Fetch(ctx, filestore.EngineIPFS, cid, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if len(got) != 1001 {
			t.Fatalf("limit 1000 read %d bytes, want 1001 (one over, so the caller sees the overflow)", len(got))
		}
	})
	t.Run("unknown and storage are unavailable", func(t *testing.T) {
		missing, _ := unixfs.SumBytes([]byte("never added to this kubo"), unixfs.KuboV0)
		if _, err := c.Fetch(ctx, filestore.EngineIPFS, missing.String(), 1<<20); !errors.Is(err, files.ErrUnavailable) {
			t.Fatalf("fetch of a missing CID: %v, want ErrUnavailable", err)
		}
		if _, err := c.Fetch(ctx, filestore.EngineStorage, "aa"+string(bytes.Repeat([]byte("0"), 62)), 1<<20); !errors.Is(err, files.ErrUnavailable) {
			t.Fatalf("fetch of a storage hash: %v, want ErrUnavailable", err)
		}
		if _, err := c.Fetch(ctx, filestore.EngineIPFS, "not-a-cid", 1<<20); err == nil {
			t.Fatal("fetch of an invalid CID succeeded")
		}
	})
	t.Run("pin and unpin", func(t *testing.T) {
		if err := c.Unpin(ctx, filestore.EngineIPFS, cid); err != nil {
			t.Fatal(err)
		}
		if err := c.Unpin(ctx, filestore.EngineIPFS, cid); err != nil {
			t.Fatalf("second unpin: %v (not pinned must not be an error)", err)
		}
		if err := c.Pin(ctx, filestore.EngineIPFS, cid); err != nil {
			t.Fatal(err)
		}
	})
}
