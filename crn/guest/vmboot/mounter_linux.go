package vmboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/crn/guest"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"golang.org/x/sys/unix"
)

// Mounter is guest.Mounter for VMs: each volume and the squashfs code is a
// virtio-blk drive found by its serial (the aleph-vm drive name) and
// mounted at its mount point. It remembers its mounts for Unmount.
type Mounter struct {
	sysBlock, dev string
	timeout       time.Duration
	log           *slog.Logger

	mu      sync.Mutex
	mounted []string
}

var _ guest.Mounter = (*Mounter)(nil)

// NewMounter returns a Mounter looking drives up in sysBlockDir and their
// nodes in devDir (SysBlock and DevDir in a VM), waiting up to timeout for
// each.
func NewMounter(sysBlockDir, devDir string, timeout time.Duration, log *slog.Logger) *Mounter {
	return &Mounter{sysBlock: sysBlockDir, dev: devDir, timeout: timeout, log: log}
}

// Mount implements guest.Mounter: read-only volumes are squashfs, the
// others ext4 (the host formats persistent and ephemeral volumes alike).
func (m *Mounter) Mount(v protocol.Volume) error {
	if v.Device == "" {
		return fmt.Errorf("%w: volume %s has no device", ErrBadName, v.Mount)
	}
	if v.ReadOnly {
		return m.mount(v.Device, v.Mount, "squashfs", unix.MS_RDONLY)
	}
	return m.mount(v.Device, v.Mount, "ext4", 0)
}

// MountCode implements guest.Mounter: the code drive is vdb, squashfs.
func (m *Mounter) MountCode(dir string) error {
	return m.mount(CodeDrive, dir, "squashfs", unix.MS_RDONLY)
}

func (m *Mounter) mount(drive, target, fstype string, flags uintptr) error {
	if !filepath.IsAbs(target) || filepath.Clean(target) != target || target == "/" {
		return fmt.Errorf("mount point %q is not a clean absolute path below /", target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	node, err := WaitDevice(ctx, m.sysBlock, m.dev, drive)
	if err != nil {
		return fmt.Errorf("drive %s: %w", drive, err)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(node, target, fstype, flags|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount %s (%s, %s) on %s: %w", drive, node, fstype, target, err)
	}
	m.mu.Lock()
	m.mounted = append(m.mounted, target)
	m.mu.Unlock()
	m.log.Debug("mounted", "drive", drive, "device", node, "fstype", fstype, "on", target)
	return nil
}

// Unmount unmounts everything Mount and MountCode mounted, last first,
// detaching what is still busy.
func (m *Mounter) Unmount() error {
	m.mu.Lock()
	mounted := m.mounted
	m.mounted = nil
	m.mu.Unlock()
	var errs []error
	for i := len(mounted) - 1; i >= 0; i-- {
		t := mounted[i]
		if err := unix.Unmount(t, 0); err != nil {
			if derr := unix.Unmount(t, unix.MNT_DETACH); derr != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", t, derr))
			}
		}
	}
	return errors.Join(errs...)
}
