package vmboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// NewRoot is where the initramfs mounts the real root (crn/initramfs).
const NewRoot = "/newroot"

// scratchDir is the initramfs directory holding the root's layers.
const scratchDir = "/layers"

// DeviceTimeout bounds the wait for one drive, port or NIC to appear.
const DeviceTimeout = 10 * time.Second

type mnt struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

func (m mnt) mount() error {
	if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
	}
	return nil
}

// MountEarly mounts devtmpfs on /dev, proc on /proc and sysfs on /sys,
// skipping what is mounted already (main may have mounted /proc to read the
// command line).
func MountEarly() error {
	for _, m := range []mnt{
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if mounted, err := IsMountPoint(m.target); err != nil || mounted {
			if err != nil {
				return err
			}
			continue
		}
		if err := m.mount(); err != nil {
			return err
		}
	}
	return nil
}

// IsMountPoint reports whether dir is on another filesystem than its parent.
func IsMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Stat(filepath.Join(dir, ".."), &parent); err != nil {
		return false, fmt.Errorf("stat %s/..: %w", dir, err)
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino, nil
}

// MountOverlayRoot makes the read-only runtime squashfs on device writable
// at newRoot: the squashfs on scratch/rom, a tmpfs on scratch/rw holding
// the overlay's upper and work directories, the overlay on newRoot.
func MountOverlayRoot(device, newRoot, scratch string) error {
	rom, rw := filepath.Join(scratch, "rom"), filepath.Join(scratch, "rw")
	for _, d := range []string{rom, rw, newRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := (mnt{device, rom, "squashfs", unix.MS_RDONLY, ""}).mount(); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	if err := (mnt{"tmpfs", rw, "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"}).mount(); err != nil {
		_ = unix.Unmount(rom, unix.MNT_DETACH)
		return err
	}
	upper, work := filepath.Join(rw, "upper"), filepath.Join(rw, "work")
	err := errors.Join(os.Mkdir(upper, 0o755), os.Mkdir(work, 0o755))
	if err == nil {
		err = (mnt{"overlay", newRoot, "overlay", 0,
			"lowerdir=" + rom + ",upperdir=" + upper + ",workdir=" + work}).mount()
	}
	if err != nil {
		_ = unix.Unmount(rw, unix.MNT_DETACH)
		_ = unix.Unmount(rom, unix.MNT_DETACH)
		return err
	}
	return nil
}

// SwitchRoot moves /dev, /proc and /sys into newRoot and makes it the root,
// as switch_root does: the initramfs cannot be pivot_root'ed, so newRoot is
// moved over / and chroot'ed into. The initramfs files stay in memory.
func SwitchRoot(newRoot string) error {
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		target := filepath.Join(newRoot, d)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(d, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s: %w", d, err)
		}
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("chdir %s: %w", newRoot, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// MountRuntimeDirs mounts what a program expects under root (/ once
// switched): tmpfs on /run and /tmp, devpts on /dev/pts, tmpfs on /dev/shm,
// the /dev/fd links, and creates /run/aleph.
func MountRuntimeDirs(root string) error {
	p := func(s string) string { return filepath.Join(root, s) }
	for _, m := range []mnt{
		{"tmpfs", p("/run"), "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"tmpfs", p("/tmp"), "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"devpts", p("/dev/pts"), "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666"},
		{"tmpfs", p("/dev/shm"), "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := m.mount(); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, p("/dev/"+name)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return os.MkdirAll(p("/run/aleph"), 0o755)
}

// Boot takes PID 1 from the initramfs (early mounts done, modules loaded)
// to the runtime as a writable root with /run, /tmp and /dev set up.
func Boot(ctx context.Context, log *slog.Logger) error {
	t0 := time.Now()
	wctx, cancel := context.WithTimeout(ctx, DeviceTimeout)
	defer cancel()
	dev, err := WaitDevice(wctx, SysBlock, DevDir, RootDrive)
	if err != nil {
		return fmt.Errorf("runtime drive: %w", err)
	}
	log.Debug("runtime drive", "device", dev, "after", time.Since(t0))
	if err := MountOverlayRoot(dev, NewRoot, scratchDir); err != nil {
		return err
	}
	if err := SwitchRoot(NewRoot); err != nil {
		return err
	}
	return MountRuntimeDirs("/")
}
