package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/internal/loadgen"
)

// buildAlephd compiles this command into a temporary directory.
func buildAlephd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "alephd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a subprocess's output; exec writes from its own goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// alephdProc is a running `alephd dev` subprocess.
type alephdProc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit error, valid after done
}

func (p *alephdProc) wait() error {
	<-p.done
	return p.err
}

func startAlephd(t *testing.T, bin, dataDir, addr string) *alephdProc {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir, "--listen", addr, "--log-level", "warn")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &alephdProc{cmd: cmd, url: "http://" + addr, logs: logs, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // no-op once exited
		p.wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(p.url + "/api/v0/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("alephd exited before serving: %v\n%s", p.err, logs)
		case <-ctx.Done():
			t.Fatalf("alephd did not serve within 60 s\n%s", logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestKill9DuringIngestLosesNothing submits 10,000 signed messages to a real alephd,
// kills it with SIGKILL part-way, restarts it on the same data directory, and checks
// that every message that was acknowledged (200 or 202) ends up processed.
func TestKill9DuringIngestLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs alephd; skipped with -short")
	}
	const total, killAfter = 10_000, 4_000
	bin := buildAlephd(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	posts, err := loadgen.Posts(total, 50, "DURABILITY", false)
	if err != nil {
		t.Fatal(err)
	}
	p := startAlephd(t, bin, dataDir, addr)

	var acked sync.Map // item hash → true
	var nAcked atomic.Int64
	var next atomic.Int64
	killed := make(chan struct{})
	var killOnce sync.Once
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				resp, err := client.Post(p.url+"/api/v0/messages", "application/json", bytes.NewReader(posts[i].Body))
				if err != nil {
					return // the node is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
					acked.Store(posts[i].Message.ItemHash, true)
					if nAcked.Add(1) == killAfter {
						killOnce.Do(func() {
							p.cmd.Process.Signal(syscall.SIGKILL)
							close(killed)
						})
					}
				} else {
					t.Errorf("message %d: HTTP %d", i, resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("ingest finished (%d acknowledged) before the kill point", nAcked.Load())
	}
	p.wait()
	var hashes []string
	acked.Range(func(k, _ any) bool { hashes = append(hashes, k.(string)); return true })
	t.Logf("killed alephd after %d acknowledged messages (%d submissions started)", len(hashes), next.Load())

	p2 := startAlephd(t, bin, dataDir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	missing := waitAllProcessed(ctx, t, client, p2.url, hashes)
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged messages are not processed after restart, e.g. %v\n%s", len(missing), missing[:min(5, len(missing))], p2.logs)
	}
	// A clean stop after the restart.
	p2.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p2.done:
		if p2.err != nil {
			t.Errorf("alephd did not exit cleanly on SIGINT: %v\n%s", p2.err, p2.logs)
		}
	case <-time.After(30 * time.Second):
		t.Error("alephd did not stop within 30 s of SIGINT")
	}
}

// waitAllProcessed polls each hash's status until all are processed or ctx ends,
// and returns the hashes that are not.
func waitAllProcessed(ctx context.Context, t *testing.T, c *http.Client, base string, hashes []string) []string {
	t.Helper()
	left := hashes
	for {
		var still []string
		for _, h := range left {
			st, err := status(ctx, c, base, h)
			if err != nil {
				t.Fatalf("status %s: %v", h, err)
			}
			if st != "processed" {
				still = append(still, h)
			}
		}
		if len(still) == 0 {
			return nil
		}
		left = still
		select {
		case <-ctx.Done():
			return left
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func status(ctx context.Context, c *http.Client, base, hash string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v0/messages/"+hash+"/status", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "unknown", nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var s struct {
		Status string `json:"status"`
	}
	return s.Status, json.NewDecoder(resp.Body).Decode(&s)
}

// TestDevPrintsURLAndAccounts checks what `alephd dev` tells a developer.
func TestDevPrintsURLAndAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs alephd; skipped with -short")
	}
	bin := buildAlephd(t)
	addr := freeAddr(t)
	p := startAlephd(t, bin, t.TempDir(), addr)
	p.cmd.Process.Signal(os.Interrupt)
	if err := p.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs)
	}
	out := p.logs.String()
	for _, want := range []string{"http://" + addr, "ETH", "SOL", "key 0x"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	accounts := 0
	for sc.Scan() {
		if strings.Contains(sc.Text(), "(") && strings.Contains(sc.Text(), ") ") {
			accounts++
		}
	}
	if accounts < 6 {
		t.Errorf("%d dev accounts printed, want 6", accounts)
	}
}
