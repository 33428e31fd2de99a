// Package kubotest starts a real kubo (go-ipfs) daemon for tests: offline, on
// random loopback ports, with a throwaway repository. The binary comes from
// ALEPH_TEST_KUBO (scripts/kubo.sh builds it); without it tests skip, except
// under CI, where they fail.
package kubotest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start runs `ipfs daemon --offline` and returns its RPC API base URL
// ("http://127.0.0.1:port"). The daemon is stopped when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	return start(t, false)
}

// StartOnline runs the daemon online: its swarm listens on a random loopback
// port, with no bootstrap peers and no DHT, so bitswap with the peers it is
// told to connect to is all it has.
func StartOnline(t testing.TB) string {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, online bool) string {
	t.Helper()
	bin := os.Getenv("ALEPH_TEST_KUBO")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("ALEPH_TEST_KUBO is not set under CI (scripts/kubo.sh builds kubo)")
		}
		t.Skip("ALEPH_TEST_KUBO not set: no kubo binary (build one with scripts/kubo.sh)")
	}
	repo := filepath.Join(t.TempDir(), "ipfs")
	env := append(os.Environ(), "IPFS_PATH="+repo)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ipfs %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The test profile listens on random loopback ports and has no bootstrap peers.
	run("init", "--profile=test", "--empty-repo")
	run("config", "Addresses.Gateway", "/ip4/127.0.0.1/tcp/0")
	run("config", "Addresses.API", "/ip4/127.0.0.1/tcp/0")
	args := []string{"daemon", "--offline"}
	if online {
		run("config", "--json", "Addresses.Swarm", `["/ip4/127.0.0.1/tcp/0"]`)
		run("config", "Routing.Type", "none")
		args = args[:1]
	}

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kubo: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	apiCh := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		var api string
		for sc.Scan() {
			line := sc.Text()
			// "RPC API server listening on /ip4/127.0.0.1/tcp/41234"
			if i := strings.Index(line, "API server listening on /ip4/"); i >= 0 && api == "" {
				parts := strings.Split(line[i+len("API server listening on "):], "/")
				if len(parts) >= 5 {
					api = "http://" + parts[2] + ":" + parts[4]
				}
			}
			if strings.Contains(line, "Daemon is ready") && api != "" {
				apiCh <- api
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case api := <-apiCh:
		return api
	case <-done:
		t.Fatal("kubo daemon exited before it was ready")
	case <-ctx.Done():
		t.Fatal("kubo daemon not ready within 60 s")
	}
	return ""
}
