package vmboot

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestNetConfigParse(t *testing.T) {
	good := []struct {
		in       NetConfig
		ip, ip6  string
		gw, gw6  string
		noChange bool
	}{
		{in: NetConfig{}, noChange: true},
		{in: NetConfig{IP: "172.16.4.2", Route: "172.16.4.1"}, ip: "172.16.4.2/24", gw: "172.16.4.1"},
		{in: NetConfig{IP: "10.0.0.6/30", Route: "10.0.0.5"}, ip: "10.0.0.6/30", gw: "10.0.0.5"},
		{in: NetConfig{IP: "10.0.0.6"}, ip: "10.0.0.6/24"},
		{in: NetConfig{IP: "172.16.4.2", IPv6: "fc00:1:2:3::1/124", IPv6Gateway: "fc00:1:2:3::"},
			ip: "172.16.4.2/24", ip6: "fc00:1:2:3::1/124", gw6: "fc00:1:2:3::"},
	}
	for _, tt := range good {
		p, err := tt.in.parse()
		if err != nil {
			t.Errorf("parse(%+v): %v", tt.in, err)
			continue
		}
		str := func(v interface {
			IsValid() bool
			String() string
		}) string {
			if !v.IsValid() {
				return ""
			}
			return v.String()
		}
		if str(p.ip) != tt.ip || str(p.ip6) != tt.ip6 || str(p.gw) != tt.gw || str(p.gw6) != tt.gw6 {
			t.Errorf("parse(%+v) = %v %v %v %v", tt.in, p.ip, p.ip6, p.gw, p.gw6)
		}
	}
	bad := []struct {
		in   NetConfig
		want string
	}{
		{NetConfig{IP: "172.16.4"}, `ip "172.16.4"`},
		{NetConfig{IP: "fc00::1"}, `ip "fc00::1" is not an IPv4`},
		{NetConfig{IP: "10.0.0.1/33"}, `ip "10.0.0.1/33"`},
		{NetConfig{IP: "10.0.0.1/0"}, `ip "10.0.0.1/0"`},
		{NetConfig{IP: "10.0.0.1 up"}, "ip"},
		{NetConfig{IP: "10.0.0.2", Route: "gw"}, `route "gw"`},
		{NetConfig{IP: "10.0.0.2", Route: "10.0.1.1"}, "not in the network"},
		{NetConfig{Route: "10.0.1.1"}, "not in the network"},
		{NetConfig{IPv6: "fc00::1"}, `ipv6 "fc00::1" is not an IPv6 address with a prefix`},
		{NetConfig{IPv6: "10.0.0.1/24"}, "ipv6"},
		{NetConfig{IPv6: "::ffff:10.0.0.1/120"}, "ipv6"},
		{NetConfig{IPv6: "fc00::1/64", IPv6Gateway: "fd00::1"}, "not in the network"},
		{NetConfig{IPv6: "fc00::1/64", IPv6Gateway: "10.0.0.1"}, "ipv6_gateway"},
	}
	for _, tt := range bad {
		_, err := tt.in.parse()
		if !errors.Is(err, ErrBadNetwork) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse(%+v) = %v, want ErrBadNetwork with %q", tt.in, err, tt.want)
		}
	}
	cfg := &protocol.Configuration{IP: "a", Route: "b", IPv6: "c", IPv6Gateway: "d"}
	if got := NetConfigOf(cfg); got != (NetConfig{"a", "b", "c", "d"}) {
		t.Errorf("NetConfigOf = %+v", got)
	}
}

// testNetns is a fresh network namespace, closed (and so destroyed) at the
// end of the test; the test's threads stay where they were.
func testNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	needRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the original netns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func newTestNetwork(t *testing.T, ns netns.NsHandle) (*Network, *netlink.Handle) {
	t.Helper()
	n, err := NewNetwork(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return n, h
}

// addEth0 adds a link named eth0, as virtio_net would: one end of a veth
// pair (our kernels have veth, not always dummy), the peer up so that eth0
// gets a carrier.
func addEth0(t *testing.T, h *netlink.Handle) {
	t.Helper()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: Interface}, PeerName: "peer0"}); err != nil {
		t.Errorf("add eth0: %v", err)
		return
	}
	peer, err := h.LinkByName("peer0")
	if err == nil {
		err = h.LinkSetUp(peer)
	}
	if err != nil {
		t.Errorf("add eth0: %v", err)
	}
}

func addrsOf(t *testing.T, h *netlink.Handle, name string, family int) []string {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	as, err := h.AddrList(l, family)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, a.IPNet.String())
	}
	return out
}

func defaultGateway(t *testing.T, h *netlink.Handle, family int) string {
	t.Helper()
	rs, err := h.RouteList(nil, family)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			return r.Gw.String()
		}
	}
	return ""
}

func TestLoopbackUp(t *testing.T) {
	ns := testNetns(t)
	n, h := newTestNetwork(t, ns)
	if err := n.LoopbackUp(); err != nil {
		t.Fatal(err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("lo not up: %v", err)
	}
	if got := addrsOf(t, h, "lo", netlink.FAMILY_V4); len(got) != 1 || got[0] != "127.0.0.1/8" {
		t.Fatalf("lo addresses %v", got)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name    string
		cfg     NetConfig
		v4, v6  []string
		gw, gw6 string
	}{
		{"aleph-vm ip", NetConfig{IP: "172.16.4.2", Route: "172.16.4.1"}, []string{"172.16.4.2/24"}, nil, "172.16.4.1", ""},
		{"with prefix", NetConfig{IP: "10.9.0.10/28", Route: "10.9.0.1"}, []string{"10.9.0.10/28"}, nil, "10.9.0.1", ""},
		{"no route", NetConfig{IP: "10.9.0.10"}, []string{"10.9.0.10/24"}, nil, "", ""},
		{"dual stack", NetConfig{IP: "172.16.4.2", Route: "172.16.4.1", IPv6: "fc00:1:2:3::2/124", IPv6Gateway: "fc00:1:2:3::1"},
			[]string{"172.16.4.2/24"}, []string{"fc00:1:2:3::2/124"}, "172.16.4.1", "fc00:1:2:3::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := testNetns(t)
			n, h := newTestNetwork(t, ns)
			addEth0(t, h)
			if err := n.Configure(ctxTimeout(t, 5*time.Second), tt.cfg); err != nil {
				t.Fatal(err)
			}
			l, err := h.LinkByName(Interface)
			if err != nil || l.Attrs().Flags&net.FlagUp == 0 {
				t.Fatalf("eth0 not up: %v", err)
			}
			if got := addrsOf(t, h, Interface, netlink.FAMILY_V4); strings.Join(got, ",") != strings.Join(tt.v4, ",") {
				t.Errorf("IPv4 addresses %v, want %v", got, tt.v4)
			}
			if got := addrsOf(t, h, Interface, netlink.FAMILY_V6); strings.Join(got, ",") != strings.Join(tt.v6, ",") {
				t.Errorf("IPv6 addresses %v, want %v", got, tt.v6)
			}
			if got := defaultGateway(t, h, netlink.FAMILY_V4); got != tt.gw {
				t.Errorf("IPv4 default route via %q, want %q", got, tt.gw)
			}
			if got := defaultGateway(t, h, netlink.FAMILY_V6); got != tt.gw6 {
				t.Errorf("IPv6 default route via %q, want %q", got, tt.gw6)
			}
			// A second configuration of the same values is harmless.
			if err := n.Configure(ctxTimeout(t, 5*time.Second), tt.cfg); err != nil {
				t.Errorf("again: %v", err)
			}
		})
	}
}

func TestConfigureWaitsForEth0(t *testing.T) {
	ns := testNetns(t)
	n, h := newTestNetwork(t, ns)
	// virtio_net registers eth0 a moment after the module loads.
	added := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { defer close(added); addEth0(t, h) })
	err := n.Configure(ctxTimeout(t, 5*time.Second), NetConfig{IP: "172.16.9.2", Route: "172.16.9.1"})
	<-added
	if err != nil {
		t.Fatal(err)
	}
	if got := defaultGateway(t, h, netlink.FAMILY_V4); got != "172.16.9.1" {
		t.Fatalf("default route via %q", got)
	}
}

func TestConfigureNoNIC(t *testing.T) {
	ns := testNetns(t)
	n, _ := newTestNetwork(t, ns)
	// No ip: nothing to do, no NIC awaited.
	if err := n.Configure(ctxTimeout(t, time.Second), NetConfig{}); err != nil {
		t.Fatalf("no ip: %v", err)
	}
	start := time.Now()
	err := n.Configure(ctxTimeout(t, 200*time.Millisecond), NetConfig{IP: "172.16.4.2"})
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "eth0") {
		t.Fatalf("missing eth0: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	// Bad input fails before anything waits.
	if err := n.Configure(ctxTimeout(t, 10*time.Second), NetConfig{IP: "nope"}); !errors.Is(err, ErrBadNetwork) {
		t.Fatalf("bad ip: %v", err)
	}
}
