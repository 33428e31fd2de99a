//go:build unix

package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// sysState holds the store's open handles: the lock file (held with flock for
// the store's life) and, on Linux, the blocks directory for syncfs.
type sysState struct {
	lock   *os.File
	blocks *os.File
}

// errLocked: another process (or Store) has the directory open.
var errLocked = errors.New("store is in use by another process")

func openSys(dir string) (*sysState, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	return &sysState{lock: f}, nil
}

func (s *sysState) close() error {
	var errs []error
	if s.blocks != nil {
		errs = append(errs, s.blocks.Close())
	}
	// Closing the file releases the flock.
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}
