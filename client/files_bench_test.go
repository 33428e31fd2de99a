package client

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

// BenchmarkUploadFile measures the client side of an upload (hash pass, signing,
// multipart streaming) against a server that discards the body: the client's
// share of the node's upload throughput targets.
func BenchmarkUploadFile(b *testing.B) {
	data := randomBytes(64 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"status":"success"}`)
	}))
	defer srv.Close()
	c := New(srv.URL, WithSigner(ethSigner(b)))
	for _, engine := range []message.ItemType{message.ItemStorage, message.ItemIPFS} {
		b.Run(string(engine), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := c.UploadFile(context.Background(), bytes.NewReader(data), UploadOptions{Engine: engine}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDownloadFile measures a verified download from a server that sends
// the bytes from memory.
func BenchmarkDownloadFile(b *testing.B) {
	data := randomBytes(64 << 20)
	h := sha(data)
	srv := httptest.NewServer(serveRange(data, h, nil))
	defer srv.Close()
	c := New(srv.URL)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := c.DownloadFile(context.Background(), h, io.Discard, 0); err != nil {
			b.Fatal(err)
		}
	}
}
