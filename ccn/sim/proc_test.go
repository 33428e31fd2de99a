package sim

import (
	"strings"
	"testing"
)

func TestParseMemStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    memStatus
		wantErr string
	}{
		{"linux", "Name:\tsim\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n", memStatus{RSS: 100 << 20, Peak: 200 << 20}, ""},
		{"absent", "Name:\tsim\n", memStatus{}, ""},
		{"no unit", "VmRSS:\t1024\n", memStatus{}, "not a size"},
		{"bad number", "VmRSS:\tlots kB\n", memStatus{}, "not a size"},
		{"negative", "VmHWM:\t-5 kB\n", memStatus{}, "not a size"},
		{"too large", strings.Repeat("x", maxStatusSize+1), memStatus{}, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemStatus([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestReadMemStatus(t *testing.T) {
	m := readMemStatus()
	if m.RSS < 0 || m.Peak < 0 {
		t.Fatalf("negative sizes %+v", m)
	}
}

func FuzzParseMemStatus(f *testing.F) {
	f.Add([]byte("VmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"))
	f.Add([]byte("VmRSS:\t1024\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMemStatus(b)
		if err == nil && (m.RSS < 0 || m.Peak < 0) {
			t.Fatalf("negative sizes %+v from %q", m, b)
		}
	})
}
