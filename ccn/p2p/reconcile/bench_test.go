package reconcile

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// Run: go test -run '^$' -bench . -benchtime 3x ./ccn/p2p/reconcile/
// (BenchmarkSetAdd with -benchtime 1000000x inserts 1M keys into one set.)

func BenchmarkSetAdd(b *testing.B) {
	keys := genKeys(1, 1_000_000, false)
	s := NewSet()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(keys) == 0 && i > 0 {
			b.StopTimer()
			s = NewSet()
			b.StartTimer()
		}
		s.Add(keys[i%len(keys)])
	}
}

func BenchmarkRangeFingerprint(b *testing.B) {
	keys := genKeys(2, 1_000_000, false)
	s := setOf(b, keys)
	r := rand.New(rand.NewPCG(3, 3))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		lo, hi := keys[r.IntN(len(keys))], keys[r.IntN(len(keys))]
		if lo.Compare(hi) > 0 {
			lo, hi = hi, lo
		}
		s.RangeFingerprint(lo, hi)
	}
}

func BenchmarkSession(b *testing.B) {
	cases := []struct {
		name                 string
		common, aOnly, bOnly int
	}{
		{"1M_vs_1M_10_differences", 1_000_000 - 5, 5, 5},
		{"100k_vs_100k_10k_differences", 95_000, 5_000, 5_000},
		{"0_vs_100k", 0, 0, 100_000},
		{"equal_1M", 1_000_000, 0, 0},
	}
	for i, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			keys := genKeys(uint64(10+i), tc.common+tc.aOnly+tc.bOnly, false)
			common, aOnly, bOnly := keys[:tc.common], keys[tc.common:tc.common+tc.aOnly], keys[tc.common+tc.aOnly:]
			sa, sb := setOf(b, common, aOnly), setOf(b, common, bOnly)
			cfg := DefaultConfig()
			var last Diff
			b.ResetTimer()
			for range b.N {
				last = benchSession(b, sa, sb, cfg)
			}
			b.StopTimer()
			if len(last.Need) != tc.bOnly || len(last.Have) != tc.aOnly {
				b.Fatalf("need %d have %d, want %d %d", len(last.Need), len(last.Have), tc.bOnly, tc.aOnly)
			}
			b.ReportMetric(float64(last.Rounds), "rounds")
			b.ReportMetric(float64(last.BytesSent), "sent-B")
			b.ReportMetric(float64(last.BytesRecv), "recv-B")
		})
	}
}

func benchSession(b *testing.B, sa, sb *Set, cfg Config) Diff {
	b.Helper()
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := Respond(ctx, cb, sb, cfg)
		errc <- err
	}()
	d, err := Initiate(ctx, ca, sa, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return d
}
