package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// BenchmarkProcessWrites measures the writes processing makes for a POST
// (queue row delete, message with its tags and counters, status, post), in
// transactions of 256 messages, through the single-row methods ("single")
// and the bulk methods the pipeline uses ("bulk"). One op is one message.
func BenchmarkProcessWrites(b *testing.B) {
	benchBackends(b, func(b *testing.B, backend string) {
		for _, mode := range []string{"single", "bulk"} {
			b.Run(mode, func(b *testing.B) {
				db := openBench(b, backend)
				ctx := context.Background()
				ps := make([]*store.Pending, b.N)
				for i := range ps {
					ps[i] = benchPending(int64(i))
				}
				for start := 0; start < len(ps); start += 1024 {
					if _, err := db.Enqueue(ctx, ps[start:min(start+1024, len(ps))]); err != nil {
						b.Fatal(err)
					}
				}
				const batch = 256
				b.ResetTimer()
				start := time.Now()
				for lo := 0; lo < b.N; lo += batch {
					chunk := ps[lo:min(lo+batch, b.N)]
					if err := db.Update(ctx, func(tx store.Tx) error { return processWrites(ctx, tx, chunk, mode == "bulk") }); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	})
}

// processWrites makes the processing writes of a batch of queued messages.
func processWrites(ctx context.Context, tx store.Tx, ps []*store.Pending, bulk bool) error {
	var (
		ids   []int64
		ms    []*store.Message
		sts   []store.StatusRecord
		posts []*store.Post
	)
	for _, p := range ps {
		m := &store.Message{Message: p.Message, Content: []byte(p.Message.ItemContent), Owner: p.Message.Sender,
			ContentType: "bench", Tags: []string{"bench"}, Status: message.StatusProcessed, ReceptionTime: p.ReceptionTime}
		ids = append(ids, p.ID)
		ms = append(ms, m)
		sts = append(sts, store.StatusRecord{ItemHash: m.ItemHash, Status: message.StatusProcessed, ReceptionTime: p.ReceptionTime})
		posts = append(posts, &store.Post{ItemHash: m.ItemHash, Owner: m.Owner, Type: "bench", Channel: m.Channel,
			Content: []byte(`{"body":"bench"}`), CreationTime: m.Time.Seconds(), Tags: m.Tags})
	}
	if bulk {
		if _, err := tx.GetStatuses(ctx, hashesOf(ms)); err != nil {
			return err
		}
		if err := tx.DeletePendings(ctx, ids); err != nil {
			return err
		}
		if err := tx.InsertMessages(ctx, ms); err != nil {
			return err
		}
		if err := tx.SetStatuses(ctx, sts); err != nil {
			return err
		}
		return tx.InsertPosts(ctx, posts)
	}
	for i := range ms {
		if _, err := tx.GetStatus(ctx, ms[i].ItemHash); err != nil {
			return err
		}
		if err := tx.DeletePending(ctx, ids[i]); err != nil {
			return err
		}
		if err := tx.InsertMessage(ctx, ms[i]); err != nil {
			return fmt.Errorf("insert %d: %w", i, err)
		}
		if err := tx.SetStatus(ctx, sts[i]); err != nil {
			return err
		}
		if err := tx.InsertPost(ctx, posts[i]); err != nil {
			return err
		}
	}
	return nil
}

func hashesOf(ms []*store.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ItemHash
	}
	return out
}
