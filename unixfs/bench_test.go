package unixfs

import (
	"runtime"
	"testing"
	"time"
)

const benchSize = 256 << 20

// BenchmarkSum256MiB sums 256 MiB of generated input (never held in memory) per
// profile. Run with -cpu 1. peak-heap-MiB is the largest HeapInuse sampled every
// 16 MiB read.
func BenchmarkSum256MiB(b *testing.B) {
	for _, p := range Profiles() {
		b.Run(p.Name, func(b *testing.B) {
			b.SetBytes(benchSize)
			var peak uint64
			cpu0 := cpuTime()
			for b.Loop() {
				sr := &sampler{r: newPattern(benchSize), every: 16 << 20}
				if _, err := Sum(sr, p); err != nil {
					b.Fatal(err)
				}
				peak = max(peak, sr.peak)
			}
			reportCPU(b, cpuTime()-cpu0)
			b.ReportMetric(mib(peak), "peak-heap-MiB")
		})
	}
}

// BenchmarkVerify256MiB verifies 256 MiB against a CIDv1, which runs the KuboV1 and
// V1_2025 builders over one read of the input (two goroutines).
func BenchmarkVerify256MiB(b *testing.B) {
	want, err := Sum(newPattern(benchSize), V1_2025)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	var peak uint64
	cpu0 := cpuTime()
	for b.Loop() {
		sr := &sampler{r: newPattern(benchSize), every: 16 << 20}
		if err := Verify(sr, want.String()); err != nil {
			b.Fatal(err)
		}
		peak = max(peak, sr.peak)
	}
	reportCPU(b, cpuTime()-cpu0)
	b.ReportMetric(mib(peak), "peak-heap-MiB")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
}

// reportCPU adds the CPU time per op and the throughput per CPU-second, which stay
// meaningful when other processes share the cores (wall-clock ns/op does not).
func reportCPU(b *testing.B, cpu time.Duration) {
	b.Helper()
	if cpu <= 0 || b.N == 0 {
		return
	}
	perOp := float64(cpu.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp, "cpu-ns/op")
	b.ReportMetric(float64(benchSize)/(1<<20)/(perOp/1e9), "MiB/cpu-s")
}
