package guest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []string
		want    string // "" means the file is not written
	}{
		{"ipv4 and ipv6", []string{"9.9.9.9", "2620:fe::fe"}, "nameserver 9.9.9.9\nnameserver 2620:fe::fe\n"},
		{"options are not injected", []string{"1.1.1.1\noptions ndots:15", "1.0.0.1"}, "nameserver 1.0.0.1\n"},
		{"nothing usable", []string{"example.org"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "resolv.conf")
			if err := writeResolvConf(p, tc.servers); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("written: %q", b)
				}
				return
			}
			if string(b) != tc.want {
				t.Fatalf("got %q, want %q", b, tc.want)
			}
		})
	}
}
