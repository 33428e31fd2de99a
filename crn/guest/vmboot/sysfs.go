package vmboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Default places of the guest's device trees.
const (
	SysBlock = "/sys/block"
	SysPorts = "/sys/class/virtio-ports"
	DevDir   = "/dev"
)

// Limits of device lookups.
const (
	maxName      = 64   // a drive serial (virtio-blk: 20 bytes) or port name
	maxEntries   = 4096 // entries of a sysfs class directory read
	pollInterval = 5 * time.Millisecond
)

// validName accepts the names aleph-vm uses (vda…, org.aleph.link): no path
// separators, no dot-only names, printable ASCII.
func validName(s string) bool {
	if s == "" || len(s) > maxName || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// FindBySerial returns the kernel name (e.g. "vdc") of the block device in
// sysBlockDir whose serial is serial. Probe order does not matter: QEMU's
// serial is the aleph-vm drive name.
func FindBySerial(sysBlockDir, serial string) (string, error) {
	return findByAttr(sysBlockDir, "serial", serial)
}

// FindPort returns the kernel name (e.g. "vport0p1") of the virtio-serial
// port in sysPortsDir named name.
func FindPort(sysPortsDir, name string) (string, error) {
	return findByAttr(sysPortsDir, "name", name)
}

func findByAttr(dir, attr, want string) (string, error) {
	if !validName(want) {
		return "", fmt.Errorf("%w: %q", ErrBadName, want)
	}
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s %q (no %s)", ErrNotFound, attr, want, dir)
		}
		return "", err
	}
	names, err := d.Readdirnames(maxEntries)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", dir, err)
	}
	slices.Sort(names) // stable messages
	found := ""
	for _, n := range names {
		v, err := readAttr(filepath.Join(dir, n, attr))
		if err != nil || v != want {
			continue // no such attribute: another kind of device
		}
		if found != "" {
			return "", fmt.Errorf("%s %q is both %s and %s", attr, want, found, n)
		}
		found = n
	}
	if found == "" {
		return "", fmt.Errorf("%w: %s %q in %s", ErrNotFound, attr, want, dir)
	}
	return found, nil
}

// readAttr reads a short sysfs attribute without its trailing newline.
func readAttr(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, maxName+2)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(bytes.TrimRight(b[:n], "\n\x00 ")), nil
}

// WaitDevice waits until the block device with the serial is in sysBlockDir
// and its node is in devDir, and returns the node's path. Devices appear
// asynchronously after their driver loads; ctx bounds the wait.
func WaitDevice(ctx context.Context, sysBlockDir, devDir, serial string) (string, error) {
	return waitNode(ctx, devDir, func() (string, error) { return FindBySerial(sysBlockDir, serial) })
}

// WaitPort is WaitDevice for a virtio-serial port named name.
func WaitPort(ctx context.Context, sysPortsDir, devDir, name string) (string, error) {
	return waitNode(ctx, devDir, func() (string, error) { return FindPort(sysPortsDir, name) })
}

// waitNode polls: sysfs offers no event to wait on without udev, and a
// lookup costs microseconds.
func waitNode(ctx context.Context, devDir string, find func() (string, error)) (string, error) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		name, err := find()
		if err == nil {
			node := filepath.Join(devDir, name)
			if _, serr := os.Stat(node); serr == nil {
				return node, nil
			}
			err = fmt.Errorf("%w: %s has no node in %s", ErrNotFound, name, devDir)
		} else if !errors.Is(err, ErrNotFound) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (waited: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}
