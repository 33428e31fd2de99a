package kernel

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fakeKernelDir writes a small kernel directory as Fetch lays it out.
func fakeKernelDir(t *testing.T) string {
	t.Helper()
	const v = "6.1.0-56-cloud-amd64"
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ModulesDir), 0o755); err != nil {
		t.Fatal(err)
	}
	vm := fakeVmlinux(elf.EM_X86_64, xenNote(testEntry), 4096)
	if err := os.WriteFile(filepath.Join(dir, VmlinuxName), vm, 0o644); err != nil {
		t.Fatal(err)
	}
	files := writeModules(t, filepath.Join(dir, ModulesDir), v, map[string]string{"virtio_ring": "", "virtio": "virtio_ring"})
	m := manifest{
		Package: "linux-image-" + v, PackageVersion: "6.1.192-2", Version: v,
		DebSHA256: sha256Hex([]byte("deb")), VmlinuxSHA256: sha256Hex(vm),
		Modules: []string{"virtio_ring", "virtio"}, ModuleSHA256: map[string]string{}, Builtin: []string{"ext4"},
	}
	for name, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m.ModuleSHA256[name] = sha256Hex(b)
	}
	writeManifest(t, dir, &m)
	return dir
}

func writeManifest(t *testing.T, dir string, m *manifest) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := fakeKernelDir(t)
	k, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Vmlinux != filepath.Join(dir, VmlinuxName) || k.Version != "6.1.0-56-cloud-amd64" || len(k.Modules) != 2 ||
		k.Modules[0].Name != "virtio_ring" || k.Modules[1].Path != filepath.Join(dir, ModulesDir, "virtio.ko") {
		t.Fatalf("Load = %+v", k)
	}
	if !k.Has([]string{"virtio", "ext4", "virtio-ring"}) || k.Has([]string{"virtio_net"}) {
		t.Error("Has answers wrong")
	}

	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		is     error
	}{
		{"no manifest", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ManifestName)) }, fs.ErrNotExist},
		{"vmlinux changed", func(t *testing.T, dir string) { appendByte(t, filepath.Join(dir, VmlinuxName)) }, ErrCorrupt},
		{"vmlinux missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, VmlinuxName)) }, ErrCorrupt},
		{"module changed", func(t *testing.T, dir string) { appendByte(t, filepath.Join(dir, ModulesDir, "virtio.ko")) }, ErrCorrupt},
		{"module missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ModulesDir, "virtio_ring.ko")) }, ErrCorrupt},
		{"manifest not JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, ManifestName), []byte("{"), 0o644)
		}, ErrCorrupt},
		{"module name with path", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *manifest) { m.Modules[0] = "../vmlinux" })
		}, ErrCorrupt},
		{"module twice", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *manifest) { m.Modules[1] = m.Modules[0] })
		}, ErrCorrupt},
		{"bad hash", func(t *testing.T, dir string) { editManifest(t, dir, func(m *manifest) { m.VmlinuxSHA256 = "abc" }) }, ErrCorrupt},
		{"bad package", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *manifest) { m.Package = "linux-image-*" })
		}, ErrCorrupt},
		{"bad version", func(t *testing.T, dir string) { editManifest(t, dir, func(m *manifest) { m.Version = "../x" }) }, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fakeKernelDir(t)
			tt.damage(t, dir)
			if _, err := Load(dir); !errors.Is(err, tt.is) {
				t.Fatalf("Load error = %v, want %v", err, tt.is)
			}
		})
	}
}

func appendByte(t *testing.T, p string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
}

func editManifest(t *testing.T, dir string, edit func(*manifest)) {
	t.Helper()
	m, err := readManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	writeManifest(t, dir, m)
}

func TestFetchRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious.txt")
	if err := os.WriteFile(precious, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(testContext(t, time.Minute), Options{Dir: dir, Package: "linux-image-6.1.0-56-cloud-amd64"})
	if err == nil || !strings.Contains(err.Error(), "refusing to replace") {
		t.Fatalf("Fetch into a foreign dir: %v", err)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "keep" {
		t.Fatalf("foreign file touched: %q, %v", b, err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := Fetch(testContext(t, time.Minute), Options{Dir: file, Package: "linux-image-6.1.0-56-cloud-amd64"}); err == nil ||
		!strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Fetch into a file: %v", err)
	}
}

func TestFetchBadPackage(t *testing.T) {
	for _, p := range []string{"linux-image-6.1.0-*-cloud-amd64", "bash", "-y"} {
		if _, err := Fetch(testContext(t, time.Minute), Options{Dir: t.TempDir(), Package: p}); !errors.Is(err, ErrBadPackage) {
			t.Errorf("Fetch(%q) error = %v, want ErrBadPackage", p, err)
		}
	}
}

// checkKernel verifies a fetched kernel against the facts QEMU and the
// guest's init rely on.
func checkKernel(t *testing.T, k *Kernel) {
	t.Helper()
	f, err := os.Open(k.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	entry, err := PVHEntry(f, fi.Size())
	if err != nil {
		t.Fatalf("vmlinux: %v", err)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatalf("debug/elf cannot read vmlinux: %v", err)
	}
	if ef.Machine != elf.EM_X86_64 || ef.Type != elf.ET_EXEC {
		t.Fatalf("vmlinux is %v %v", ef.Machine, ef.Type)
	}
	t.Logf("%s %s: vmlinux %d bytes, PVH entry %#x, modules %d", k.Package, k.Version, fi.Size(), entry, len(k.Modules))
	if !k.Has(WantedModules()) {
		t.Errorf("kernel lacks wanted modules: have %v + builtin %v, want %v", k.Modules, k.Builtin, WantedModules())
	}
	names := make([]string, len(k.Modules))
	for i, m := range k.Modules {
		names[i] = m.Name
		if m.Path != filepath.Join(k.Dir, ModulesDir, m.Name+".ko") {
			t.Errorf("module %s at %s", m.Name, m.Path)
		}
	}
	checkOrder(t, names, func(name string) []string {
		mi, err := ReadModinfo(filepath.Join(k.Dir, ModulesDir, name+".ko"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(mi.Vermagic, k.Version+" ") {
			t.Errorf("module %s vermagic %q, kernel %s", name, mi.Vermagic, k.Version)
		}
		return mi.Depends
	})
	entries, err := os.ReadDir(filepath.Join(k.Dir, ModulesDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(k.Modules) {
		t.Errorf("%d files in modules/, manifest lists %d", len(entries), len(k.Modules))
	}
	m, err := readManifest(filepath.Join(k.Dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if m.Package != k.Package || !slices.Equal(m.Modules, names) || m.VmlinuxSHA256 != k.VmlinuxSHA256 {
		t.Errorf("manifest %+v does not match kernel %+v", m, k)
	}
}

// TestFetchedKernel checks a kernel fetched by `alephd runtime kernel`
// (ALEPH_KERNEL_DIR, else the default directory).
func TestFetchedKernel(t *testing.T) {
	dir := os.Getenv("ALEPH_KERNEL_DIR")
	if dir == "" {
		dir = DefaultDir()
	}
	k, err := Load(dir)
	if errors.Is(err, ErrNoKernel) {
		t.Skipf("no fetched kernel in %s (run alephd runtime kernel, or set ALEPH_KERNEL_DIR): %v", dir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	checkKernel(t, k)
}

// TestFetch downloads the kernel package for real; it skips when apt
// cannot download (no network or no apt).
func TestFetch(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads a ~27 MB package")
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "kernel")
	ctx := testContext(t, 10*time.Minute)
	start := time.Now()
	k, err := Fetch(ctx, Options{Dir: dir, Logger: testLogger(t)})
	if errors.Is(err, ErrDownload) || errors.Is(err, ErrPackageNotFound) {
		t.Skipf("cannot download the kernel package here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched in %v", time.Since(start))
	checkKernel(t, k)
	before, err := os.Stat(k.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}

	// Again: nothing is downloaded or rewritten.
	k2, err := Fetch(ctx, Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(k2.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("second Fetch rewrote the kernel")
	}

	// Force: a fresh copy swapped in, same content, no work dirs left.
	k3, err := Fetch(ctx, Options{Dir: dir, Package: k.Package, Force: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	forced, err := os.Stat(k3.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, forced) || k3.VmlinuxSHA256 != k.VmlinuxSHA256 || k3.DebSHA256 != k.DebSHA256 {
		t.Errorf("forced Fetch: same file %v, hashes %s/%s", os.SameFile(before, forced), k3.VmlinuxSHA256, k.VmlinuxSHA256)
	}
	left, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 {
		t.Errorf("work directories left next to the kernel: %v", left)
	}
}

func TestFetchUnknownPackage(t *testing.T) {
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	_, err := Fetch(testContext(t, time.Minute), Options{Dir: t.TempDir(), Package: "linux-image-0.0.0-0-nonexistent-amd64"})
	if !errors.Is(err, ErrPackageNotFound) || !strings.Contains(err.Error(), "apt-get update") {
		t.Fatalf("Fetch of an unknown package: %v, want ErrPackageNotFound telling to run apt-get update", err)
	}
}

func TestRemoveStaleWork(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "kernel")
	stale := filepath.Join(parent, ".kernel-fetch-1")
	fresh := filepath.Join(parent, ".kernel-fetch-2")
	other := filepath.Join(parent, ".other-fetch-1")
	for _, d := range []string{stale, fresh, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleWork)
	for _, d := range []string{stale, other} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleWork(testLogger(t), dir)
	for d, want := range map[string]bool{stale: false, fresh: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", d, err == nil, want)
		}
	}
}
