package network

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashHelperEnv makes the test binary act as a node that prepares networks
// and waits to be killed (see TestCrashLeavesNothing).
const crashHelperEnv = "ALEPH_NETWORK_CRASH_HELPER"

// helperConfig is the part of Config the helper gets through the environment.
type helperConfig struct {
	StateDir, Uplink, Table, IfPrefix string
	Pool                              netip.Prefix
	FirstIndex                        int
	DNS                               []netip.Addr
}

// helperReport is the helper's one line on stdout once everything is up.
type helperReport struct {
	Links, NSPaths []string
	Err            string
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(crashHelperEnv); cfg != "" {
		os.Exit(crashHelper(cfg))
	}
	os.Exit(m.Run())
}

// crashHelper prepares two networks of each mode, reports them, then blocks
// until stdin closes (so it never outlives the test) or it is killed.
func crashHelper(raw string) int {
	var hc helperConfig
	var rep helperReport
	enc := json.NewEncoder(os.Stdout)
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		rep.Err = err.Error()
		_ = enc.Encode(rep)
		return 2
	}
	m, err := New(Config{StateDir: hc.StateDir, Uplink: hc.Uplink, Table: hc.Table, IfPrefix: hc.IfPrefix,
		Pool: hc.Pool, FirstIndex: hc.FirstIndex, DNS: hc.DNS})
	if err != nil {
		rep.Err = err.Error()
		_ = enc.Encode(rep)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, mode := range []Mode{ModeNetns, ModeTap, ModeNetns, ModeTap} {
		n, err := m.Prepare(ctx, fmt.Sprintf("crash-%d", i), mode)
		if err != nil {
			rep.Err = err.Error()
			_ = enc.Encode(rep)
			return 2
		}
		rep.Links = append(rep.Links, n.Interface)
		if n.NSPath != "" {
			rep.NSPaths = append(rep.NSPaths, n.NSPath)
		}
	}
	_ = enc.Encode(rep)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// A node SIGKILLed with networks of both modes prepared leaves taps that
// vanish on their own and veths, namespaces and a table that the next
// node's Cleanup removes entirely.
func TestCrashLeavesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotCrash)
	raw, err := json.Marshal(helperConfig{StateDir: e.cfg.StateDir, Uplink: e.cfg.Uplink, Table: e.cfg.Table,
		IfPrefix: e.cfg.IfPrefix, Pool: e.cfg.Pool, FirstIndex: e.cfg.FirstIndex, DNS: e.cfg.DNS})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	if f, ok := stdout.(*os.File); ok {
		_ = f.SetReadDeadline(time.Now().Add(45 * time.Second))
	}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("helper gave no report: %v", err)
	}
	var rep helperReport
	if err := json.Unmarshal(line, &rep); err != nil || rep.Err != "" || len(rep.Links) != 4 || len(rep.NSPaths) != 2 {
		t.Fatalf("helper report %q: %v", line, err)
	}
	for _, l := range rep.Links {
		if _, err := net.InterfaceByName(l); err != nil {
			t.Fatalf("helper's link %s missing before the crash: %v", l, err)
		}
	}
	if !tableExists(t, e.cfg.Table) {
		t.Fatal("helper's table missing before the crash")
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	waited = true
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", err)
	}
	// Taps die with the process that held them; veths and namespaces stay.
	for _, l := range rep.Links {
		_, err := net.InterfaceByName(l)
		isTap := l == rep.Links[1] || l == rep.Links[3]
		if isTap && err == nil {
			t.Errorf("tap %s survived the crash", l)
		}
		if !isTap && err != nil {
			t.Errorf("veth %s vanished on its own (test proves nothing): %v", l, err)
		}
	}
	for _, p := range rep.NSPaths {
		if mounts, _ := os.ReadFile("/proc/self/mountinfo"); !strings.Contains(string(mounts), p) {
			t.Errorf("netns %s not mounted after the crash (test proves nothing)", p)
		}
	}

	if err := e.newManager(t).Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup after crash: %v", err)
	}
	assertNothingLeft(t, e.cfg)
}
