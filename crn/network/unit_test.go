package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParseDefaultRoute(t *testing.T) {
	const hdr = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	tests := []struct {
		name, table, want string
		err               error
	}{
		{"single", hdr + "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
			"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", "eth0", nil},
		{"lowest metric wins", hdr + "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
			"enp1s0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n", "enp1s0", nil},
		{"down route ignored", hdr + "eth1\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n", "", ErrNoUplink},
		{"no default", hdr + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", "", ErrNoUplink},
		{"empty", "", "", ErrNoUplink},
		{"garbage", hdr + "x y z\n", "", ErrNoUplink},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDefaultRoute(strings.NewReader(tc.table))
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestUsableNameservers(t *testing.T) {
	pool := netip.MustParsePrefix("172.16.0.0/12")
	local := map[netip.Addr]bool{netip.MustParseAddr("192.0.2.2"): true}
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"plain", "nameserver 10.255.255.53\n", []string{"10.255.255.53"}},
		{"stub only", "nameserver 127.0.0.53\noptions edns0\n", nil},
		{"mixed", "# comment\nsearch lan\nnameserver 127.0.0.1\nnameserver 192.168.1.1\nnameserver 2001:db8::1\nnameserver 8.8.8.8\n",
			[]string{"192.168.1.1", "8.8.8.8"}},
		{"host own address", "nameserver 192.0.2.2\nnameserver 192.0.2.1\n", []string{"192.0.2.1"}},
		{"in pool", "nameserver 172.16.0.1\n", nil},
		{"mapped v4", "nameserver ::ffff:9.9.9.9\n", []string{"9.9.9.9"}},
		{"duplicates and junk", "nameserver 1.1.1.1\nnameserver 1.1.1.1\nnameserver nope\nnameserver\nnameserver 0.0.0.0\nnameserver 169.254.0.1\n",
			[]string{"1.1.1.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := usableNameservers(tc.conf, pool, local)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].String() != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestSubnet(t *testing.T) {
	tests := []struct {
		pool string
		idx  int
		want string
	}{
		{"172.16.0.0/12", 0, "172.16.0.0/24"},
		{"172.16.0.0/12", 4, "172.16.4.0/24"}, // aleph-vm's first vm_id
		{"172.16.0.0/12", 256, "172.17.0.0/24"},
		{"172.16.0.0/12", 1<<12 - 1, "172.31.255.0/24"},
		{"10.0.0.0/24", 0, "10.0.0.0/24"},
	}
	for _, tc := range tests {
		if got := subnet(netip.MustParsePrefix(tc.pool), tc.idx); got.String() != tc.want {
			t.Errorf("subnet(%s, %d) = %s, want %s", tc.pool, tc.idx, got, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no state dir", Config{}},
		{"nul in state dir", Config{StateDir: "/run/a\x00b"}},
		{"state dir too long", Config{StateDir: "/" + strings.Repeat("a", 1100)}},
		{"ipv6 pool", Config{StateDir: "/run/x", Pool: netip.MustParsePrefix("fd00::/64")}},
		{"pool smaller than a /24", Config{StateDir: "/run/x", Pool: netip.MustParsePrefix("10.0.0.0/25")}},
		{"pool too big", Config{StateDir: "/run/x", Pool: netip.MustParsePrefix("0.0.0.0/0")}},
		{"first index past the pool", Config{StateDir: "/run/x", Pool: netip.MustParsePrefix("10.0.0.0/22")}},
		{"negative first index", Config{StateDir: "/run/x", FirstIndex: -1}},
		{"bad table", Config{StateDir: "/run/x", Table: "a;flush ruleset"}},
		{"bad prefix", Config{StateDir: "/run/x", IfPrefix: "al vm"}},
		{"prefix too long", Config{StateDir: "/run/x", IfPrefix: "abcdefghijkl"}},
		{"bad uplink", Config{StateDir: "/run/x", Uplink: `eth0" accept`}},
		{"uplink is ours", Config{StateDir: "/run/x", Uplink: "alvm7"}},
		{"ipv6 dns", Config{StateDir: "/run/x", DNS: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}},
		{"too many dns", Config{StateDir: "/run/x", DNS: make([]netip.Addr, 17)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Uplink = cmpOr(tc.cfg.Uplink, "lo")
			if _, err := New(tc.cfg); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("New: got %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	m, err := New(Config{StateDir: "rel/dir", Uplink: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	c := m.cfg
	if c.Pool != DefaultPool || c.FirstIndex != DefaultFirstIndex || c.Table != DefaultTable ||
		c.IfPrefix != DefaultIfPrefix || !strings.HasPrefix(c.StateDir, "/") || m.size != 4096 {
		t.Errorf("defaults not applied: %+v size %d", c, m.size)
	}
	if _, err := New(Config{StateDir: "/run/x", Uplink: "no-such-if0"}); !errors.Is(err, ErrNoUplink) {
		t.Errorf("missing uplink: got %v, want ErrNoUplink", err)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestBadInput(t *testing.T) {
	m, err := New(Config{StateDir: t.TempDir(), Uplink: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", "..", "../x", "a/b", "-x", "a b", "a\x00", strings.Repeat("a", 201)} {
		if _, err := m.Prepare(context.Background(), id, ModeNetns); !errors.Is(err, ErrBadID) {
			t.Errorf("Prepare(%q): got %v, want ErrBadID", id, err)
		}
	}
	for _, mode := range []Mode{0, 3, -1} {
		if _, err := m.Prepare(context.Background(), "ok", mode); !errors.Is(err, ErrBadMode) {
			t.Errorf("Prepare(mode %v): got %v, want ErrBadMode", mode, err)
		}
	}
	if len(m.byIdx) != 0 {
		t.Errorf("bad input reserved addresses: %d", len(m.byIdx))
	}
}

func TestOurs(t *testing.T) {
	m := &Manager{cfg: Config{IfPrefix: "alvm"}}
	for name, want := range map[string]bool{"alvm0": true, "alvm4095": true, "alvm": false,
		"alvmx": false, "alvm1a": false, "xalvm1": false, "eth0": false, "alvm-1": false} {
		if got := m.ours(name); got != want {
			t.Errorf("ours(%q) = %v", name, got)
		}
	}
}

func TestOverlaps(t *testing.T) {
	taken := []netip.Prefix{
		netip.MustParsePrefix("172.17.0.0/16"),   // docker0
		netip.MustParsePrefix("172.16.9.128/25"), // part of a /24
		netip.MustParsePrefix("172.20.1.7/32"),   // a host route
		netip.MustParsePrefix("10.0.0.0/8"),
	}
	tests := []struct {
		p    string
		want bool
	}{
		{"172.16.4.0/24", false},
		{"172.17.0.0/24", true},
		{"172.17.255.0/24", true},
		{"172.18.0.0/24", false},
		{"172.16.9.0/24", true},
		{"172.20.1.0/24", true},
		{"172.20.2.0/24", false},
	}
	for _, tc := range tests {
		if got := overlaps(netip.MustParsePrefix(tc.p), taken); got != tc.want {
			t.Errorf("overlaps(%s) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestModeAndMAC(t *testing.T) {
	for m, want := range map[Mode]string{ModeNetns: "netns", ModeTap: "tap", 7: "mode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(m), got, want)
		}
	}
	mac, err := net.ParseMAC(GuestMAC)
	if err != nil {
		t.Fatal(err)
	}
	if mac[0]&2 == 0 || mac[0]&1 != 0 {
		t.Errorf("GuestMAC %s must be locally administered unicast", mac)
	}
}

func TestIPv4Mask(t *testing.T) {
	for bits, want := range map[int]string{8: "ff000000", 12: "fff00000", 24: "ffffff00", 20: "fffff000"} {
		if got := net.IPMask(ipv4Mask(bits)).String(); got != want {
			t.Errorf("ipv4Mask(%d) = %s, want %s", bits, got, want)
		}
	}
}
