package vmboot

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestIsMountPoint(t *testing.T) {
	for dir, want := range map[string]bool{"/": true, "/proc": true, t.TempDir(): false} {
		got, err := IsMountPoint(dir)
		if err != nil || got != want {
			t.Errorf("IsMountPoint(%s) = %v, %v, want %v", dir, got, err, want)
		}
	}
	if _, err := IsMountPoint(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("IsMountPoint(missing) succeeded")
	}
}

func TestMountOverlayRoot(t *testing.T) {
	needRoot(t)
	img := squashfsImage(t, map[string]string{"etc/hostname": "aleph\n", "sbin/init": "#!/bin/sh\n"})
	dev := "/dev/" + loop(t, img)
	dir := t.TempDir()
	newRoot, scratch := filepath.Join(dir, "newroot"), filepath.Join(dir, "scratch")
	unmountAtEnd(t, filepath.Join(scratch, "rom"))
	unmountAtEnd(t, filepath.Join(scratch, "rw"))
	unmountAtEnd(t, newRoot)
	if err := MountOverlayRoot(dev, newRoot, scratch); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(newRoot, "etc/hostname")); err != nil || string(b) != "aleph\n" {
		t.Fatalf("lower file: %q, %v", b, err)
	}
	// Writable on top of a read-only squashfs; the image is untouched.
	if err := os.WriteFile(filepath.Join(newRoot, "etc/hostname"), []byte("changed\n"), 0o644); err != nil {
		t.Fatalf("write through the overlay: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(newRoot, "run/aleph"), 0o755); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(scratch, "rom/etc/hostname")); string(b) != "aleph\n" {
		t.Fatalf("lower layer changed: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(scratch, "rw/upper/etc/hostname")); string(b) != "changed\n" {
		t.Fatalf("upper layer: %q", b)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(newRoot, &st); err != nil || st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		t.Fatalf("newroot is not an overlay: %x, %v", st.Type, err)
	}
}

func TestMountOverlayRootBadDevice(t *testing.T) {
	needRoot(t)
	dev := "/dev/" + loop(t, ext4Image(t)) // not a squashfs
	dir := t.TempDir()
	err := MountOverlayRoot(dev, filepath.Join(dir, "newroot"), filepath.Join(dir, "scratch"))
	if err == nil {
		unix.Unmount(filepath.Join(dir, "newroot"), unix.MNT_DETACH)
		t.Fatal("mounted an ext4 image as the squashfs runtime")
	}
	if mounted, _ := IsMountPoint(filepath.Join(dir, "scratch/rom")); mounted {
		unix.Unmount(filepath.Join(dir, "scratch/rom"), unix.MNT_DETACH)
		t.Fatal("failed mount left the lower layer mounted")
	}
}

func TestMountRuntimeDirs(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	for _, d := range []string{"/dev/shm", "/dev/pts", "/tmp", "/run"} {
		unmountAtEnd(t, filepath.Join(root, d))
	}
	if err := MountRuntimeDirs(root); err != nil {
		t.Fatal(err)
	}
	for d, magic := range map[string]int64{"/run": unix.TMPFS_MAGIC, "/tmp": unix.TMPFS_MAGIC,
		"/dev/pts": unix.DEVPTS_SUPER_MAGIC, "/dev/shm": unix.TMPFS_MAGIC} {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(root, d), &st); err != nil || st.Type != magic {
			t.Errorf("%s: type %x, %v, want %x", d, st.Type, err, magic)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(root, "run/aleph")); err != nil || !fi.IsDir() {
		t.Errorf("/run/aleph: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(root, "dev/fd")); err != nil || l != "/proc/self/fd" {
		t.Errorf("/dev/fd: %q, %v", l, err)
	}
}
