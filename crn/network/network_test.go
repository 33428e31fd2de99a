package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Each test gets its own slot so parallel tests (and a real node on the
// host) never share interface names, tables or addresses:
// pool 10.198.<slot>.0/24, fake internet 10.199.<slot>.0/24.
const (
	slotIsolation = iota + 1
	slotRelease
	slotCleanup
	slotParallel
	slotSpoof
	slotFlush
)

func requireNet(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veths, nftables)")
	}
	for _, b := range []string{"ip", "nft", "nsenter", "unshare"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt-get install iproute2 nftables util-linux)", b)
		}
	}
}

type testEnv struct {
	cfg      Config
	m        *Manager
	uplinkIP netip.Addr // host side of the fake uplink: masquerade source
	inetNS   string     // namespace standing in for the internet
	inetIP   netip.Addr
}

// newEnv builds a fake internet (a namespace behind a veth "uplink") and a
// Manager NATing to it. Everything is removed at the end of the test.
func newEnv(t *testing.T, slot int) *testEnv {
	t.Helper()
	requireNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	letter := string(rune('a' + slot))
	e := &testEnv{
		uplinkIP: netip.MustParseAddr(fmt.Sprintf("10.199.%d.1", slot)),
		inetIP:   netip.MustParseAddr(fmt.Sprintf("10.199.%d.2", slot)),
		inetNS:   filepath.Join(dir, "inet"),
	}
	uplink := "tup" + letter
	run(t, ctx, "", "ip", "link", "del", uplink) // leftover of a killed run
	runOK(t, ctx, "", "touch", e.inetNS)
	runOK(t, ctx, "", "unshare", "--net="+e.inetNS, "true")
	t.Cleanup(func() { _ = removeNSFile(e.inetNS) })
	runOK(t, ctx, "", "ip", "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", e.inetNS)
	t.Cleanup(func() { run(t, context.Background(), "", "ip", "link", "del", uplink) })
	runOK(t, ctx, fmt.Sprintf("addr add %s/24 dev %s\nlink set dev %s up\n", e.uplinkIP, uplink, uplink), "ip", "-batch", "-")
	runOK(t, ctx, fmt.Sprintf("link set dev lo up\naddr add %s/24 dev eth0\nlink set dev eth0 up\n", e.inetIP),
		"nsenter", "--net="+e.inetNS, "ip", "-batch", "-")

	e.cfg = Config{
		StateDir: filepath.Join(dir, "netns"),
		Pool:     netip.MustParsePrefix(fmt.Sprintf("10.198.%d.0/24", slot)),
		Uplink:   uplink,
		DNS:      []netip.Addr{e.inetIP},
		Table:    "aleph_net_test_" + letter,
		IfPrefix: "atv" + letter,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	e.m = e.newManager(t)
	// A fresh Manager removes whatever the test left, released or not.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.newManager(t).Cleanup(ctx); err != nil {
			t.Errorf("final cleanup: %v", err)
		}
	})
	return e
}

func (e *testEnv) newManager(t *testing.T) *Manager {
	t.Helper()
	m, err := New(e.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func run(t *testing.T, ctx context.Context, stdin, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func runOK(t *testing.T, ctx context.Context, stdin, name string, args ...string) string {
	t.Helper()
	out, err := run(t, ctx, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return out
}

// inNS runs fn on an OS thread switched into the network namespace at path;
// sockets created by fn live there.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return // thread still locked: it dies with the goroutine
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// serve listens on addr (in namespace ns, "" = host) and answers every
// connection with the peer address it saw.
func serve(t *testing.T, ns, addr string) netip.AddrPort {
	t.Helper()
	var l net.Listener
	listen := func() (err error) { l, err = net.Listen("tcp4", addr); return err }
	var err error
	if ns == "" {
		err = listen()
	} else {
		err = inNS(ns, listen)
	}
	if err != nil {
		t.Fatalf("listen %s in %q: %v", addr, ns, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			c.Close()
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return netip.MustParseAddrPort(l.Addr().String())
}

// dial connects from namespace ns ("" = host) and returns what the server
// saw as our address.
func dial(ns string, to netip.AddrPort, from netip.Addr, timeout time.Duration) (string, error) {
	var got string
	do := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		d := net.Dialer{}
		if from.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
		}
		c, err := d.DialContext(ctx, "tcp4", to.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	}
	if ns == "" {
		return got, do()
	}
	return got, inNS(ns, do)
}

const blocked = 700 * time.Millisecond // dropped packets: wait this long for nothing

func mustPrepare(t *testing.T, m *Manager, id string) *Net {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := m.Prepare(ctx, id)
	if err != nil {
		t.Fatalf("Prepare(%s): %v", id, err)
	}
	return n
}

// primaryIP is an IPv4 address of the host outside the test ranges.
func primaryIP(t *testing.T) netip.Addr {
	t.Helper()
	test := netip.MustParsePrefix("10.198.0.0/15")
	for a := range localAddrs() {
		if a.Is4() && !a.IsLoopback() && !test.Contains(a) {
			return a
		}
	}
	return netip.Addr{}
}

func TestPrepareIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotIsolation)
	n := mustPrepare(t, e.m, "exec-a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if n.Prefix.Bits() != 30 || !n.Prefix.Contains(n.GuestIP) || !n.Prefix.Contains(n.HostIP) ||
		n.Gateway != n.HostIP || n.GuestIP != n.HostIP.Next() || !e.cfg.Pool.Contains(n.GuestIP) {
		t.Fatalf("bad addressing: %+v", n)
	}
	if got := string(n.ResolvConf()); got != "nameserver "+e.inetIP.String()+"\n" {
		t.Errorf("resolv.conf = %q", got)
	}
	addr := runOK(t, ctx, "", "nsenter", "--net="+n.NSPath, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(addr, " "+n.GuestIP.String()+"/30 ") {
		t.Errorf("eth0 lacks %s/30: %s", n.GuestIP, addr)
	}
	route := runOK(t, ctx, "", "nsenter", "--net="+n.NSPath, "ip", "-4", "route", "show", "default")
	if !strings.Contains(route, "default via "+n.HostIP.String()+" dev eth0") {
		t.Errorf("no default route via %s: %q", n.HostIP, route)
	}
	if v6 := runOK(t, ctx, "", "nsenter", "--net="+n.NSPath, "ip", "-6", "-o", "addr", "show", "dev", "eth0"); v6 != "" {
		t.Errorf("eth0 has IPv6 addresses (link-local would bypass the IPv4 plan): %s", v6)
	}
	links := runOK(t, ctx, "", "nsenter", "--net="+n.NSPath, "ip", "-o", "link")
	if c := strings.Count(links, "\n"); c != 2 || !strings.Contains(links, "lo: <LOOPBACK,UP") {
		t.Errorf("want exactly lo (up) and eth0 in the namespace, got:\n%s", links)
	}

	// The internet is reachable, and sees the uplink's address (masquerade).
	inet := serve(t, e.inetNS, e.inetIP.String()+":0")
	from, err := dial(n.NSPath, inet, netip.Addr{}, 5*time.Second)
	if err != nil {
		t.Fatalf("guest cannot reach the internet: %v", err)
	}
	if ap, err := netip.ParseAddrPort(from); err != nil || ap.Addr() != e.uplinkIP {
		t.Errorf("internet saw %q, want the uplink address %s (masquerade)", from, e.uplinkIP)
	}

	// The host is not: neither its loopback services nor any of its addresses.
	lo := serve(t, "", "127.0.0.1:0")
	all := serve(t, "", "0.0.0.0:0")
	targets := map[string]netip.AddrPort{
		"host 127.0.0.1":    lo,
		"host veth address": netip.AddrPortFrom(n.HostIP, all.Port()),
		"host uplink addr":  netip.AddrPortFrom(e.uplinkIP, all.Port()),
	}
	if p := primaryIP(t); p.IsValid() {
		targets["host primary IP "+p.String()] = netip.AddrPortFrom(p, all.Port())
		// Control: the server does answer on that address.
		if _, err := dial("", targets["host primary IP "+p.String()], netip.Addr{}, 2*time.Second); err != nil {
			t.Fatalf("control: host cannot reach its own server: %v", err)
		}
	}
	if _, err := dial("", lo, netip.Addr{}, 2*time.Second); err != nil {
		t.Fatalf("control: host cannot reach its loopback server: %v", err)
	}
	for name, to := range targets {
		if got, err := dial(n.NSPath, to, netip.Addr{}, blocked); err == nil {
			t.Errorf("guest reached %s (%s), server saw %s", name, to, got)
		}
	}
}

func TestExecutionsCannotReachEachOther(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotSpoof)
	a := mustPrepare(t, e.m, "exec-a")
	b := mustPrepare(t, e.m, "exec-b")
	if a.Prefix.Overlaps(b.Prefix) || a.Interface == b.Interface || a.NSPath == b.NSPath {
		t.Fatalf("executions share resources: %+v %+v", a, b)
	}
	srvA := serve(t, a.NSPath, "0.0.0.0:0")
	// Control: the host reaches A's server (host→guest is allowed).
	if _, err := dial("", netip.AddrPortFrom(a.GuestIP, srvA.Port()), netip.Addr{}, 2*time.Second); err != nil {
		t.Fatalf("control: host cannot reach exec A: %v", err)
	}
	for _, to := range []netip.Addr{a.GuestIP, a.HostIP} {
		if got, err := dial(b.NSPath, netip.AddrPortFrom(to, srvA.Port()), netip.Addr{}, blocked); err == nil {
			t.Errorf("exec B reached %s (A saw %s)", to, got)
		}
	}

	// Anti-spoofing: datagrams from B with a source that is not B's own
	// (A's address, or an outside one that would leave un-NATed) are dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	udp := udpSink(t, e.inetNS, e.inetIP)
	if got := sendUDP(t, b.NSPath, udp, netip.Addr{}); got != e.uplinkIP.String() {
		t.Fatalf("control: datagram from exec B arrived from %q, want %s", got, e.uplinkIP)
	}
	for _, spoof := range []netip.Addr{a.GuestIP, netip.MustParseAddr("192.0.2.77")} {
		runOK(t, ctx, "", "nsenter", "--net="+b.NSPath, "ip", "addr", "add", spoof.String()+"/32", "dev", "eth0")
		if got := sendUDP(t, b.NSPath, udp, spoof); got != "" {
			t.Errorf("datagram spoofed from %s reached the internet as %s", spoof, got)
		}
	}
}

// udpSink is a UDP socket in namespace ns.
func udpSink(t *testing.T, ns string, ip netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNS(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip.AsSlice()})
		return err
	})
	if err != nil {
		t.Fatalf("udp listen: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendUDP sends a datagram from namespace ns (source from, if valid) to sink
// and returns the source address the sink saw, "" if nothing arrived.
func sendUDP(t *testing.T, ns string, sink *net.UDPConn, from netip.Addr) string {
	t.Helper()
	to := sink.LocalAddr().(*net.UDPAddr)
	err := inNS(ns, func() error {
		var laddr *net.UDPAddr
		if from.IsValid() {
			laddr = &net.UDPAddr{IP: from.AsSlice()}
		}
		c, err := net.DialUDP("udp4", laddr, to)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("ping"))
		return err
	})
	if err != nil {
		t.Fatalf("send udp from %s: %v", from, err)
	}
	_ = sink.SetReadDeadline(time.Now().Add(blocked))
	buf := make([]byte, 16)
	_, src, err := sink.ReadFromUDPAddrPort(buf)
	if err != nil {
		return ""
	}
	return src.Addr().String()
}

func TestReleaseRemovesEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotRelease)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := mustPrepare(t, e.m, "exec-r")
	if _, err := e.m.Prepare(ctx, "exec-r"); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Prepare of the same id: got %v, want ErrInUse", err)
	}
	set := runOK(t, ctx, "", "nft", "list", "set", "inet", e.cfg.Table, "guests")
	if !strings.Contains(set, n.GuestIP.String()) {
		t.Fatalf("guest not in the anti-spoofing set:\n%s", set)
	}
	if err := n.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	assertGone(t, ctx, e, n)
	set = runOK(t, ctx, "", "nft", "list", "set", "inet", e.cfg.Table, "guests")
	if strings.Contains(set, n.GuestIP.String()) {
		t.Errorf("guest still in the set after Release:\n%s", set)
	}
	if err := n.Release(ctx); err != nil {
		t.Errorf("second Release: %v", err)
	}
	// A Prepare that fails half-way leaves nothing and frees its reservation.
	dead, stop := context.WithCancel(ctx)
	stop()
	if _, err := e.m.Prepare(dead, "exec-c"); err == nil {
		t.Fatal("Prepare with a cancelled context succeeded")
	}
	if _, err := os.Lstat(filepath.Join(e.cfg.StateDir, "exec-c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Prepare left its netns file: %v", err)
	}
	if len(e.m.byID) != 0 {
		t.Errorf("failed Prepare kept its reservation")
	}
	// The id is free again and the table survives for the next one.
	n2 := mustPrepare(t, e.m, "exec-r")
	if err := n2.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

func TestRulesComeBackAfterFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotFlush)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := mustPrepare(t, e.m, "exec-a")
	runOK(t, ctx, "", "nft", "delete", "table", "inet", e.cfg.Table)
	b := mustPrepare(t, e.m, "exec-b")
	set := runOK(t, ctx, "", "nft", "list", "set", "inet", e.cfg.Table, "guests")
	for _, n := range []*Net{a, b} {
		if !strings.Contains(set, n.GuestIP.String()) {
			t.Errorf("%s missing from the reloaded set:\n%s", n.GuestIP, set)
		}
	}
}

func assertGone(t *testing.T, ctx context.Context, e *testEnv, n *Net) {
	t.Helper()
	if _, err := net.InterfaceByName(n.Interface); err == nil {
		t.Errorf("veth %s still exists", n.Interface)
	}
	if _, err := os.Lstat(n.NSPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns file %s still there: %v", n.NSPath, err)
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mounts), n.NSPath) {
		t.Errorf("netns %s still mounted", n.NSPath)
	}
}

func TestCleanupRemovesLeftovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotCleanup)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var left []*Net
	for i := range 3 {
		left = append(left, mustPrepare(t, e.m, fmt.Sprintf("exec-%d", i)))
	}
	if err := e.m.Cleanup(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("Cleanup with live networks: got %v, want ErrBusy", err)
	}
	// A new node process (new Manager) cleans up after the one that died.
	if err := e.newManager(t).Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, n := range left {
		assertGone(t, ctx, e, n)
	}
	if out, err := run(t, ctx, "", "nft", "list", "table", "inet", e.cfg.Table); err == nil {
		t.Errorf("table %s survived Cleanup:\n%s", e.cfg.Table, out)
	}
	if ents, _ := os.ReadDir(e.cfg.StateDir); len(ents) != 0 {
		t.Errorf("state dir not empty: %v", ents)
	}
	// The dead manager's handles still release cleanly.
	for _, n := range left {
		if err := n.Release(ctx); err != nil {
			t.Errorf("Release after Cleanup: %v", err)
		}
	}
}

func TestParallelPrepareRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotParallel)
	const workers, rounds = 16, 3
	var mu sync.Mutex
	live := map[netip.Addr]string{} // addresses held right now
	var wg sync.WaitGroup
	errc := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				id := fmt.Sprintf("exec-%d-%d", w, r)
				n, err := e.m.Prepare(ctx, id)
				if err != nil {
					cancel()
					errc <- err
					return
				}
				mu.Lock()
				if other, ok := live[n.GuestIP]; ok {
					errc <- fmt.Errorf("%s and %s both hold %s", other, id, n.GuestIP)
				}
				live[n.GuestIP] = id
				mu.Unlock()
				if _, err := net.InterfaceByName(n.Interface); err != nil {
					errc <- fmt.Errorf("%s: %w", id, err)
				}
				mu.Lock()
				delete(live, n.GuestIP)
				mu.Unlock()
				if err := n.Release(ctx); err != nil {
					errc <- err
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if len(e.m.byID) != 0 || len(e.m.byIdx) != 0 {
		t.Errorf("leaked reservations: %d ids, %d indexes", len(e.m.byID), len(e.m.byIdx))
	}
}
