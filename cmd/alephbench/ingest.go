package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/internal/loadgen"
)

type ingestOpts struct {
	url         string
	n           int
	concurrency int
	accounts    int
	sync        bool
	timeout     time.Duration
}

func newIngestCmd() *cobra.Command {
	var o ingestOpts
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Submit signed ETH POSTs over HTTP and measure acknowledged and processed rates",
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runIngest(cmd.Context(), o)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "http://127.0.0.1:4024", "node base URL")
	f.IntVarP(&o.n, "messages", "n", 10_000, "messages to submit")
	f.IntVar(&o.concurrency, "concurrency", 64, "concurrent HTTP submissions")
	f.IntVar(&o.accounts, "accounts", 100, "distinct signing accounts")
	f.BoolVar(&o.sync, "sync", false, "submit with sync=true")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	return cmd
}

// IngestResult is the JSON the ingest command prints.
type IngestResult struct {
	Messages      int     `json:"messages"`
	Channel       string  `json:"channel"`
	SignSeconds   float64 `json:"sign_seconds"`
	AckSeconds    float64 `json:"ack_seconds"`
	AckRate       float64 `json:"ack_per_second"`
	DoneSeconds   float64 `json:"processed_seconds"`
	ProcessedRate float64 `json:"processed_per_second"`
	Rejected      int64   `json:"rejected"`
}

func runIngest(ctx context.Context, o ingestOpts) (*IngestResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	channel := fmt.Sprintf("BENCH-%d", time.Now().UnixNano())
	t0 := time.Now()
	posts, err := loadgen.Posts(o.n, o.accounts, channel, o.sync)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	bodies := make([][]byte, len(posts))
	for i, p := range posts {
		bodies[i] = p.Body
	}
	res := &IngestResult{Messages: o.n, Channel: channel, SignSeconds: time.Since(t0).Seconds()}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: time.Minute}
	endpoint := o.url + "/api/v0/messages"
	var next atomic.Int64
	var rejected atomic.Int64
	errc := make(chan error, o.concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				code, err := post(ctx, client, endpoint, bodies[i])
				if err != nil {
					errc <- err
					return
				}
				switch code {
				case http.StatusOK, http.StatusAccepted:
				case http.StatusUnprocessableEntity:
					rejected.Add(1)
				default:
					errc <- fmt.Errorf("message %d: HTTP %d", i, code)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	res.AckSeconds = time.Since(start).Seconds()
	res.AckRate = float64(o.n) / res.AckSeconds
	res.Rejected = rejected.Load()
	want := int64(o.n) - res.Rejected
	if err := waitCount(ctx, client, o.url, channel, want); err != nil {
		return nil, err
	}
	res.DoneSeconds = time.Since(start).Seconds()
	res.ProcessedRate = float64(want) / res.DoneSeconds
	return res, nil
}

func post(ctx context.Context, c *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitCount polls messages.json until the channel holds want processed messages.
func waitCount(ctx context.Context, c *http.Client, base, channel string, want int64) error {
	u := base + "/api/v0/messages.json?pagination=1&channels=" + url.QueryEscape(channel)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for poll := 0; ; poll++ {
		// The node caches large totals for 30 s; a distinct far-future endDate
		// on every poll makes each one a fresh, exact count.
		n, err := countOnce(ctx, c, fmt.Sprintf("%s&endDate=%d", u, 4_000_000_000+poll))
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d processed messages (have %d): %w", want, n, ctx.Err())
		case <-tick.C:
		}
	}
}

func countOnce(ctx context.Context, c *http.Client, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	var page struct {
		Total int64 `json:"pagination_total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return 0, fmt.Errorf("decode messages.json: %w", err)
	}
	return page.Total, nil
}
