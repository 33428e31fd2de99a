package vmboot

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/guest"
	"github.com/go-aleph/go-aleph/crn/protocol"
)

// drives maps serials to real loop devices through a fake /sys/block, the
// way the guest kernel shows virtio-blk drives: the kernel name (loopN)
// differs from the serial (vdb…).
func drives(t *testing.T, serials map[string]string) *fakeSys {
	t.Helper()
	f := newFakeSys(t, "serial")
	f.dev = "/dev"
	for serial, img := range serials {
		f.add(loop(t, img), serial, false)
	}
	return f
}

func TestMounter(t *testing.T) {
	needRoot(t)
	f := drives(t, map[string]string{
		"vdb": squashfsImage(t, map[string]string{"main.py": "app = 1\n"}),
		"vdc": squashfsImage(t, map[string]string{"lib/pkg.py": "x = 2\n"}),
		"vdd": ext4Image(t),
	})
	m := NewMounter(f.class, f.dev, time.Second, slog.New(slog.DiscardHandler))
	var _ guest.Mounter = m
	root := t.TempDir()
	code, pkgs, data := filepath.Join(root, "opt/code"), filepath.Join(root, "opt/packages"), filepath.Join(root, "mnt/data")
	for _, d := range []string{code, pkgs, data} {
		unmountAtEnd(t, d)
	}
	if err := m.MountCode(code); err != nil {
		t.Fatalf("MountCode: %v", err)
	}
	if err := m.Mount(protocol.Volume{Mount: pkgs, Device: "vdc", ReadOnly: true}); err != nil {
		t.Fatalf("Mount ro: %v", err)
	}
	if err := m.Mount(protocol.Volume{Mount: data, Device: "vdd"}); err != nil {
		t.Fatalf("Mount rw: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(code, "main.py")); err != nil || string(b) != "app = 1\n" {
		t.Errorf("code: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(pkgs, "lib/pkg.py")); err != nil || string(b) != "x = 2\n" {
		t.Errorf("ro volume: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(pkgs, "new"), nil, 0o644); err == nil {
		t.Error("wrote to a read-only volume")
	}
	if err := os.WriteFile(filepath.Join(data, "kept"), []byte("yes"), 0o644); err != nil {
		t.Errorf("rw volume: %v", err)
	}

	if err := m.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	for _, d := range []string{code, pkgs, data} {
		if mounted, err := IsMountPoint(d); err != nil || mounted {
			t.Errorf("%s still mounted after Unmount (%v)", d, err)
		}
	}
	// The ext4 volume kept what was written: mount it again.
	if err := m.Mount(protocol.Volume{Mount: data, Device: "vdd"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(data, "kept")); err != nil || string(b) != "yes" {
		t.Errorf("after remount: %q, %v", b, err)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

func TestMounterErrors(t *testing.T) {
	f := newFakeSys(t, "serial")
	f.add("vda", "vda", true)
	m := NewMounter(f.class, f.dev, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	dir := t.TempDir()
	tests := []struct {
		name string
		v    protocol.Volume
		err  error
		msg  string
	}{
		{"no device", protocol.Volume{Mount: dir + "/a"}, ErrBadName, "has no device"},
		{"unknown device", protocol.Volume{Mount: dir + "/b", Device: "vdx"}, ErrNotFound, `drive vdx: device not found: serial "vdx"`},
		{"bad device", protocol.Volume{Mount: dir + "/c", Device: "../vda"}, ErrBadName, ""},
		{"relative mount", protocol.Volume{Mount: "data", Device: "vda"}, nil, `mount point "data"`},
		{"unclean mount", protocol.Volume{Mount: dir + "/../x", Device: "vda"}, nil, "not a clean absolute path"},
		{"root mount", protocol.Volume{Mount: "/", Device: "vda"}, nil, "not a clean absolute path"},
	}
	for _, tt := range tests {
		err := m.Mount(tt.v)
		if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: Mount = %v, want %v with %q", tt.name, err, tt.err, tt.msg)
		}
	}
	// The code drive is absent here.
	if err := m.MountCode(dir + "/code"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "drive vdb") {
		t.Errorf("MountCode = %v, want vdb not found", err)
	}
	if err := m.Unmount(); err != nil {
		t.Errorf("Unmount with nothing mounted: %v", err)
	}
}
