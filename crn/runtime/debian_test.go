package runtime

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDpkgStatus(t *testing.T) {
	tests := []struct {
		name, status string
		want         map[string]string
		wantErr      string
	}{
		{
			name: "installed, removed and multi-line fields",
			status: "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u13\n" +
				"Description: GNU C Library\n shared libraries\n .\n more\n\n" +
				"Package: gone\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1\n\n\n" +
				"Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\nArchitecture: amd64\n",
			want: map[string]string{"libc6": "2.36-9+deb12u13", "python3": "3.11.2-1+b1"},
		},
		{
			name: "two architectures",
			status: "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n\n" +
				"Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2\n\n" +
				"Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2025b\n",
			want: map[string]string{"libc6:amd64": "2", "libc6:i386": "2", "tzdata": "2025b"},
		},
		{name: "malformed", status: "Package: a\nno colon here\n", wantErr: "malformed line"},
		{name: "empty", status: "", want: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDpkgStatus(strings.NewReader(tt.status))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// writeTree makes files (path → content; a trailing / is a directory).
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// listTree lists a tree's paths, directories with a trailing /.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestNormalize(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"debootstrap/debootstrap.log":                   "x",
		"etc/shadow":                                    "root:*:20411:0:99999:7:::\nnobody:*::0:99999:7:::\nbad line\n",
		"etc/shadow-":                                   "old",
		"etc/passwd":                                    "root:x:0:0:root:/root:/bin/bash\n",
		"etc/passwd-":                                   "old",
		"etc/hostname":                                  "buildhost\n",
		"etc/resolv.conf":                               "nameserver 10.0.0.1\n",
		"etc/machine-id":                                "0123456789abcdef\n",
		"var/log/dpkg.log":                              "2026-11-21 install\n",
		"var/log/apt/history.log":                       "x",
		"var/lib/dpkg/status":                           "s",
		"var/lib/dpkg/status-old":                       "s",
		"var/lib/apt/lists/deb_InRelease":               "x",
		"var/lib/apt/lists/partial/":                    "",
		"var/cache/apt/archives/bash_5.2_amd64.deb":     "x",
		"var/cache/apt/archives/partial/":               "",
		"var/cache/debconf/config.dat":                  "c",
		"var/cache/debconf/config.dat-old":              "c",
		"var/cache/ldconfig/aux-cache":                  "x",
		"dev/null":                                      "",
		"dev/pts/":                                      "",
		"run/mount/utab":                                "x",
		"run/lock/":                                     "",
		"tmp/x/y":                                       "",
		"usr/share/doc/bash/copyright":                  "GPL",
		"usr/share/doc/bash/changelog.Debian.gz":        "x",
		"usr/share/man/man1/bash.1.gz":                  "x",
		"usr/share/locale/locale.alias":                 "x",
		"usr/share/locale/de/LC_MESSAGES/bash.mo":       "x",
		"usr/lib/python3/dist-packages/fastapi/main.py": "x",
	})
	if err := os.Symlink("../proc/self/fd", filepath.Join(root, "dev", "fd")); err != nil {
		t.Fatal(err)
	}
	if err := normalize(root); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"dev/", "etc/", "etc/machine-id", "etc/passwd", "etc/shadow",
		"run/", "run/lock/", "run/mount/", "tmp/", "usr/", "usr/lib/", "usr/lib/python3/", "usr/lib/python3/dist-packages/",
		"usr/lib/python3/dist-packages/fastapi/", "usr/lib/python3/dist-packages/fastapi/main.py",
		"usr/share/", "usr/share/doc/", "usr/share/doc/bash/", "usr/share/doc/bash/copyright",
		"usr/share/locale/", "usr/share/locale/locale.alias",
		"var/", "var/cache/", "var/cache/apt/", "var/cache/apt/archives/", "var/cache/apt/archives/partial/",
		"var/cache/debconf/", "var/cache/debconf/config.dat", "var/cache/ldconfig/",
		"var/lib/", "var/lib/apt/", "var/lib/apt/lists/", "var/lib/apt/lists/partial/", "var/lib/dpkg/", "var/lib/dpkg/status",
		"var/log/", "var/log/apt/",
	}
	if got := listTree(t, root); !slices.Equal(got, want) {
		t.Errorf("after normalize:\n got %q\nwant %q", got, want)
	}
	shadow, err := os.ReadFile(filepath.Join(root, "etc", "shadow"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "root:*:19518:0:99999:7:::\nnobody:*::0:99999:7:::\nbad line\n"; string(shadow) != want {
		t.Errorf("shadow = %q, want %q", shadow, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc", "shadow")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("shadow mode changed: %v %v", fi.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc", "machine-id")); err != nil || len(b) != 0 {
		t.Errorf("machine-id = %q, %v; want empty", b, err)
	}
	// Normalizing twice changes nothing.
	if err := normalize(root); err != nil {
		t.Fatal(err)
	}
	if got := listTree(t, root); !slices.Equal(got, want) {
		t.Errorf("second normalize changed the tree: %q", got)
	}
}

func TestNormalizeRefusesLinkedShadow(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(outside, []byte("root:*:1:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, map[string]string{"etc/": ""})
	if err := os.Symlink(outside, filepath.Join(root, "etc", "shadow")); err != nil {
		t.Fatal(err)
	}
	if err := normalize(root); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("normalize with a linked shadow: %v", err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "root:*:1:0:99999:7:::\n" {
		t.Fatalf("file outside the tree changed: %q", b)
	}
}

const fakeRelease = "-----BEGIN PGP SIGNED MESSAGE-----\nOrigin: Debian\nSuite: stable\nCodename: bookworm\n" +
	"SHA256:\n 0123 45 main/binary-amd64/Packages\n"

func TestFetchRelease(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"dists/bookworm/InRelease": fakeRelease, "dists/junk/InRelease": "<html>"})
	mux := http.NewServeMux()
	mux.HandleFunc("/debian/dists/bookworm/InRelease", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(fakeRelease))
	})
	mux.HandleFunc("/debian/dists/huge/InRelease", func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range maxRelease>>20 + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tests := []struct {
		name, mirror, suite string
		wantErr             string
	}{
		{"http", srv.URL + "/debian", "bookworm", ""},
		{"file", "file://" + dir, "bookworm", ""},
		{"http 404", srv.URL + "/debian", "trixie", "404"},
		{"file missing", "file://" + dir, "trixie", "no such file"},
		{"not a release file", "file://" + dir, "junk", "not a Release file"},
		{"too large", srv.URL + "/debian", "huge", "larger than"},
		{"unreachable", "http://127.0.0.1:1/debian", "bookworm", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := fetchRelease(testContext(t, 30*time.Second), tt.mirror, tt.suite)
			if tt.wantErr == "" {
				if err != nil || string(b) != fakeRelease {
					t.Fatalf("fetchRelease = %q, %v", b, err)
				}
				return
			}
			if !errors.Is(err, ErrMirror) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want ErrMirror saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestLockCache(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockCache(testContext(t, 5*time.Second), dir)
	if err != nil {
		t.Fatal(err)
	}
	// A second build waits, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 3*lockPoll)
	defer cancel()
	if _, err := lockCache(ctx, dir); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another build") {
		t.Fatalf("second lock while held: %v", err)
	}
	// It gets the lock once the first one lets go.
	got := make(chan error, 1)
	go func() {
		u, err := lockCache(testContext(t, 10*time.Second), dir)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if _, err := lockCache(testContext(t, time.Second), filepath.Join(dir, "missing")); err == nil {
		t.Fatal("lock in a missing dir succeeded")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	d := DefaultCacheDir()
	if !filepath.IsAbs(d) || !strings.Contains(d, "go-aleph") {
		t.Fatalf("DefaultCacheDir() = %q", d)
	}
	if os.Geteuid() == 0 && d != "/var/cache/go-aleph/runtime" {
		t.Fatalf("root's cache dir = %q", d)
	}
}
