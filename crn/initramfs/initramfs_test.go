package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/kernel"
)

// entry is one archive member as the test reader sees it.
type entry struct {
	name         string
	ino, mode    uint32
	uid, gid     uint32
	nlink, mtime uint32
	rmaj, rmin   uint32
	data         []byte
}

// readNewc parses a newc archive independently of the writer, failing on
// anything malformed, and returns the entries before the trailer.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) {
			t.Fatalf("truncated header at %d", off)
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		e := entry{ino: field(0), mode: field(1), uid: field(2), gid: field(3), nlink: field(4), mtime: field(5),
			rmaj: field(9), rmin: field(10)}
		size, namesize := int(field(6)), int(field(11))
		if field(12) != 0 {
			t.Fatalf("check field set at %d", off)
		}
		nameEnd := off + 110 + namesize
		if namesize == 0 || nameEnd > len(b) || b[nameEnd-1] != 0 {
			t.Fatalf("bad name at %d", off)
		}
		e.name = string(b[off+110 : nameEnd-1])
		dataAt := align(nameEnd)
		if dataAt+size > len(b) {
			t.Fatalf("%s: data beyond the archive", e.name)
		}
		e.data = b[dataAt : dataAt+size]
		off = align(dataAt + size)
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

// fakeELF writes a header-only x86-64 ELF of type typ; interp adds a
// PT_INTERP program header, as a dynamically linked binary has.
func fakeELF(t *testing.T, dir, name string, typ elf.Type, machine elf.Machine, interp bool, perm os.FileMode) string {
	t.Helper()
	le := binary.LittleEndian
	b := make([]byte, 64)
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS], b[elf.EI_DATA], b[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	le.PutUint16(b[0x10:], uint16(typ))
	le.PutUint16(b[0x12:], uint16(machine))
	le.PutUint32(b[0x14:], uint32(elf.EV_CURRENT))
	le.PutUint16(b[0x34:], 64)
	if interp {
		le.PutUint64(b[0x20:], 64)
		le.PutUint16(b[0x36:], 56)
		le.PutUint16(b[0x38:], 1)
		p := make([]byte, 56)
		le.PutUint32(p, uint32(elf.PT_INTERP))
		le.PutUint64(p[8:], 120)
		le.PutUint64(p[32:], 28)
		b = append(append(b, p...), "/lib64/ld-linux-x86-64.so.2\x00"...)
	}
	b = append(b, bytes.Repeat([]byte{0x90}, 100)...)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func fakeModules(t *testing.T, dir string, names ...string) []kernel.Module {
	t.Helper()
	var mods []kernel.Module
	for _, n := range names {
		mods = append(mods, kernel.Module{Name: n, Path: fakeELF(t, dir, n+".ko", elf.ET_REL, elf.EM_X86_64, false, 0o644)})
	}
	return mods
}

func build(t *testing.T, o Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Build(&buf, o); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	initBin := fakeELF(t, dir, "aleph-init", elf.ET_EXEC, elf.EM_X86_64, false, 0o755)
	mods := fakeModules(t, dir, "virtio_ring", "virtio", "virtio_mmio")
	archive := build(t, Options{Init: initBin, Modules: mods})

	initData, _ := os.ReadFile(initBin)
	modData, _ := os.ReadFile(mods[1].Path)
	want := []struct {
		name       string
		mode       uint32
		rmaj, rmin uint32
		data       []byte
	}{
		{"dev", 0o040755, 0, 0, nil},
		{"proc", 0o040755, 0, 0, nil},
		{"sys", 0o040755, 0, 0, nil},
		{"newroot", 0o040755, 0, 0, nil},
		{"dev/console", 0o020600, 5, 1, nil},
		{"init", 0o100755, 0, 0, initData},
		{"modules", 0o040755, 0, 0, nil},
		{"modules/virtio_ring.ko", 0o100644, 0, 0, nil},
		{"modules/virtio.ko", 0o100644, 0, 0, modData},
		{"modules/virtio_mmio.ko", 0o100644, 0, 0, nil},
		{"modules.order", 0o100644, 0, 0, []byte("virtio_ring.ko\nvirtio.ko\nvirtio_mmio.ko\n")},
	}
	got := readNewc(t, archive)
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.name != w.name || g.mode != w.mode || g.rmaj != w.rmaj || g.rmin != w.rmin {
			t.Errorf("entry %d = %s %o %d:%d, want %s %o %d:%d", i, g.name, g.mode, g.rmaj, g.rmin, w.name, w.mode, w.rmaj, w.rmin)
		}
		if w.data != nil && !bytes.Equal(g.data, w.data) {
			t.Errorf("%s: content differs (%d bytes, want %d)", g.name, len(g.data), len(w.data))
		}
		if g.ino != uint32(i+1) || g.uid != 0 || g.gid != 0 || g.mtime != 0 {
			t.Errorf("%s: ino %d uid %d gid %d mtime %d, want ino %d and zeros", g.name, g.ino, g.uid, g.gid, g.mtime, i+1)
		}
	}

	// Reproducible: same inputs, same bytes; other module order, other bytes.
	if again := build(t, Options{Init: initBin, Modules: mods}); !bytes.Equal(archive, again) {
		t.Error("two builds of the same inputs differ")
	}
	swapped := []kernel.Module{mods[1], mods[0], mods[2]}
	if other := build(t, Options{Init: initBin, Modules: swapped}); bytes.Equal(archive, other) {
		t.Error("module order does not change the archive")
	}
}

func TestBuildWithCpioTool(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio not installed (apt-get install cpio)")
	}
	dir := t.TempDir()
	initBin := fakeELF(t, dir, "aleph-init", elf.ET_EXEC, elf.EM_X86_64, false, 0o755)
	archive := build(t, Options{Init: initBin, Modules: fakeModules(t, dir, "squashfs", "overlay")})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cpio, "-t", "-v", "--numeric-uid-gid", "--quiet")
	cmd.Stdin = bytes.NewReader(archive)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v: %s", err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Errorf("cpio complained: %s", stderr.Bytes())
	}
	t.Logf("cpio -t -v:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []struct{ mode, name string }{
		{"drwxr-xr-x", "dev"},
		{"drwxr-xr-x", "proc"},
		{"drwxr-xr-x", "sys"},
		{"drwxr-xr-x", "newroot"},
		{"crw-------", "dev/console"},
		{"-rwxr-xr-x", "init"},
		{"drwxr-xr-x", "modules"},
		{"-rw-r--r--", "modules/squashfs.ko"},
		{"-rw-r--r--", "modules/overlay.ko"},
		{"-rw-r--r--", "modules.order"},
	}
	if len(lines) != len(want) {
		t.Fatalf("cpio lists %d entries, want %d", len(lines), len(want))
	}
	for i, w := range want {
		// mode nlink uid gid size|major, minor month day year name
		f := strings.Fields(lines[i])
		if len(f) < 8 || f[0] != w.mode || f[2] != "0" || f[3] != "0" || f[len(f)-2] != "1970" || f[len(f)-1] != w.name {
			t.Errorf("line %d = %q, want %s, owner 0 0, 1970, %s", i, lines[i], w.mode, w.name)
		}
	}
	if !strings.Contains(lines[4], "5,   1") {
		t.Errorf("console is not c 5:1: %q", lines[4])
	}

	// Extract for real and compare the init binary.
	x := t.TempDir()
	ext := exec.CommandContext(ctx, cpio, "-i", "-d", "--no-absolute-filenames", "--quiet")
	ext.Dir = x
	ext.Stdin = bytes.NewReader(archive)
	if out, err := ext.CombinedOutput(); err != nil && !strings.Contains(string(out), "dev/console") {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(x, "init"))
	want0, _ := os.ReadFile(initBin)
	if err != nil || !bytes.Equal(got, want0) {
		t.Fatalf("extracted init differs: %v", err)
	}
	order, err := os.ReadFile(filepath.Join(x, "modules.order"))
	if err != nil || string(order) != "squashfs.ko\noverlay.ko\n" {
		t.Fatalf("modules.order = %q, %v", order, err)
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	good := fakeELF(t, dir, "init", elf.ET_EXEC, elf.EM_X86_64, false, 0o755)
	mods := fakeModules(t, dir, "virtio")
	text := filepath.Join(dir, "script")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755)
	tests := []struct {
		name    string
		o       Options
		is      error
		message string
	}{
		{"no init", Options{}, ErrBadInit, "no init binary"},
		{"init missing", Options{Init: filepath.Join(dir, "nope")}, ErrBadInit, "no such file"},
		{"init is a dir", Options{Init: dir}, ErrBadInit, "not a regular file"},
		{"init not executable", Options{Init: fakeELF(t, dir, "noexec", elf.ET_EXEC, elf.EM_X86_64, false, 0o644)}, ErrBadInit, "not executable"},
		{"init is a script", Options{Init: text}, ErrBadInit, "not an ELF"},
		{"init dynamic", Options{Init: fakeELF(t, dir, "dyn", elf.ET_DYN, elf.EM_X86_64, true, 0o755)}, ErrBadInit, "dynamically linked"},
		{"init for arm64", Options{Init: fakeELF(t, dir, "arm", elf.ET_EXEC, elf.EM_AARCH64, false, 0o755)}, ErrBadInit, "EM_AARCH64"},
		{"init object", Options{Init: fakeELF(t, dir, "obj", elf.ET_REL, elf.EM_X86_64, false, 0o755)}, ErrBadInit, "not an executable"},
		{"module missing", Options{Init: good, Modules: []kernel.Module{{Name: "virtio", Path: filepath.Join(dir, "nope.ko")}}}, ErrBadModule, "no such file"},
		{"module not ELF", Options{Init: good, Modules: []kernel.Module{{Name: "virtio", Path: text}}}, ErrBadModule, "virtio"},
		{"module executable", Options{Init: good, Modules: []kernel.Module{{Name: "virtio", Path: good}}}, ErrBadModule, "ET_REL"},
		{"module name with slash", Options{Init: good, Modules: []kernel.Module{{Name: "../virtio", Path: mods[0].Path}}}, ErrBadModule, "invalid module name"},
		{"module twice", Options{Init: good, Modules: []kernel.Module{mods[0], mods[0]}}, ErrBadModule, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Build(io.Discard, tt.o)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("Build error = %v, want %v mentioning %q", err, tt.is, tt.message)
			}
		})
	}
	if _, err := os.Stat("/bin/ls"); err == nil {
		if err := Build(io.Discard, Options{Init: "/bin/ls"}); !errors.Is(err, ErrBadInit) {
			t.Errorf("Build with /bin/ls as init: %v, want ErrBadInit", err)
		}
	}
}

func TestWriter(t *testing.T) {
	t.Run("names", func(t *testing.T) {
		var buf bytes.Buffer
		c := NewWriter(&buf)
		if err := c.AddDir("/a/", 0o755); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct{ name, message string }{
			{"", "bad archive entry name"},
			{"a/../../etc", ".."},
			{"x/y", "parent directory x"},
			{"a", "added twice"},
			{"/a", "added twice"},
			{"TRAILER!!!", "bad archive entry name"},
			{"a/b\x00c", "bad archive entry name"},
			{"a/" + strings.Repeat("n", 5000), "over"},
		} {
			err := c.AddDir(tt.name, 0o755)
			if !errors.Is(err, ErrBadName) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("AddDir(%q) = %v, want ErrBadName mentioning %q", tt.name, err, tt.message)
			}
		}
		// A rejected name leaves the archive usable.
		if err := c.AddFile("a/f", 0o4755, strings.NewReader("hi"), 2); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		got := readNewc(t, buf.Bytes())
		if len(got) != 2 || got[1].name != "a/f" || got[1].mode != 0o104755 || string(got[1].data) != "hi" {
			t.Fatalf("entries %+v", got)
		}
		if err := c.AddDir("b", 0o755); !errors.Is(err, ErrClosed) {
			t.Errorf("AddDir after Close = %v", err)
		}
		if err := c.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close = %v", err)
		}
	})
	t.Run("sizes", func(t *testing.T) {
		for _, tt := range []struct {
			data    string
			size    int64
			message string
		}{
			{"abc", 5, "has 3 bytes, 5 declared"},
			{"abcdef", 3, "longer than"},
			{"", -1, "outside"},
			{"", MaxFileSize + 1, "outside"},
		} {
			c := NewWriter(io.Discard)
			err := c.AddFile("f", 0o644, strings.NewReader(tt.data), tt.size)
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("AddFile(%q, %d) = %v, want %q", tt.data, tt.size, err, tt.message)
			}
		}
	})
	t.Run("write error sticks", func(t *testing.T) {
		c := NewWriter(failWriter{})
		if err := c.AddDir("a", 0o755); err == nil {
			t.Fatal("AddDir to a failing writer succeeded")
		}
		if err := c.Close(); err == nil {
			t.Fatal("Close after a write error succeeded")
		}
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	initBin := fakeELF(t, dir, "init", elf.ET_EXEC, elf.EM_X86_64, false, 0o755)
	out := filepath.Join(dir, "initrd.cpio")
	sum, size, err := WriteFile(out, Options{Init: initBin})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || int64(len(b)) != size || len(sum) != 64 {
		t.Fatalf("WriteFile: %d bytes on disk, reported %d, sum %q, %v", len(b), size, sum, err)
	}
	if _, _, err := WriteFile(out, Options{Init: filepath.Join(dir, "nope")}); !errors.Is(err, ErrBadInit) {
		t.Fatalf("WriteFile with a bad init: %v", err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(after, b) {
		t.Fatal("a failed WriteFile changed the existing file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// TestBuildFetchedKernel packs the modules of a kernel fetched by `alephd
// runtime kernel` (ALEPH_KERNEL_DIR, else the default directory).
func TestBuildFetchedKernel(t *testing.T) {
	kdir := os.Getenv("ALEPH_KERNEL_DIR")
	if kdir == "" {
		kdir = kernel.DefaultDir()
	}
	k, err := kernel.Load(kdir)
	if errors.Is(err, kernel.ErrNoKernel) {
		t.Skipf("no fetched kernel in %s (run alephd runtime kernel, or set ALEPH_KERNEL_DIR): %v", kdir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	initBin := fakeELF(t, dir, "init", elf.ET_EXEC, elf.EM_X86_64, false, 0o755)
	archive := build(t, Options{Init: initBin, Modules: k.Modules})
	var order strings.Builder
	files := make(map[string][]byte)
	for _, e := range readNewc(t, archive) {
		files[e.name] = e.data
	}
	for _, m := range k.Modules {
		want, err := os.ReadFile(m.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(files["modules/"+m.Name+".ko"], want) {
			t.Errorf("module %s differs in the archive", m.Name)
		}
		fmt.Fprintf(&order, "%s.ko\n", m.Name)
	}
	if string(files["modules.order"]) != order.String() {
		t.Errorf("modules.order = %q, want %q", files["modules.order"], order.String())
	}
	t.Logf("initramfs with %d modules: %d bytes", len(k.Modules), len(archive))
}
