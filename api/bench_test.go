package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/message"
)

// BenchmarkMessagesJSON measures GET /api/v0/messages.json (20 messages, page
// mode with a counted total, then cursor mode) over real HTTP and SQLite.
func BenchmarkMessagesJSON(b *testing.B) {
	n := newNode(b, api.Config{})
	acc := accounts(b, 1)[0]
	for i := range 200 {
		n.mustProcess(b, n.build(b, acc, message.TypePost, post("blog", fmt.Sprintf(`{"i":%d,"tags":["t%d"]}`, i, i%5), ""), "BENCH"))
	}
	for _, q := range []string{"pagination=20&page=2", "pagination=20&cursor=", "pagination=20&tags=t1&msgTypes=POST"} {
		b.Run(q, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/api/v0/messages.json?"+q, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
