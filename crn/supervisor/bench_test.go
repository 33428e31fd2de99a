package supervisor_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// Run with: go test -run '^$' -bench . -benchtime 100x ./crn/supervisor (root).

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func reportLatency(b *testing.B, prefix string, lat []time.Duration) {
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.95).Microseconds())/1000, prefix+"p95-ms")
}

// fetch GETs url and reads the whole answer.
func fetch(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
}

// Cold start to the first response through /vm/{hash}/: resolve, sandbox,
// aleph-init's ready signal, configuration, program start, request. The
// files are in the cache (as for any program run before on the node).
func BenchmarkColdStart(b *testing.B) {
	for _, backend := range backendNames {
		b.Run(backend, func(b *testing.B) {
			h := newHarness(b, onBackend(b, backend))
			b.Run("squashfs", func(b *testing.B) {
				coldStart(b, h, h.submit(message.TypeProgram, h.program(h.upload(h.goSquashfs("b"), ""), message.EncodingSquashfs, "server")))
			})
			b.Run("zip", func(b *testing.B) {
				coldStart(b, h, h.submit(message.TypeProgram, h.program(h.upload(h.goZip("b"), ""), message.EncodingZip, "server")))
			})
		})
	}
}

func coldStart(b *testing.B, h *harness, prog string) {
	url := h.api.URL + "/vm/" + prog + "/"
	c := &http.Client{}
	fetch(b, c, url)
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if _, err := h.pool.Stop(h.ctx, prog); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		fetch(b, c, url)
		lat = append(lat, time.Since(t0))
	}
	reportLatency(b, "", lat)
}

// Warm requests: the same server called directly on the host, then through
// the compute node; the difference is the node's overhead.
func BenchmarkWarmRequest(b *testing.B) {
	for _, backend := range backendNames {
		b.Run(backend, func(b *testing.B) { warmRequest(b, newHarness(b, onBackend(b, backend))) })
	}
}

func warmRequest(b *testing.B, h *harness) {
	prog := h.submit(message.TypeProgram, h.program(h.upload(h.goZip("b"), ""), message.EncodingZip, "server"))
	direct := startDirect(b, h.art.goserver)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	viaNode := h.api.URL + "/vm/" + prog + "/"
	fetch(b, c, viaNode)
	for range 100 {
		fetch(b, c, viaNode)
		fetch(b, c, direct)
	}
	var dl, nl []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		fetch(b, c, direct)
		t1 := time.Now()
		fetch(b, c, viaNode)
		dl, nl = append(dl, t1.Sub(t0)), append(nl, time.Since(t1))
	}
	reportLatency(b, "direct-", dl)
	reportLatency(b, "node-", nl)
	b.ReportMetric(float64((percentile(nl, 0.5)-percentile(dl, 0.5)).Microseconds())/1000, "overhead-p50-ms")
}

// startDirect runs the test server on the host on a free port.
func startDirect(b *testing.B, bin string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			b.Fatal("direct server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Warm throughput on one program, with concurrent clients.
func BenchmarkWarmThroughput(b *testing.B) {
	h := newHarness(b)
	pc := h.program(h.upload(h.goZip("b"), ""), message.EncodingZip, "server")
	pc.Resources.VCPUs = runtime.NumCPU()
	prog := h.submit(message.TypeProgram, pc)
	url := h.api.URL + "/vm/" + prog + "/"
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	fetch(b, c, url)
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			fetch(b, c, url)
			n.Add(1)
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(t0).Seconds(), "req/s")
}

// Memory of idle warm VMs: the qemu processes' resident memory per VM
// (each guest has the program's 128 MiB plus the kernel's overhead).
func BenchmarkIdleVMs(b *testing.B) {
	h := newHarness(b, onBackend(b, "qemu"))
	const n = 8
	code := h.upload(h.goZip("b"), "")
	before := procRSS("qemu-system-x86")
	var progs []string
	for i := range n {
		pc := h.program(code, message.EncodingZip, "server")
		pc.Variables = map[string]string{"N": strconv.Itoa(i)}
		progs = append(progs, h.submit(message.TypeProgram, pc))
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range progs {
			if status, body, _ := h.get(p, "/"); status != 200 {
				b.Fatalf("%d %s", status, body)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(procRSS("qemu-system-x86")-before)/n/(1<<20), "qemu-rss-MiB/vm")
}

// Memory of 100 idle warm programs: the containers' cgroup usage and the
// host-side runc processes, per program.
func BenchmarkIdlePrograms(b *testing.B) {
	b.Run("squashfs", func(b *testing.B) {
		h := newHarness(b)
		idlePrograms(b, h, h.upload(h.goSquashfs("b"), ""), message.EncodingSquashfs)
	})
	b.Run("zip", func(b *testing.B) {
		h := newHarness(b)
		idlePrograms(b, h, h.upload(h.goZip("b"), ""), message.EncodingZip)
	})
}

func idlePrograms(b *testing.B, h *harness, code, enc string) {
	const n = 100
	cg := "/sys/fs/cgroup/memory/aleph-supervisor-test/memory.usage_in_bytes"
	before := readInt(cg)
	var progs []string
	for i := range n {
		pc := h.program(code, enc, "server")
		pc.Variables = map[string]string{"N": strconv.Itoa(i)}
		progs = append(progs, h.submit(message.TypeProgram, pc))
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range progs {
			if status, body, _ := h.get(p, "/"); status != 200 {
				b.Fatalf("%d %s", status, body)
			}
		}
	}
	b.StopTimer()
	cgroup := readInt(cg) - before
	rss := runcRSS()
	b.ReportMetric(float64(cgroup)/n/(1<<20), "cgroup-MiB/program")
	b.ReportMetric(float64(rss)/n/(1<<20), "runc-rss-MiB/program")
}

func readInt(p string) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// runcRSS sums the resident memory of the host's runc processes (each
// running container keeps its `runc run` parent).
func runcRSS() int64 { return procRSS("runc") }

// procRSS sums the resident memory of the processes named comm.
func procRSS(comm string) int64 {
	var total int64
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		c, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(c)) != comm {
			continue
		}
		status, _ := os.ReadFile(filepath.Join(d, "status"))
		for _, l := range bytes.Split(status, []byte("\n")) {
			if f := strings.Fields(string(l)); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}
