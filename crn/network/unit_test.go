package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
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
		{"172.16.0.0/12", 0, "172.16.0.0/30"},
		{"172.16.0.0/12", 1, "172.16.0.4/30"},
		{"172.16.0.0/12", 64, "172.16.1.0/30"},
		{"172.16.0.0/12", 1<<18 - 1, "172.31.255.252/30"},
		{"10.0.0.0/30", 0, "10.0.0.0/30"},
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
		{"space in state dir", Config{StateDir: "/run/a b"}},
		{"ipv6 pool", Config{StateDir: "/run/x", Pool: netip.MustParsePrefix("fd00::/64")}},
		{"pool too small", Config{StateDir: "/run/x", Pool: netip.MustParsePrefix("10.0.0.0/31")}},
		{"pool too big", Config{StateDir: "/run/x", Pool: netip.MustParsePrefix("0.0.0.0/0")}},
		{"bad table", Config{StateDir: "/run/x", Table: "a;flush ruleset"}},
		{"bad prefix", Config{StateDir: "/run/x", IfPrefix: "al vm"}},
		{"prefix too long", Config{StateDir: "/run/x", IfPrefix: "abcdefghijk"}},
		{"bad uplink", Config{StateDir: "/run/x", Uplink: `eth0" accept`}},
		{"ipv6 dns", Config{StateDir: "/run/x", DNS: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Uplink = cmpOr(tc.cfg.Uplink, "lo")
			_, err := New(tc.cfg)
			if errors.Is(err, ErrMissing) {
				t.Skip("ip/nft/nsenter/unshare not installed")
			}
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("New: got %v, want ErrBadConfig", err)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestBadIDs(t *testing.T) {
	m, err := New(Config{StateDir: t.TempDir(), Uplink: "lo"})
	if errors.Is(err, ErrMissing) {
		t.Skip("ip/nft/nsenter/unshare not installed")
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", ".", "..", "../x", "a/b", "-x", "a b", strings.Repeat("a", 201)} {
		if _, err := m.Prepare(context.Background(), id); !errors.Is(err, ErrBadID) {
			t.Errorf("Prepare(%q): got %v, want ErrBadID", id, err)
		}
	}
	if len(m.byIdx) != 0 {
		t.Errorf("bad ids reserved addresses: %d", len(m.byIdx))
	}
}

func TestOurs(t *testing.T) {
	m := &Manager{cfg: Config{IfPrefix: "alvm"}}
	for name, want := range map[string]bool{"alvm0": true, "alvm262143": true, "alvm": false,
		"alvmx": false, "alvm1a": false, "xalvm1": false, "eth0": false} {
		if got := m.ours(name); got != want {
			t.Errorf("ours(%q) = %v", name, got)
		}
	}
}

func TestRulesetParses(t *testing.T) {
	m := &Manager{cfg: Config{Table: "aleph_net", IfPrefix: "alvm", Uplink: "eth0", Pool: DefaultPool}, ruleIn: "alvm*"}
	n := &Net{Interface: "alvm3", GuestIP: netip.MustParseAddr("172.16.0.14")}
	rs := m.ruleset([]*Net{n})
	for _, want := range []string{`"alvm3" . 172.16.0.14`, `oifname "eth0" masquerade`, "ip saddr 172.16.0.0/12",
		`iifname "alvm*" drop`} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft not installed: syntax not checked")
	}
	cmd := exec.Command(nft, "-c", "-f", "-")
	cmd.Stdin = strings.NewReader(rs)
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("nft -c needs root here (%v: %s)", err, out)
		}
		t.Fatalf("nft -c rejects the ruleset: %v: %s", err, out)
	}
}

func TestCmdError(t *testing.T) {
	m := &Manager{}
	err := m.run(context.Background(), "line1\nline2\n", "sh", "-c", "echo boom >&2; exit 3")
	var ce *CmdError
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v", err, err)
	}
	for _, want := range []string{"sh -c", "exit status 3", "boom", "line1; line2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
