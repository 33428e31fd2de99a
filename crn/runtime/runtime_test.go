package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// moduleDir is the go-aleph source tree, for BuildInit.
const moduleDir = "../.."

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
}

// buildInit compiles aleph-init (cached by the go build cache after the
// first test).
func buildInit(t *testing.T) string {
	t.Helper()
	needTools(t, "go")
	out := filepath.Join(t.TempDir(), InitName)
	if err := BuildInit(testContext(t, 5*time.Minute), moduleDir, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// minimalOptions are the options of a runtime from the host's Debian
// busybox-static; the test skips when a tool or input is missing.
func minimalOptions(t *testing.T) Options {
	t.Helper()
	needTools(t, "mksquashfs", "unsquashfs")
	for _, p := range []string{DefaultBusybox, DefaultCACerts} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s missing (apt-get install busybox-static ca-certificates): %v", p, err)
		}
	}
	return Options{
		Out:    filepath.Join(t.TempDir(), "runtime.squashfs"),
		Init:   buildInit(t),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func build(t *testing.T, o Options) *Result {
	t.Helper()
	start := time.Now()
	res, err := Build(testContext(t, 5*time.Minute), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %v: %d bytes, %d entries, sha256 %s", res.Path, time.Since(start).Round(time.Millisecond),
		res.Size, res.Files, res.SHA256)
	sum, size := fileHash(t, res.Path)
	if res.SHA256 != sum || res.Size != size {
		t.Fatalf("result says %s/%d, file is %s/%d", res.SHA256, res.Size, sum, size)
	}
	if res.Python != o.Python {
		t.Errorf("Python = %v, want %v", res.Python, o.Python)
	}
	return res
}

func fileHash(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), int64(len(b))
}

type entry struct {
	mode, owner, date, target string
}

// listImage reads `unsquashfs -lln`: guest path → entry, "/" excluded.
func listImage(t *testing.T, image string) map[string]entry {
	t.Helper()
	out, err := exec.Command("unsquashfs", "-lln", image).Output()
	if err != nil {
		t.Fatalf("unsquashfs -lln: %v", err)
	}
	entries := make(map[string]entry)
	for line := range strings.Lines(string(out)) {
		// mode uid/gid size date time squashfs-root/path [-> target]
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[5], "squashfs-root") {
			continue
		}
		p := strings.TrimPrefix(f[5], "squashfs-root")
		if p == "" {
			continue
		}
		e := entry{mode: f[0], owner: f[1], date: f[3] + " " + f[4]}
		if len(f) == 8 && f[6] == "->" {
			e.target = f[7]
		}
		entries[p] = e
	}
	if len(entries) == 0 {
		t.Fatalf("unsquashfs listed nothing: %s", out)
	}
	return entries
}

func extract(t *testing.T, image string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("unsquashfs", "-q", "-n", "-d", dir, image).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v: %s", err, out)
	}
	return dir
}

// inChroot runs argv inside root with a clean environment.
func inChroot(t *testing.T, root string, argv ...string) string {
	t.Helper()
	cmd := exec.CommandContext(testContext(t, time.Minute), argv[0], argv[1:]...)
	cmd.Path, cmd.Err = argv[0], nil // the runtime's, not the host's
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v in the runtime: %v: %s", argv, err, out)
	}
	return string(out)
}

func TestBuildReproducible(t *testing.T) {
	o := minimalOptions(t)
	first := build(t, o)
	o.Out = filepath.Join(t.TempDir(), "again", "runtime.squashfs")
	second := build(t, o)
	if first.SHA256 != second.SHA256 || first.Size != second.Size {
		t.Fatalf("two builds differ: %s (%d) and %s (%d)", first.SHA256, first.Size, second.SHA256, second.Size)
	}
	// Nothing but the image and its manifest is left next to it, and the
	// manifests are identical too.
	var manifests [][]byte
	for _, r := range []*Result{first, second} {
		names, err := os.ReadDir(filepath.Dir(r.Path))
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 2 || r.Manifest != r.Path+".json" {
			t.Errorf("output dir holds %v, manifest %s; want the image and its manifest", names, r.Manifest)
		}
		b, err := os.ReadFile(r.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		manifests = append(manifests, b)
	}
	if !bytes.Equal(manifests[0], manifests[1]) {
		t.Errorf("manifests differ:\n%s\n%s", manifests[0], manifests[1])
	}
	m, err := ReadManifest(first.Path)
	if err != nil {
		t.Fatal(err)
	}
	initSum, _ := fileHash(t, o.Init)
	busyboxSum, _ := fileHash(t, DefaultBusybox)
	if m.SHA256 != first.SHA256 || m.Size != first.Size || m.Variant != "minimal" || m.AlephInitSHA256 != initSum ||
		m.BusyboxSHA256 != busyboxSum || m.CACertsSHA256 == "" || m.Suite != "" || len(m.Packages) != 0 ||
		!strings.HasPrefix(m.BuiltWith["mksquashfs"], "mksquashfs version") {
		t.Errorf("manifest = %+v", m)
	}
}

func TestMinimalContents(t *testing.T) {
	o := minimalOptions(t)
	res := build(t, o)
	entries := listImage(t, res.Path)
	if res.Files != len(entries) {
		t.Errorf("Files = %d, image has %d entries", res.Files, len(entries))
	}
	want := map[string]string{ // path → mode or "-> target"
		"/bin": "-> usr/bin", "/sbin": "-> usr/sbin", "/lib": "-> usr/lib",
		"/usr/bin/busybox": "-rwxr-xr-x", "/usr/sbin/aleph-init": "-rwxr-xr-x",
		"/usr/bin/sh": "-> /usr/bin/busybox", "/usr/bin/env": "-> /usr/bin/busybox",
		"/etc/ssl/certs/ca-certificates.crt": "-rw-r--r--",
		"/usr/lib/ssl/cert.pem":              "-> /etc/ssl/certs/ca-certificates.crt",
		"/etc/passwd":                        "-rw-r--r--", "/etc/group": "-rw-r--r--", "/etc/hosts": "-rw-r--r--",
		"/etc/resolv.conf": "-rw-r--r--", "/etc/os-release": "-rw-r--r--", "/etc/nsswitch.conf": "-rw-r--r--",
		"/proc": "dr-xr-xr-x", "/sys": "dr-xr-xr-x", "/dev": "drwxr-xr-x", "/tmp": "drwxrwxrwt",
		"/run": "drwxr-xr-x", "/run/aleph": "drwxr-xr-x", "/opt/code": "drwxr-xr-x", "/data": "drwxr-xr-x",
		"/mnt": "drwxr-xr-x", "/root": "drwx------", "/var/tmp": "drwxrwxrwt",
	}
	for p, w := range want {
		e, ok := entries[p]
		switch {
		case !ok:
			t.Errorf("%s missing", p)
		case strings.HasPrefix(w, "-> "):
			if e.mode[0] != 'l' || e.target != w[3:] {
				t.Errorf("%s = %s -> %q, want a link %s", p, e.mode, e.target, w)
			}
		case e.mode != w:
			t.Errorf("%s mode = %s, want %s", p, e.mode, w)
		}
	}
	var top []string
	for p, e := range entries {
		if e.owner != "0/0" || e.date != "1970-01-01 00:00" {
			t.Errorf("%s: owner %s, time %s; want 0/0 at the epoch", p, e.owner, e.date)
		}
		if e.mode[0] == 'l' && e.target == "" {
			t.Errorf("%s: link without target", p)
		}
		if strings.Count(p, "/") == 1 {
			top = append(top, p)
		}
		if strings.Contains(p, "runtime-stage") || strings.Contains(e.target, "runtime-stage") {
			t.Errorf("staging path leaked: %s -> %s", p, e.target)
		}
	}
	slices.Sort(top)
	wantTop := []string{"/bin", "/data", "/dev", "/etc", "/lib", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var"}
	if !slices.Equal(top, wantTop) {
		t.Errorf("top-level entries = %v, want %v", top, wantTop)
	}
	// Every busybox applet has a link (root-level linuxrc aside).
	applets, err := busyboxApplets(testContext(t, time.Minute), DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if rel := canonical(a); strings.Contains(rel, "/") && rel != "usr/bin/busybox" {
			if e, ok := entries["/"+rel]; !ok || e.target != "/usr/bin/busybox" {
				t.Errorf("applet %s: %+v", a, e)
			}
		}
	}
	if _, ok := entries["/linuxrc"]; ok {
		t.Error("/linuxrc should not be linked")
	}
}

func TestMinimalRunsInChroot(t *testing.T) {
	needRoot(t)
	o := minimalOptions(t)
	root := extract(t, build(t, o).Path)
	if out := inChroot(t, root, "/bin/sh", "-c", "echo ok"); out != "ok\n" {
		t.Fatalf("sh said %q", out)
	}
	if out := inChroot(t, root, "/bin/sh", "-c", "id -u; test -s /etc/ssl/certs/ca-certificates.crt && echo certs; grep ^ID= /etc/os-release"); out != "0\ncerts\nID=go-aleph\n" {
		t.Fatalf("inside the runtime: %q", out)
	}
	// aleph-init is runnable (static) in the image.
	cmd := exec.Command("/sbin/aleph-init", "-h")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	out, _ := cmd.CombinedOutput()
	if !bytes.Contains(out, []byte("Usage of aleph-init")) {
		t.Fatalf("aleph-init -h: %s", out)
	}
}

// dynamicELF finds a dynamically linked executable on the host.
func dynamicELF(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/env", "/usr/bin/ls", "/bin/ls", "/usr/bin/python3"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		dyn := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
		f.Close()
		if dyn {
			return p
		}
	}
	t.Skip("no dynamically linked executable found")
	return ""
}

func TestBadInputsRefused(t *testing.T) {
	o := minimalOptions(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noExec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dynamic := dynamicELF(t)
	tests := []struct {
		name   string
		change func(*Options)
		is     error
		says   string
	}{
		{"missing init", func(o *Options) { o.Init = filepath.Join(dir, "nope") }, fs.ErrNotExist, "aleph-init " + filepath.Join(dir, "nope")},
		{"dynamic init", func(o *Options) { o.Init = dynamic }, ErrNotStatic, "aleph-init " + dynamic + ": not a static executable"},
		{"script init", func(o *Options) { o.Init = script }, ErrNotELF, "aleph-init " + script},
		{"init not executable", func(o *Options) { o.Init = noExec }, ErrNotELF, "not executable"},
		{"init is a directory", func(o *Options) { o.Init = dir }, ErrNotELF, "not a regular file"},
		{"dynamic busybox", func(o *Options) { o.Busybox = dynamic }, ErrNotStatic, "busybox " + dynamic},
		{"missing certificates", func(o *Options) { o.CACerts = filepath.Join(dir, "ca.crt") }, fs.ErrNotExist, "ca certificates"},
		{"no init", func(o *Options) { o.Init = "" }, nil, "no aleph-init"},
		{"no output", func(o *Options) { o.Out = "" }, nil, "no output path"},
		{"bad suite", func(o *Options) { o.Python, o.Suite = true, "../etc" }, ErrInvalid, `suite "../etc"`},
		{"long suite", func(o *Options) { o.Python, o.Suite = true, strings.Repeat("a", 65) }, ErrInvalid, "suite"},
		{"ftp mirror", func(o *Options) { o.Python, o.Mirror = true, "ftp://deb.debian.org/debian" }, ErrInvalid, "want an http, https or file URL"},
		{"mirror with a space", func(o *Options) { o.Python, o.Mirror = true, "http://deb.debian.org/debian main" }, ErrInvalid, "spaces"},
		{"mirror without host", func(o *Options) { o.Python, o.Mirror = true, "http:///debian" }, ErrInvalid, "no host"},
		{"mirror with query", func(o *Options) { o.Python, o.Mirror = true, "http://deb.debian.org/debian?x=1" }, ErrInvalid, "no query"},
		{"relative file mirror", func(o *Options) { o.Python, o.Mirror = true, "file:mirror" }, ErrInvalid, "file:///"},
		{"huge mirror", func(o *Options) { o.Python, o.Mirror = true, "http://x/"+strings.Repeat("a", 1100) }, ErrInvalid, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := o
			bad.Out = filepath.Join(t.TempDir(), "out", "runtime.squashfs")
			tt.change(&bad)
			res, err := Build(testContext(t, time.Minute), bad)
			if err == nil {
				t.Fatalf("built %+v", res)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			if bad.Out != "" {
				if _, err := os.Stat(filepath.Dir(bad.Out)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("output dir created for a refused build: %v", err)
				}
			}
		})
	}
}

func TestBuildInitReproducible(t *testing.T) {
	a := buildInit(t)
	b := buildInit(t)
	sa, _ := fileHash(t, a)
	sb, _ := fileHash(t, b)
	if sa != sb {
		t.Fatalf("two aleph-init builds differ: %s, %s", sa, sb)
	}
	if err := checkStatic(a); err != nil {
		t.Fatal(err)
	}
	err := BuildInit(testContext(t, time.Minute), t.TempDir(), filepath.Join(t.TempDir(), "x"))
	if err == nil || !strings.Contains(err.Error(), "not the go-aleph source tree") {
		t.Fatalf("build outside the source tree: %v", err)
	}
}

func TestFindInit(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if p, err := FindInit(); !errors.Is(err, ErrNoInit) || !strings.Contains(err.Error(), "PATH") {
		t.Fatalf("FindInit with nothing installed = %q, %v", p, err)
	}
	bin := filepath.Join(dir, InitName)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := FindInit()
	if err != nil || p != bin {
		t.Fatalf("FindInit = %q, %v; want %s", p, err, bin)
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/bin/sh", "usr/bin/sh"},
		{"/sbin/aleph-init", "usr/sbin/aleph-init"},
		{"/lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"},
		{"/lib", "usr/lib"},
		{"/usr/bin/python3", "usr/bin/python3"},
		{"usr/bin/[", "usr/bin/["},
		{"/etc/../bin/x", "usr/bin/x"},
		{"/binary/x", "binary/x"},
		{"/", ""},
		{"/.", ""},
	}
	for _, tt := range tests {
		if got := canonical(tt.in); got != tt.want {
			t.Errorf("canonical(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
