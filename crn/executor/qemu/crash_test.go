package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/network"
	alephrt "github.com/go-aleph/go-aleph/crn/runtime"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// artefacts: aleph-init and a busybox runtime, built once per test binary.
var (
	artOnce           sync.Once
	artInit, artImage string
	artErr            error
	crashChildEnv     = "ALEPH_QEMU_CRASH_CHILD"
	crashNetCfg       = func(dir string) network.Config {
		return network.Config{StateDir: dir, Pool: netip.MustParsePrefix("10.195.0.0/20"), FirstIndex: 1,
			Uplink: "qcup0", Table: "alqc_net", IfPrefix: "alqc"}
	}
)

func vmArtefacts(t *testing.T) (init, image string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("needs qemu-system-x86_64")
	}
	artOnce.Do(func() {
		dir, err := os.MkdirTemp("", "qemu-test-")
		if err != nil {
			artErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		artInit = filepath.Join(dir, "aleph-init")
		if artErr = alephrt.BuildInit(ctx, "../../..", artInit); artErr != nil {
			return
		}
		artImage = filepath.Join(dir, "runtime.squashfs")
		_, artErr = alephrt.Build(ctx, alephrt.Options{Out: artImage, Init: artInit})
	})
	if artErr != nil {
		t.Fatal(artErr)
	}
	return artInit, artImage
}

func newTestExecutor(t *testing.T) *Executor {
	t.Helper()
	e, err := New(Config{StateRoot: filepath.Join(t.TempDir(), "st"), Accel: os.Getenv("ALEPH_TEST_QEMU_ACCEL")})
	if errors.Is(err, ErrNoKernel) {
		t.Skipf("needs a guest kernel: run `alephd runtime kernel` (%v)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCrashChild is the "node" of TestNodeCrashLeavesNothing: it starts a
// VM with a tap network, says so, and waits to be killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("helper of TestNodeCrashLeavesNothing")
	}
	init, image := vmArtefacts(t)
	e := newTestExecutor(t)
	m, err := network.New(crashNetCfg(filepath.Join(dir, "netns")))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := m.Prepare(ctx, "crash", network.ModeTap)
	if err != nil {
		t.Fatal(err)
	}
	in, err := e.Start(ctx, &executor.Spec{ID: "crash", Runtime: image, Init: init, MemoryMiB: 64, VCPUs: 1,
		StateDir: filepath.Join(dir, "executions", "crash-1"), Internet: true, Tap: n.Tap, GuestMAC: n.GuestMAC.String()})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := in.Transport().AwaitReady(rctx); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("READY %d %s\n", in.(*Instance).Pid(), n.Interface)
	select {} // killed by the parent
}

// A node killed with SIGKILL while a VM with a network runs leaves no
// qemu, no tap, and nothing that the next start's cleanups do not remove.
func TestNodeCrashLeavesNothing(t *testing.T) {
	vmArtefacts(t)
	newTestExecutor(t) // skips without a kernel
	dir := t.TempDir()
	// The NAT's uplink: any interface with a normal MTU.
	up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "qcup0"}, PeerName: "qcpeer0"}
	_ = netlink.LinkDel(up)
	if err := netlink.LinkAdd(up); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(up)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var tap string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "READY" {
			pid, _ = strconv.Atoi(f[1])
			tap = f[2]
			break
		}
		t.Log("child: " + sc.Text())
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child never had its vm ready")
	}
	if _, err := netlink.LinkByName(tap); err != nil {
		t.Fatalf("tap %s missing while the vm runs: %v", tap, err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	cmd.Process.Kill() // the node crashes
	cmd.Wait()

	// qemu follows (parent-death signal): wait for its exit, as an event.
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 10_000); err != nil || n != 1 {
		t.Fatalf("qemu %d still runs 10 s after the node died (poll %d, %v)", pid, n, err)
	}
	if _, err := netlink.LinkByName(tap); err == nil {
		t.Errorf("tap %s survived the crash", tap)
	}
	// The next start: the executor and network cleanups leave nothing.
	e := newTestExecutor(t)
	gone, err := e.Cleanup(ctx, filepath.Join(dir, "executions"))
	if err != nil || len(gone) != 1 {
		t.Errorf("executor cleanup: %v %v", gone, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "executions")); len(ents) != 0 {
		t.Errorf("execution dirs left: %v", ents)
	}
	m, err := network.New(crashNetCfg(filepath.Join(dir, "netns")))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "alqc") {
			t.Errorf("link %s left", l.Attrs().Name)
		}
	}
	if out, err := exec.Command("nft", "list", "table", "inet", "alqc_net").CombinedOutput(); err == nil {
		t.Errorf("nft table left:\n%s", out)
	}
}

// Relative paths (a node run from its data dir, as `alephd dev` is) work:
// qemu runs in the execution's dir, so the backend makes them absolute.
func TestRelativePaths(t *testing.T) {
	init, image := vmArtefacts(t)
	e := newTestExecutor(t)
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Link(image, "runtime.squashfs"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, err := e.Start(ctx, &executor.Spec{ID: "rel", Runtime: "runtime.squashfs", Init: init, MemoryMiB: 64, VCPUs: 1,
		StateDir: filepath.Join("executions", "rel-1")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop(ctx)
	if v, err := in.Transport().AwaitReady(ctx); err != nil {
		t.Fatalf("ready %q: %v; console:\n%s", v, err, readAll(in.Logs()))
	}
}

func readAll(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}
