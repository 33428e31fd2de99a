package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	_ "github.com/go-aleph/go-aleph/store/sqlstore" // sqlite and postgres backends
)

// Seeded data layout, shared by seed and query so queries hit real rows.
const (
	seedSenders  = 1000
	seedChannels = 10
	seedBatch    = 5000
	aggOwner     = "0x000000000000000000000000000000000000a661"
	aggKey       = "bench"
	aggElements  = 1000
)

func seedSender(i int) string { return fmt.Sprintf("0x%040x", i%seedSenders+1) }
func seedChannel(i int) string {
	return fmt.Sprintf("SEED-%d", i%seedChannels)
}

func newSeedCmd() *cobra.Command {
	var dsn string
	var n int
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Fill a store directly with n processed POSTs and a 1,000-element aggregate",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := store.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer st.Close()
			t0 := time.Now()
			if err := seedMessages(ctx, st, n); err != nil {
				return err
			}
			if err := seedAggregate(ctx, st); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), `{"messages":%d,"seconds":%.1f}`+"\n", n, time.Since(t0).Seconds())
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "db", "", "store DSN (SQLite path or postgres://…)")
	cmd.Flags().IntVarP(&n, "messages", "n", 1_000_000, "messages to insert")
	cmd.MarkFlagRequired("db")
	return cmd
}

func seedMessages(ctx context.Context, st store.Store, n int) error {
	base := 1_600_000_000.0
	now := time.Now()
	for start := 0; start < n; start += seedBatch {
		end := min(start+seedBatch, n)
		err := st.Update(ctx, func(tx store.Tx) error {
			for i := start; i < end; i++ {
				sender := seedSender(i)
				t := base + float64(i)*0.25
				content := fmt.Sprintf(`{"address":%q,"time":%s,"type":"seed","content":{"i":%d,"body":"seeded message"}}`,
					sender, message.TimeFromSeconds(t).String(), i)
				m := &store.Message{
					Message: message.Message{
						Chain: message.ChainETH, Sender: sender, Type: message.TypePost, Channel: seedChannel(i),
						Time: message.TimeFromSeconds(t), ItemType: message.ItemInline, ItemContent: content,
						ItemHash: message.HashContent([]byte(content)), Signature: "0x" + strings.Repeat("0", 130),
					},
					Content:       json.RawMessage(content),
					Size:          int64(len(content)),
					Owner:         sender,
					ContentType:   "seed",
					Status:        message.StatusProcessed,
					ReceptionTime: now,
				}
				if err := tx.InsertMessage(ctx, m); err != nil {
					return fmt.Errorf("insert message %d: %w", i, err)
				}
				if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: m.ItemHash, Status: message.StatusProcessed, ReceptionTime: now}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func seedAggregate(ctx context.Context, st store.Store) error {
	merged := map[string]int{}
	return st.Update(ctx, func(tx store.Tx) error {
		var first, last string
		for i := range aggElements {
			h := sha256.Sum256(fmt.Appendf(nil, "agg element %d", i))
			hash := hex.EncodeToString(h[:])
			key := fmt.Sprintf("field%04d", i)
			merged[key] = i
			el := &store.AggregateElement{ItemHash: hash, Key: aggKey, Owner: aggOwner,
				Content: json.RawMessage(fmt.Sprintf(`{%q:%d}`, key, i)), CreationTime: 1_600_000_000 + float64(i)}
			if err := tx.InsertAggregateElement(ctx, el); err != nil {
				return err
			}
			if i == 0 {
				first = hash
			}
			last = hash
		}
		content, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		return tx.PutAggregate(ctx, &store.Aggregate{Key: aggKey, Owner: aggOwner, Content: content,
			CreationTime: 1_600_000_000, LastUpdateTime: 1_600_000_000 + aggElements - 1,
			OriginalHash: first, LastRevisionHash: last})
	})
}

func newQueryCmd() *cobra.Command {
	var base string
	var iters int
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Measure messages.json (page of 20) and aggregate latencies over HTTP",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cases := []struct{ name, path string }{
				{"messages_default", "/api/v0/messages.json?pagination=20&page=1"},
				{"messages_sender", "/api/v0/messages.json?pagination=20&addresses=" + seedSender(7)},
				{"messages_channel", "/api/v0/messages.json?pagination=20&channels=" + seedChannel(3)},
				{"messages_type", "/api/v0/messages.json?pagination=20&msgTypes=POST"},
				{"messages_page_50", "/api/v0/messages.json?pagination=20&page=50"},
				{"aggregate_1000", "/api/v0/aggregates/" + aggOwner + ".json?keys=" + aggKey},
			}
			client := &http.Client{Timeout: 30 * time.Second}
			out := map[string]any{}
			for _, c := range cases {
				lat, err := measure(ctx, client, base+c.path, iters)
				if err != nil {
					return fmt.Errorf("%s: %w", c.name, err)
				}
				out[c.name] = map[string]float64{"p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": pct(lat, 100)}
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
		},
	}
	cmd.Flags().StringVar(&base, "url", "http://127.0.0.1:4024", "node base URL")
	cmd.Flags().IntVar(&iters, "iterations", 2000, "requests per case")
	return cmd
}

func measure(ctx context.Context, c *http.Client, u string, n int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n+n/10; i++ { // the first tenth warms caches and is not counted
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		t := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
		}
		if i >= n/10 {
			lat = append(lat, d)
		}
	}
	return lat, nil
}

func pct(lat []time.Duration, p int) float64 {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return float64(s[i]) / float64(time.Millisecond)
}
