package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/crn/executor/qemu"
	"github.com/go-aleph/go-aleph/crn/network"
	"github.com/go-aleph/go-aleph/crn/node"
	"github.com/go-aleph/go-aleph/crn/supervisor"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The end-to-end suite runs over every backend: the same programs must
// behave the same in a sandbox and in a microVM.
var backendNames = []string{"sandbox", "qemu"}

// forEachBackend runs f as one subtest per backend; the qemu one skips
// when qemu or the guest kernel is missing.
func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	t.Helper()
	for _, b := range backendNames {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// onBackend makes the pool's executor the named backend.
func onBackend(t testing.TB, name string) harnessOpt {
	t.Helper()
	if name != "qemu" {
		return func(*supervisor.Config) {}
	}
	ex := qemuExecutor(t)
	return func(c *supervisor.Config) {
		c.Executor = ex
		// A TCG boot takes ~1.5 CPU-seconds; leave room on slow machines.
		c.ReadyTimeout = 60e9
	}
}

// qemuExecutor is a qemu backend on the fetched kernel (skips without one).
func qemuExecutor(t testing.TB) *qemu.Executor {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu tests need qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	accel := os.Getenv("ALEPH_TEST_QEMU_ACCEL") // default: auto
	ex, err := qemu.New(qemu.Config{StateRoot: filepath.Join(t.TempDir(), "qemu"), Accel: accel, KernelDir: os.Getenv("ALEPH_KERNEL_DIR"),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if errors.Is(err, qemu.ErrNoKernel) {
		t.Skipf("qemu tests need a guest kernel: run `alephd runtime kernel` (%v)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

// fakeInternet is a network namespace the test creates, holding an HTTP
// server: the "internet" programs with environment.internet reach through
// the node's NAT. No outside address is ever used.
type fakeInternet struct {
	url string // the server, by IP
}

const (
	inetUplink = "inetup0"
	inetHostIP = "10.197.0.1"
	inetIP     = "10.197.0.2"
)

// withInternet gives the pool a network manager NATing out of a veth into
// a test namespace, and starts the server there.
func withInternet(t *testing.T) (harnessOpt, *fakeInternet) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("internet tests need root")
	}
	nsName := "alsup-inet"
	_ = netns.DeleteNamed(nsName)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.NewNamed(nsName) // switches this thread into it
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	// Inside the namespace: listen, so that the socket lives there.
	ln, lerr := net.Listen("tcp", "0.0.0.0:8080")
	if serr := netns.Set(orig); serr != nil {
		t.Fatal(serr) // the thread stays locked and dies with the test
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() {
		ns.Close()
		orig.Close()
		_ = netns.DeleteNamed(nsName)
	})
	if lerr != nil {
		t.Fatal(lerr)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "fake internet saw %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// The uplink: a veth whose peer is eth0 in the namespace.
	_ = netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: inetUplink}})
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: inetUplink}, PeerName: "inetpeer0"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	peer, err := netlink.LinkByName("inetpeer0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		t.Fatal(err)
	}
	up, _ := netlink.LinkByName(inetUplink)
	if err := netlink.AddrAdd(up, mustAddr(t, inetHostIP+"/24")); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(up); err != nil {
		t.Fatal(err)
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	in, err := nh.LinkByName("inetpeer0")
	if err != nil {
		t.Fatal(err)
	}
	lo, _ := nh.LinkByName("lo")
	for _, step := range []error{nh.AddrAdd(in, mustAddr(t, inetIP+"/24")), nh.LinkSetUp(in), nh.LinkSetUp(lo)} {
		if step != nil {
			t.Fatal(step)
		}
	}

	m, err := network.New(network.Config{
		StateDir: t.TempDir(), Pool: netip.MustParsePrefix("10.196.0.0/20"), FirstIndex: 1,
		Uplink: inetUplink, DNS: []netip.Addr{netip.MustParseAddr(inetIP)},
		Table: "alsup_net", IfPrefix: "alsup",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Cleanup(context.Background()); err != nil {
			t.Errorf("network cleanup: %v", err)
		}
	})
	return func(c *supervisor.Config) { c.Network = node.NetworkOf(m) },
		&fakeInternet{url: "http://" + inetIP + ":8080/"}
}

func mustAddr(t *testing.T, s string) *netlink.Addr {
	t.Helper()
	a, err := netlink.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ourLinks lists the links the test's network manager created.
func ourLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, "alsup") {
			out = append(out, n)
		}
	}
	return out
}
