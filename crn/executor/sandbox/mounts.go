package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// mounter records the host mounts of one execution so they come off in
// reverse order.
type mounter struct {
	points []string
}

// loop mounts an image file read-only (or rw) through a loop device; mount(8)
// sets the device to auto-clear, so unmounting releases it.
func (m *mounter) loop(ctx context.Context, image, dir, fstype string, ro bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	opts := "loop,nodev,nosuid"
	if ro {
		opts += ",ro"
	}
	out, err := exec.CommandContext(ctx, "mount", "-t", fstype, "-o", opts, image, dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount %s image %s: %w: %s", fstype, image, err, strings.TrimSpace(string(out)))
	}
	m.points = append(m.points, dir)
	return nil
}

func (m *mounter) mount(src, dir, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(src, dir, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, dir, err)
	}
	m.points = append(m.points, dir)
	return nil
}

// unmountAll detaches every recorded mount, last first.
func (m *mounter) unmountAll() error {
	var errs []error
	for i := len(m.points) - 1; i >= 0; i-- {
		if err := unmount(m.points[i]); err != nil {
			errs = append(errs, err)
		}
	}
	m.points = nil
	return errors.Join(errs...)
}

func unmount(dir string) error {
	err := unix.Unmount(dir, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountsUnder(f, dir)
}

func parseMountsUnder(r io.Reader, dir string) ([]string, error) {
	dir = strings.TrimSuffix(dir, "/")
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for space…) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// removeAll removes dir unless something is still mounted below it: a
// recursive delete through a leftover mount would wipe a persistent volume.
func removeAll(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	if len(mps) > 0 {
		return fmt.Errorf("remove %s: still mounted: %s", dir, strings.Join(mps, ", "))
	}
	return os.RemoveAll(dir)
}
