package filestore

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/unixfs"
)

// benchSize is 256 MiB; FILESTORE_BENCH_MIB overrides it (to check, say, that
// a 1 GiB upload keeps the same peak heap).
var benchSize = func() int64 {
	if n, err := strconv.Atoi(os.Getenv("FILESTORE_BENCH_MIB")); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 256 << 20
}()

// uniqueReader yields n bytes in which every 64 KiB differs from every other
// (a random 1 MiB base, stamped with the seed and offset), so neither chunk
// dedup nor compression flatters a benchmark, at memcpy cost.
type uniqueReader struct {
	n, off int64
	seed   uint64
	base   []byte
	blk    []byte
	blkOff int64 // offset of blk in the stream; -1: none
}

func newUniqueReader(n int64, seed uint64) *uniqueReader {
	return &uniqueReader{n: n, seed: seed, base: randBytes(99, 1<<20), blk: make([]byte, 1<<20), blkOff: -1}
}

func (u *uniqueReader) Read(p []byte) (int, error) {
	if u.off >= u.n {
		return 0, io.EOF
	}
	start := u.off &^ (1<<20 - 1)
	if start != u.blkOff {
		copy(u.blk, u.base)
		for i := 0; i < len(u.blk); i += 64 << 10 {
			binary.LittleEndian.PutUint64(u.blk[i:], u.seed)
			binary.LittleEndian.PutUint64(u.blk[i+8:], uint64(start)+uint64(i))
		}
		u.blkOff = start
	}
	m := copy(p, u.blk[u.off-start:])
	if rem := u.n - u.off; int64(m) > rem {
		m = int(rem)
	}
	u.off += int64(m)
	return m, nil
}

// heapPeak samples the heap in use while it runs and reports the peak above
// the level at start, as "peak-heap-MiB", and the throughput per CPU-second
// of the process, "MB/cpu-s", which a shared machine disturbs less than wall
// time.
type heapPeak struct {
	stop chan struct{}
	done sync.WaitGroup
	base uint64
	peak uint64
	cpu0 time.Duration
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapPeak{stop: make(chan struct{}), base: ms.HeapInuse, cpu0: cpuTime()}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > h.base && ms.HeapInuse-h.base > h.peak {
					h.peak = ms.HeapInuse - h.base
				}
			}
		}
	}()
	return h
}

// report ends the sampling; bytes is what one op moves.
func (h *heapPeak) report(b *testing.B, bytes int64) {
	cpu := cpuTime() - h.cpu0
	close(h.stop)
	h.done.Wait()
	b.ReportMetric(float64(h.peak)/(1<<20), "peak-heap-MiB")
	if cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

var syncModes = []struct {
	name   string
	noSync bool
}{{"sync", false}, {"nosync", true}}

func BenchmarkPutStorage256MiB(b *testing.B) {
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			s := newStore(b, Options{NoSync: m.noSync})
			ctx := context.Background()
			b.SetBytes(benchSize)
			b.ReportAllocs()
			hp := startHeapPeak()
			for i := 0; b.Loop(); i++ {
				// Distinct content each time, kept (a delete would cost in the
				// next round: freeing blocks is work for the filesystem too).
				if _, err := s.PutStorage(ctx, newUniqueReader(benchSize, uint64(i)), 0, ""); err != nil {
					b.Fatal(err)
				}
			}
			hp.report(b, benchSize)
		})
	}
}

func BenchmarkAddUnixFS256MiB(b *testing.B) {
	for _, m := range syncModes {
		b.Run(m.name, func(b *testing.B) {
			s := newStore(b, Options{NoSync: m.noSync})
			ctx := context.Background()
			b.SetBytes(benchSize)
			b.ReportAllocs()
			hp := startHeapPeak()
			for i := 0; b.Loop(); i++ {
				if _, err := s.AddUnixFS(ctx, newUniqueReader(benchSize, uint64(i)), 0, "", &unixfs.KuboV0); err != nil {
					b.Fatal(err)
				}
			}
			hp.report(b, benchSize)
		})
	}
}

// BenchmarkOpenRead reads a 256 MiB file whole (from the page cache, as a hot
// file is served): "writeto" with io.Copy (which uses the File's WriteTo),
// "read32k" through Read calls of 32 KiB, as net/http's ServeContent copies
// (io.CopyN hides WriteTo).
func BenchmarkOpenRead(b *testing.B) {
	adds := []struct {
		name string
		add  func(s *Store) (Info, error)
	}{
		{"storage", func(s *Store) (Info, error) {
			return s.PutStorage(context.Background(), newUniqueReader(benchSize, 1), 0, "")
		}},
		{"ipfs-kubo-v0", func(s *Store) (Info, error) {
			return s.AddUnixFS(context.Background(), newUniqueReader(benchSize, 1), 0, "", &unixfs.KuboV0)
		}},
		{"ipfs-v1-2025", func(s *Store) (Info, error) {
			return s.AddUnixFS(context.Background(), newUniqueReader(benchSize, 1), 0, "", &unixfs.V1_2025)
		}},
	}
	copies := []struct {
		name string
		copy func(w io.Writer, f File) (int64, error)
	}{
		{"writeto", func(w io.Writer, f File) (int64, error) { return io.Copy(w, f) }},
		{"read32k", func(w io.Writer, f File) (int64, error) {
			return io.CopyBuffer(w, io.LimitReader(f, benchSize), make([]byte, 32<<10))
		}},
	}
	for _, a := range adds {
		s := newStore(b, Options{NoSync: true})
		info, err := a.add(s)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range copies {
			b.Run(a.name+"/"+c.name, func(b *testing.B) {
				ctx := context.Background()
				b.SetBytes(benchSize)
				b.ReportAllocs()
				hp := startHeapPeak()
				for b.Loop() {
					f, err := s.Open(ctx, info.Hash)
					if err != nil {
						b.Fatal(err)
					}
					n, err := c.copy(struct{ io.Writer }{io.Discard}, f)
					f.Close()
					if err != nil || n != benchSize {
						b.Fatalf("read %d, %v", n, err)
					}
				}
				hp.report(b, benchSize)
			})
		}
	}
}
