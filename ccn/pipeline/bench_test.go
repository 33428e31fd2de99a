package pipeline

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// benchMessages caches signed messages across benchmark runs: signing is not
// what is measured.
var benchMessages struct {
	sync.Mutex
	posts []*msg
	mixed []*msg
}

// benchPosts returns n distinct signed POSTs.
func benchPosts(b *testing.B, n int) []*msg {
	b.Helper()
	benchMessages.Lock()
	defer benchMessages.Unlock()
	signers := []message.Signer{account(b, "bench0"), account(b, "bench1"), account(b, "bench2"), account(b, "bench3")}
	for i := len(benchMessages.posts); i < n; i++ {
		benchMessages.posts = append(benchMessages.posts, build(b, "post", signers[i%len(signers)], message.TypePost,
			post("bench", fmt.Sprintf(`{"i":%d,"body":"a typical short post body","tags":["bench"]}`, i)), "BENCH", float64(i)/1000))
	}
	return benchMessages.posts[:n]
}

// benchMixed returns n distinct messages of a typical mix: 60% posts, 10%
// amends of them, 30% aggregate updates of a few keys, in time order.
func benchMixed(b *testing.B, n int) []*msg {
	b.Helper()
	benchMessages.Lock()
	defer benchMessages.Unlock()
	signers := []message.Signer{account(b, "bench0"), account(b, "bench1"), account(b, "bench2"), account(b, "bench3")}
	ms := benchMessages.mixed
	for i := len(ms); i < n; i++ {
		s := signers[i%len(signers)]
		at := float64(i) / 1000
		switch r := i % 10; {
		case r < 6:
			ms = append(ms, build(b, "post", s, message.TypePost, post("bench", fmt.Sprintf(`{"i":%d}`, i)), "BENCH", at))
		case r == 6:
			// amend the post made 6 messages ago, by the same signer
			p := ms[i-6]
			ms = append(ms, build(b, "amend", signers[(i-6)%len(signers)], message.TypePost,
				amend(p.hash, fmt.Sprintf(`{"i":%d}`, i)), "BENCH", at))
		default:
			ms = append(ms, build(b, "agg", s, message.TypeAggregate,
				aggregate(fmt.Sprintf("key%d", i%5), fmt.Sprintf(`{"f%d":%d}`, i%13, i)), "BENCH", at))
		}
	}
	benchMessages.mixed = ms
	return ms[:n]
}

// BenchmarkSubmit measures admission of new messages: parse, signature
// verification and the durable enqueue, one caller at a time.
func BenchmarkSubmit(b *testing.B) {
	ms := benchPosts(b, b.N)
	e := newEnv(b, envOpts{})
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := e.p.Submit(e.ctx, ms[i].raw, SubmitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkSubmitParallel measures admission from concurrent callers (API
// handlers): verification runs on every core and enqueues share commits.
func BenchmarkSubmitParallel(b *testing.B) {
	ms := benchPosts(b, b.N)
	e := newEnv(b, envOpts{})
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := ms[next.Add(1)-1]
			if _, err := e.p.Submit(e.ctx, m.raw, SubmitOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkProcess measures processing throughput: b.N queued messages (a
// mix of posts, amends and aggregate updates) applied in batches.
func BenchmarkProcess(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ms := benchMixed(b, b.N)
			e := newEnv(b, envOpts{cfg: Config{BatchSize: batch}})
			for _, m := range ms {
				if _, err := e.p.Submit(e.ctx, m.raw, SubmitOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if n := e.drain(); n != b.N {
				b.Fatalf("processed %d of %d", n, b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.StopTimer()
			if n, _ := e.store.PendingCount(e.ctx); n != 0 {
				b.Fatalf("%d left in the queue", n)
			}
		})
	}
}
