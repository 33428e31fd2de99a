package vmboot

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	debian := "console=ttyS0 panic=-1 quiet tsc=reliable tsc_early_khz=2596122 "
	tests := []struct {
		name, in string
		want     Cmdline
		vm       bool
	}{
		{"empty", "", Cmdline{}, false},
		{"host kernel", "BOOT_IMAGE=/vmlinuz root=UUID=x ro quiet", Cmdline{}, false},
		{"serial", debian + "aleph.link=serial\n", Cmdline{Link: Link{Kind: LinkSerial}}, true},
		{"vsock", "aleph.link=vsock:52", Cmdline{Link: Link{Kind: LinkVsock, Port: 52}}, true},
		{"vsock max", "aleph.link=vsock:4294967294", Cmdline{Link: Link{Kind: LinkVsock, Port: 4294967294}}, true},
		{"debug", "aleph.link=serial aleph.debug=1", Cmdline{Link: Link{Kind: LinkSerial}, Debug: true}, true},
		{"debug bare", "aleph.debug aleph.link=serial", Cmdline{Link: Link{Kind: LinkSerial}, Debug: true}, true},
		{"debug off", "aleph.debug=0 aleph.link=serial", Cmdline{Link: Link{Kind: LinkSerial}}, true},
		{"canary alone", "aleph.canary=1", Cmdline{Canary: true}, true},
		{"last wins", "aleph.link=vsock:9 aleph.link=serial", Cmdline{Link: Link{Kind: LinkSerial}}, true},
		{"unknown keys ignored", "aleph.future=x aleph.link=serial alephlink=bogus", Cmdline{Link: Link{Kind: LinkSerial}}, true},
		{"quotes", `foo="a b aleph.link=vsock:3" aleph.link="serial"`, Cmdline{Link: Link{Kind: LinkSerial}}, true},
		{"tabs", "\taleph.link=serial\t\taleph.canary=1", Cmdline{Link: Link{Kind: LinkSerial}, Canary: true}, true},
		{"after -- is init's", "aleph.link=serial -- aleph.link=bogus aleph.debug=1", Cmdline{Link: Link{Kind: LinkSerial}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCmdline(tt.in)
			if err != nil {
				t.Fatalf("ParseCmdline(%q): %v", tt.in, err)
			}
			if got != tt.want || got.VM() != tt.vm {
				t.Fatalf("ParseCmdline(%q) = %+v (vm %v), want %+v (vm %v)", tt.in, got, got.VM(), tt.want, tt.vm)
			}
		})
	}
}

func TestParseCmdlineErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"aleph.link=", `unknown link ""`},
		{"aleph.link", `unknown link ""`},
		{"aleph.link=virtio", `unknown link "virtio"`},
		{"aleph.link=vsock:", `bad vsock port ""`},
		{"aleph.link=vsock:0", `bad vsock port "0"`},
		{"aleph.link=vsock:052", `bad vsock port "052"`},
		{"aleph.link=vsock:-1", `bad vsock port "-1"`},
		{"aleph.link=vsock:4294967295", `bad vsock port "4294967295"`},
		{"aleph.link=vsock:4294967296", `bad vsock port "4294967296"`},
		{"aleph.link=vsock:1x", `bad vsock port "1x"`},
		{"aleph.debug=maybe", `aleph.debug: bad flag value "maybe"`},
		{"aleph.canary=2", `aleph.canary: bad flag value "2"`},
		{strings.Repeat("x", MaxCmdline+1), "limit"},
	}
	for _, tt := range tests {
		_, err := ParseCmdline(tt.in)
		if !errors.Is(err, ErrBadCmdline) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCmdline(%.40q) = %v, want ErrBadCmdline with %q", tt.in, err, tt.want)
		}
	}
}

func TestCmdlineString(t *testing.T) {
	c := Cmdline{Link: Link{Kind: LinkVsock, Port: 1024}, Debug: true, Canary: true}
	if got, want := c.String(), "aleph.link=vsock:1024 aleph.debug=1 aleph.canary=1"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

// FuzzParseCmdline: no panic, and what parses renders back to the same.
func FuzzParseCmdline(f *testing.F) {
	for _, s := range []string{"", "aleph.link=serial", "aleph.link=vsock:52 aleph.debug=1", `a="b c" aleph.canary -- x`,
		"aleph.link=vsock:4294967295", "\x00aleph.debug=0\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCmdline(s)
		if err != nil {
			if !errors.Is(err, ErrBadCmdline) {
				t.Fatalf("error %v is not ErrBadCmdline", err)
			}
			return
		}
		again, err := ParseCmdline(c.String())
		if err != nil || again != c {
			t.Fatalf("round trip of %+v via %q = %+v, %v", c, c.String(), again, err)
		}
	})
}
