package network

import (
	"bufio"
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

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Each test gets its own slot so parallel tests (and a real node on the
// host) never share interface names, tables or addresses: pool
// 10.198.<16*slot>.0/20 (15 /24s from index 1), fake internet 10.199.<slot>.0/24.
const (
	slotIsolation = iota + 1
	slotRelease
	slotCleanup
	slotParallel
	slotSpoof
	slotFlush
	slotTap
	slotOverlap
	slotCrash
	slotListing
	slotTapClose
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veths, taps, nftables)")
	}
	if _, err := os.Stat(tunDevice); err != nil {
		t.Skipf("no %s (kernel without CONFIG_TUN): %v", tunDevice, err)
	}
}

type testEnv struct {
	cfg      Config
	m        *Manager
	uplinkIP netip.Addr // host side of the fake uplink: masquerade source
	inetNS   string     // namespace standing in for the internet
	inetIP   netip.Addr
}

func slotConfig(dir string, slot int) Config {
	letter := string(rune('a' + slot))
	return Config{
		StateDir:   filepath.Join(dir, "netns"),
		Pool:       netip.MustParsePrefix(fmt.Sprintf("10.198.%d.0/20", 16*slot)),
		FirstIndex: 1,
		Uplink:     "tup" + letter,
		DNS:        []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.199.%d.2", slot))},
		Table:      "aleph_net_test_" + letter,
		IfPrefix:   "atv" + letter,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// newEnv builds a fake internet (a namespace behind a veth "uplink") and a
// Manager NATing to it. Everything is removed at the end of the test.
func newEnv(t *testing.T, slot int) *testEnv {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	e := &testEnv{
		cfg:      slotConfig(dir, slot),
		uplinkIP: netip.MustParseAddr(fmt.Sprintf("10.199.%d.1", slot)),
		inetIP:   netip.MustParseAddr(fmt.Sprintf("10.199.%d.2", slot)),
		inetNS:   filepath.Join(dir, "inet"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uplink := e.cfg.Uplink
	if err := deleteLink(ctx, uplink); err != nil { // leftover of a killed run
		t.Fatal(err)
	}
	if err := newNetNS(e.inetNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNSFile(e.inetNS) })
	ns := openNS(t, e.inetNS)
	h := rootHandle(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: uplink}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add uplink veth: %v", err)
	}
	t.Cleanup(func() { _ = deleteLink(context.Background(), uplink) })
	linkUp(t, h, uplink, netip.PrefixFrom(e.uplinkIP, 24))
	in := nsHandle(t, ns)
	linkUp(t, in, "lo", netip.Prefix{})
	linkUp(t, in, "eth0", netip.PrefixFrom(e.inetIP, 24))

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

func openNS(t *testing.T, path string) netns.NsHandle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatalf("open netns %s: %v", path, err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func rootHandle(t *testing.T) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func nsHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink in netns: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// linkUp brings name up, with address p if valid.
func linkUp(t *testing.T, h *netlink.Handle, name string, p netip.Prefix) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	if p.IsValid() {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p.Addr(), p.Bits())}); err != nil {
			t.Fatalf("address %s on %s: %v", p, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("%s up: %v", name, err)
	}
}

// inNS runs fn on an OS thread switched into the network namespace at path;
// sockets created by fn live there.
func inNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // thread still locked: it dies with the goroutine
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if netns.Set(orig) == nil {
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
func dial(ns string, to netip.AddrPort, timeout time.Duration) (string, error) {
	var got string
	do := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var d net.Dialer
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

func mustPrepare(t *testing.T, m *Manager, id string, mode Mode) *Net {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := m.Prepare(ctx, id, mode)
	if err != nil {
		t.Fatalf("Prepare(%s, %v): %v", id, mode, err)
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

func checkAddressing(t *testing.T, e *testEnv, n *Net, mode Mode) {
	t.Helper()
	if n.Mode != mode || n.Prefix.Bits() != 24 || n.Prefix != subnet(e.cfg.Pool, n.Index) ||
		n.HostIP != n.Prefix.Addr().Next() || n.GuestIP != n.HostIP.Next() || n.Gateway != n.HostIP ||
		!e.cfg.Pool.Contains(n.GuestIP) || n.Index < e.cfg.FirstIndex ||
		n.Interface != fmt.Sprintf("%s%d", e.cfg.IfPrefix, n.Index) || n.GuestMAC.String() != GuestMAC {
		t.Fatalf("bad addressing: %+v", n)
	}
	if got := string(n.ResolvConf()); got != "nameserver "+e.inetIP.String()+"\n" {
		t.Errorf("resolv.conf = %q", got)
	}
	h := rootHandle(t)
	l, err := h.LinkByName(n.Interface)
	if err != nil {
		t.Fatalf("host link %s: %v", n.Interface, err)
	}
	if l.Attrs().OperState == netlink.OperDown || l.Attrs().Flags&net.FlagUp == 0 || l.Attrs().MTU != n.MTU {
		t.Errorf("host link %s not up with mtu %d: %+v", n.Interface, n.MTU, l.Attrs())
	}
	assertAddrs(t, h, l, netlink.FAMILY_V4, []string{n.HostIP.String() + "/24"})
	assertAddrs(t, h, l, netlink.FAMILY_V6, nil)
	neighs, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, nb := range neighs {
		if nb.IP.Equal(n.GuestIP.AsSlice()) && nb.State == netlink.NUD_PERMANENT && nb.HardwareAddr.String() == GuestMAC {
			found = true
		}
	}
	if !found {
		t.Errorf("no permanent neighbour %s -> %s on %s: %+v", n.GuestIP, GuestMAC, n.Interface, neighs)
	}
}

func assertAddrs(t *testing.T, h *netlink.Handle, l netlink.Link, family int, want []string) {
	t.Helper()
	addrs, err := h.AddrList(l, family)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s family %d addresses = %v, want %v", l.Attrs().Name, family, got, want)
	}
}

func TestNetnsIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotIsolation)
	n := mustPrepare(t, e.m, "exec-a", ModeNetns)
	checkAddressing(t, e, n, ModeNetns)
	if n.Tap != nil || n.NSPath != filepath.Join(e.cfg.StateDir, "exec-a") {
		t.Errorf("netns mode: tap %v, nspath %q", n.Tap, n.NSPath)
	}

	// Inside: exactly lo (up) and eth0 with .2/24, GuestMAC, a default route
	// via .1, and no IPv6 (a link-local would bypass the IPv4 plan).
	in := nsHandle(t, openNS(t, n.NSPath))
	links, err := in.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
		if l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s is down in the namespace", l.Attrs().Name)
		}
	}
	if fmt.Sprint(names) != "[lo eth0]" {
		t.Errorf("namespace links = %v, want [lo eth0]", names)
	}
	eth, err := in.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if eth.Attrs().HardwareAddr.String() != GuestMAC || eth.Attrs().MTU != n.MTU {
		t.Errorf("eth0 mac %s mtu %d, want %s %d", eth.Attrs().HardwareAddr, eth.Attrs().MTU, GuestMAC, n.MTU)
	}
	assertAddrs(t, in, eth, netlink.FAMILY_V4, []string{n.GuestIP.String() + "/24"})
	assertAddrs(t, in, eth, netlink.FAMILY_V6, nil)
	routes, err := in.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	def := false
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(n.HostIP.AsSlice()) && r.LinkIndex == eth.Attrs().Index {
			def = true
		}
	}
	if !def {
		t.Errorf("no default route via %s dev eth0: %+v", n.HostIP, routes)
	}

	// The internet is reachable, and sees the uplink's address (masquerade).
	inet := serve(t, e.inetNS, e.inetIP.String()+":0")
	from, err := dial(n.NSPath, inet, 5*time.Second)
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
		if _, err := dial("", targets["host primary IP "+p.String()], 2*time.Second); err != nil {
			t.Fatalf("control: host cannot reach its own server: %v", err)
		}
	}
	if _, err := dial("", lo, 2*time.Second); err != nil {
		t.Fatalf("control: host cannot reach its loopback server: %v", err)
	}
	for name, to := range targets {
		if got, err := dial(n.NSPath, to, blocked); err == nil {
			t.Errorf("guest reached %s (%s), server saw %s", name, to, got)
		}
	}
}

func TestExecutionsCannotReachEachOther(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotSpoof)
	a := mustPrepare(t, e.m, "exec-a", ModeNetns)
	b := mustPrepare(t, e.m, "exec-b", ModeNetns)
	if a.Prefix.Overlaps(b.Prefix) || a.Interface == b.Interface || a.NSPath == b.NSPath || a.Index == b.Index {
		t.Fatalf("executions share resources: %+v %+v", a, b)
	}
	srvA := serve(t, a.NSPath, "0.0.0.0:0")
	// Control: the host reaches A's server (host→guest is allowed).
	if _, err := dial("", netip.AddrPortFrom(a.GuestIP, srvA.Port()), 2*time.Second); err != nil {
		t.Fatalf("control: host cannot reach exec A: %v", err)
	}
	for _, to := range []netip.Addr{a.GuestIP, a.HostIP} {
		if got, err := dial(b.NSPath, netip.AddrPortFrom(to, srvA.Port()), blocked); err == nil {
			t.Errorf("exec B reached %s (A saw %s)", to, got)
		}
	}

	// Anti-spoofing: datagrams from B with a source that is not B's own
	// (A's address, or an outside one that would leave un-NATed) are dropped.
	udp := udpSink(t, e.inetNS, e.inetIP)
	if got := sendUDP(t, b.NSPath, udp, netip.Addr{}); got != e.uplinkIP.String() {
		t.Fatalf("control: datagram from exec B arrived from %q, want %s", got, e.uplinkIP)
	}
	in := nsHandle(t, openNS(t, b.NSPath))
	eth, err := in.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, spoof := range []netip.Addr{a.GuestIP, netip.MustParseAddr("192.0.2.77")} {
		if err := in.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(spoof, 32)}); err != nil {
			t.Fatal(err)
		}
		if got := sendUDP(t, b.NSPath, udp, spoof); got != "" {
			t.Errorf("datagram spoofed from %s reached the internet as %s", spoof, got)
		}
	}
}

// udpSink is a UDP socket in namespace ns ("" = host).
func udpSink(t *testing.T, ns string, ip netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	listen := func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ip.AsSlice()})
		return err
	}
	var err error
	if ns == "" {
		err = listen()
	} else {
		err = inNS(ns, listen)
	}
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
	src, _ := recvUDP(sink, blocked)
	if !src.IsValid() {
		return ""
	}
	return src.Addr().String()
}

// recvUDP waits up to wait for one datagram on c.
func recvUDP(c *net.UDPConn, wait time.Duration) (netip.AddrPort, string) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 256)
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return netip.AddrPort{}, ""
	}
	return netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), string(buf[:n])
}

// setKeys lists the anti-spoofing set as "ifname . ip" strings.
func setKeys(t *testing.T, table string) map[string]bool {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tab := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	s, err := c.GetSetByName(tab, setName)
	if err != nil {
		t.Fatalf("nft set %s: %v", setName, err)
	}
	els, err := c.GetSetElements(s)
	if err != nil {
		t.Fatalf("nft set elements: %v", err)
	}
	out := map[string]bool{}
	for _, el := range els {
		if len(el.Key) != ifNameLen+4 {
			t.Fatalf("set key of %d bytes", len(el.Key))
		}
		name := strings.TrimRight(string(el.Key[:ifNameLen]), "\x00")
		ip, _ := netip.AddrFromSlice(el.Key[ifNameLen:])
		out[name+" . "+ip.String()] = true
	}
	return out
}

func key(n *Net) string { return n.Interface + " . " + n.GuestIP.String() }

func tableExists(t *testing.T, table string) bool {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTableOfFamily(table, nftables.TableFamilyINet)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		t.Fatalf("list table %s: %v", table, err)
	}
	return err == nil
}

func TestReleaseRemovesEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotRelease)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, mode := range []Mode{ModeNetns, ModeTap} {
		t.Run(mode.String(), func(t *testing.T) {
			n := mustPrepare(t, e.m, "exec-r", mode)
			if _, err := e.m.Prepare(ctx, "exec-r", mode); !errors.Is(err, ErrInUse) {
				t.Fatalf("second Prepare of the same id: got %v, want ErrInUse", err)
			}
			if !setKeys(t, e.cfg.Table)[key(n)] {
				t.Fatalf("%s not in the anti-spoofing set", key(n))
			}
			if err := n.Release(ctx); err != nil {
				t.Fatalf("Release: %v", err)
			}
			assertGone(t, n)
			if setKeys(t, e.cfg.Table)[key(n)] {
				t.Errorf("%s still in the set after Release", key(n))
			}
			if err := n.Release(ctx); err != nil {
				t.Errorf("second Release: %v", err)
			}
			// A Prepare that fails half-way leaves nothing and frees its reservation.
			dead, stop := context.WithCancel(ctx)
			stop()
			if _, err := e.m.Prepare(dead, "exec-c", mode); err == nil {
				t.Fatal("Prepare with a cancelled context succeeded")
			}
			if _, err := os.Lstat(filepath.Join(e.cfg.StateDir, "exec-c")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("failed Prepare left its netns file: %v", err)
			}
			if len(e.m.byID) != 0 {
				t.Errorf("failed Prepare kept its reservation")
			}
			// The id is free again.
			n2 := mustPrepare(t, e.m, "exec-r", mode)
			if err := n2.Release(ctx); err != nil {
				t.Fatalf("Release: %v", err)
			}
			assertGone(t, n2)
		})
	}
}

// A tap whose file the caller (qemu) closed first is gone already; Release
// still succeeds.
func TestReleaseAfterTapClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotTapClose)
	n := mustPrepare(t, e.m, "exec-t", ModeTap)
	if err := n.Tap.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(n.Interface); err == nil {
		t.Errorf("non-persistent tap %s survived the close of its file", n.Interface)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	assertGone(t, n)
}

func TestRulesComeBackAfterFlush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotFlush)
	a := mustPrepare(t, e.m, "exec-a", ModeNetns)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tab := &nftables.Table{Name: e.cfg.Table, Family: nftables.TableFamilyINet}
	c.DelTable(tab)
	if err := c.Flush(); err != nil {
		t.Fatalf("delete table: %v", err)
	}
	b := mustPrepare(t, e.m, "exec-b", ModeTap)
	// Flushing the rules (chains and set stay) must not leave a hole either.
	c.FlushTable(tab)
	if err := c.Flush(); err != nil {
		t.Fatalf("flush table: %v", err)
	}
	d := mustPrepare(t, e.m, "exec-d", ModeNetns)
	keys := setKeys(t, e.cfg.Table)
	for _, n := range []*Net{a, b, d} {
		if !keys[key(n)] {
			t.Errorf("%s missing from the reloaded set: %v", key(n), keys)
		}
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for _, ch := range chains {
		if ch.Table.Name != e.cfg.Table {
			continue
		}
		rs, err := c.GetRules(tab, ch)
		if err != nil {
			t.Fatal(err)
		}
		rules += len(rs)
	}
	if rules != 9 {
		t.Errorf("reloaded table has %d rules, want 9", rules)
	}
	// And the rules work: A is still isolated from the host, and reaches out.
	all := serve(t, "", "0.0.0.0:0")
	if got, err := dial(a.NSPath, netip.AddrPortFrom(a.HostIP, all.Port()), blocked); err == nil {
		t.Errorf("after reload, exec A reached the host (saw %s)", got)
	}
	inet := serve(t, e.inetNS, e.inetIP.String()+":0")
	if _, err := dial(a.NSPath, inet, 5*time.Second); err != nil {
		t.Errorf("after reload, exec A cannot reach the internet: %v", err)
	}
}

func assertGone(t *testing.T, n *Net) {
	t.Helper()
	if _, err := net.InterfaceByName(n.Interface); err == nil {
		t.Errorf("link %s still exists", n.Interface)
	}
	if n.NSPath == "" {
		return
	}
	if _, err := os.Lstat(n.NSPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns file %s still there: %v", n.NSPath, err)
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mounts), n.NSPath) {
		t.Errorf("netns %s still mounted", n.NSPath)
	}
}

// assertNothingLeft checks that no link with prefix, no netns file or mount
// under stateDir and no table is left, with the libraries and, when
// installed, with ip and nft.
func assertNothingLeft(t *testing.T, cfg Config) {
	t.Helper()
	names, err := linkNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, cfg.IfPrefix) {
			t.Errorf("link %s left", name)
		}
	}
	if ents, _ := os.ReadDir(cfg.StateDir); len(ents) != 0 {
		t.Errorf("state dir not empty: %v", ents)
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mounts), cfg.StateDir) {
		t.Errorf("a netns under %s is still mounted", cfg.StateDir)
	}
	if tableExists(t, cfg.Table) {
		t.Errorf("table inet %s left", cfg.Table)
	}
	if ip, err := exec.LookPath("ip"); err == nil {
		out, err := exec.Command(ip, "-o", "link").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -o link: %v: %s", err, out)
		}
		if strings.Contains(string(out), ": "+cfg.IfPrefix) {
			t.Errorf("ip -o link lists our links:\n%s", out)
		}
	}
	if nft, err := exec.LookPath("nft"); err == nil {
		out, err := exec.Command(nft, "list", "tables").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list tables: %v: %s", err, out)
		}
		if strings.Contains(string(out), "inet "+cfg.Table+"\n") {
			t.Errorf("nft list tables shows ours:\n%s", out)
		}
	}
}

func TestCleanupRemovesLeftovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotCleanup)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var left []*Net
	for i := range 4 {
		left = append(left, mustPrepare(t, e.m, fmt.Sprintf("exec-%d", i), Mode(1+i%2)))
	}
	if err := e.m.Cleanup(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("Cleanup with live networks: got %v, want ErrBusy", err)
	}
	// A new node process (new Manager) cleans up after the one that died,
	// even taps whose file is still open (a surviving qemu).
	if err := e.newManager(t).Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	for _, n := range left {
		assertGone(t, n)
	}
	assertNothingLeft(t, e.cfg)
	// The dead manager's handles still release cleanly, and recreate nothing.
	for _, n := range left {
		if err := n.Release(ctx); err != nil {
			t.Errorf("Release after Cleanup: %v", err)
		}
	}
	assertNothingLeft(t, e.cfg)
}

func TestParallelPrepareRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotParallel)
	const workers, rounds = 12, 3
	var mu sync.Mutex
	live := map[netip.Addr]string{} // addresses held right now
	var wg sync.WaitGroup
	errc := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				id := fmt.Sprintf("exec-%d-%d", w, r)
				n, err := e.m.Prepare(ctx, id, Mode(1+(w+r)%2))
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
	if keys := setKeys(t, e.cfg.Table); len(keys) != 0 {
		t.Errorf("set not empty after all releases: %v", keys)
	}
}

// A /24 overlapping a host address or route is never handed out.
func TestSkipsHostPrefixes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotOverlap)
	h := rootHandle(t)
	dummy := "tdum" + string(rune('a'+slotOverlap))
	_ = deleteLink(context.Background(), dummy)
	// A veth pair: the dummy driver is not in every kernel.
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dummy}, PeerName: dummy + "p"}); err != nil {
		t.Fatalf("add veth %s: %v", dummy, err)
	}
	t.Cleanup(func() { _ = deleteLink(context.Background(), dummy) })
	// Index 1 holds a host address, index 2 is behind a host route.
	first, second := subnet(e.cfg.Pool, 1), subnet(e.cfg.Pool, 2)
	linkUp(t, h, dummy, netip.PrefixFrom(first.Addr().Next().Next().Next(), 25))
	l, err := h.LinkByName(dummy)
	if err != nil {
		t.Fatal(err)
	}
	route := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(second.Addr().Next().Next().Next().Next(), 32)}
	if err := h.RouteAdd(route); err != nil {
		t.Fatalf("add route: %v", err)
	}
	n := mustPrepare(t, e.m, "exec-o", ModeTap)
	if n.Index != 3 || n.Prefix != subnet(e.cfg.Pool, 3) {
		t.Errorf("got index %d (%s), want 3: indexes 1 and 2 overlap the host", n.Index, n.Prefix)
	}
}

// The ruleset, loaded into a scratch namespace, reads back (nft list) as the
// rules the package doc promises.
func TestRulesetListing(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft not installed: listing not checked")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("nsenter not installed: listing not checked")
	}
	path := filepath.Join(t.TempDir(), "ns")
	if err := newNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNSFile(path) })
	ns := openNS(t, path)
	m := &Manager{cfg: Config{Table: "aleph_net", IfPrefix: "alvm", Uplink: "eth0", Pool: DefaultPool}}
	nets := []*Net{
		{Interface: "alvm4", GuestIP: netip.MustParseAddr("172.16.4.2")},
		{Interface: "alvm4095", GuestIP: netip.MustParseAddr("172.31.255.2")},
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second load replaces the first
		if err := m.queueRuleset(c, nets); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatalf("load ruleset: %v", err)
		}
	}
	out, err := exec.Command(nsenter, "--net="+path, nft, "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	got := normalize(string(out))
	for _, want := range []string{
		"table inet aleph_net {",
		"set guests { type ifname . ipv4_addr",
		`elements = { "alvm4" . 172.16.4.2, "alvm4095" . 172.31.255.2 }`,
		"chain input { type filter hook input priority filter; policy accept; " +
			`iifname "alvm*" ct state established,related accept iifname "alvm*" drop }`,
		"chain forward { type filter hook forward priority filter; policy accept; " +
			`iifname "alvm*" meta nfproto ipv6 drop ` +
			`iifname "alvm*" iifname . ip saddr != @guests drop ` +
			`iifname "alvm*" oifname "eth0" accept iifname "alvm*" drop ` +
			`oifname "alvm*" ct state established,related accept oifname "alvm*" drop }`,
		"chain postrouting { type nat hook postrouting priority srcnat; policy accept; " +
			`ip saddr 172.16.0.0/12 oifname "eth0" masquerade }`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks\n  %s\nin\n%s", want, out)
		}
	}
	if strings.Count(got, "table inet aleph_net") != 1 {
		t.Errorf("want one table:\n%s", out)
	}
}

// normalize folds whitespace so listings compare across nft versions.
func normalize(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if f := strings.Join(strings.Fields(sc.Text()), " "); f != "" {
			b.WriteString(f + " ")
		}
	}
	return b.String()
}
