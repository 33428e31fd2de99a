package guest

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type zipEntry struct {
	name string
	body []byte
	mode os.FileMode
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		fh.SetMode(mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractZip(t *testing.T) {
	many := make([]zipEntry, 11)
	for i := range many {
		many[i] = zipEntry{name: filepath.Join("d", string(rune('a'+i))), body: []byte("x")}
	}
	tests := []struct {
		name    string
		entries []zipEntry
		limits  ZipLimits
		want    error
	}{
		{"parent escape", []zipEntry{{name: "../evil", body: []byte("x")}}, ZipLimits{}, ErrUnsafePath},
		{"nested escape", []zipEntry{{name: "a/../../evil", body: []byte("x")}}, ZipLimits{}, ErrUnsafePath},
		{"absolute", []zipEntry{{name: "/etc/evil", body: []byte("x")}}, ZipLimits{}, ErrUnsafePath},
		{"backslash", []zipEntry{{name: `..\evil`, body: []byte("x")}}, ZipLimits{}, ErrUnsafePath},
		{"symlink", []zipEntry{{name: "link", body: []byte("/etc/passwd"), mode: os.ModeSymlink | 0o777}}, ZipLimits{}, ErrUnsafePath},
		{"bomb", []zipEntry{{name: "zeros", body: make([]byte, 2<<20)}}, ZipLimits{MaxBytes: 1 << 20}, ErrZipTooLarge},
		{"bomb across files", []zipEntry{{name: "a", body: make([]byte, 600<<10)}, {name: "b", body: make([]byte, 600<<10)}}, ZipLimits{MaxBytes: 1 << 20}, ErrZipTooLarge},
		{"too many", many, ZipLimits{MaxFiles: 10}, ErrZipTooMany},
		{"ok", []zipEntry{{name: "dir/"}, {name: "dir/run", body: []byte("#!/bin/sh\n"), mode: 0o755}}, ZipLimits{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dst := filepath.Join(root, "code")
			err := ExtractZip(makeZip(t, tt.entries...), dst, tt.limits)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(root, "evil")); err == nil {
				t.Fatal("a file was written outside the destination")
			}
			if tt.want == nil {
				fi, err := os.Stat(filepath.Join(dst, "dir", "run"))
				if err != nil || fi.Mode().Perm()&0o100 == 0 {
					t.Fatalf("extracted file: %v, %v", fi, err)
				}
			}
		})
	}
}

func TestHostname(t *testing.T) {
	// Python: base64.b32encode(bytes.fromhex(h)).strip(b"=").lower()
	got, err := Hostname("d2b74aa29898457bde0560e47f7cdd4e77287e9f1f7a1456161d2fd7d5c855d7")
	if err != nil || got != "2k3uviuytbcxxxqfmdsh67g5jz3sq7u7d55bivqwdux5pvoikxlq" {
		t.Fatalf("Hostname = %q, %v", got, err)
	}
	if _, err := Hostname("abcd"); err == nil {
		t.Fatal("short hash accepted")
	}
}
