package vmboot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts, loop devices, network namespaces)")
	}
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("needs %s: %v", name, err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// squashfsImage packs files (name → content) into a squashfs image.
func squashfsImage(t *testing.T, files map[string]string) string {
	t.Helper()
	needTool(t, "mksquashfs")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img.sqfs")
	run(t, "mksquashfs", src, img, "-quiet", "-noappend", "-all-root")
	return img
}

// ext4Image is an empty 8 MiB ext4 filesystem.
func ext4Image(t *testing.T) string {
	t.Helper()
	needTool(t, "mkfs.ext4")
	img := filepath.Join(t.TempDir(), "img.ext4")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-F", img)
	return img
}

// loop attaches img to a loop device and returns its kernel name (loopN).
func loop(t *testing.T, img string) string {
	t.Helper()
	needTool(t, "losetup")
	dev := run(t, "losetup", "-f", "--show", img)
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", dev).Run() })
	return filepath.Base(dev)
}

// unmountAtEnd detaches target when the test ends (after its own cleanups
// registered later, which run first).
func unmountAtEnd(t *testing.T, target string) {
	t.Helper()
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
}
