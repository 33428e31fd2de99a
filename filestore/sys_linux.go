package filestore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// haveSyncfs: an add writes its blocks without fsync and makes them durable
// with one syncfs(2) of the blocks' filesystem at the end.
const haveSyncfs = true

func (s *sysState) openBlocks(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	s.blocks = f
	return nil
}

// syncBlocks makes every block written so far durable.
func (s *sysState) syncBlocks() error {
	if err := unix.Syncfs(int(s.blocks.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", s.blocks.Name(), err)
	}
	return nil
}

func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("fdatasync %s: %w", f.Name(), err)
		}
		return nil
	}
}

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// now, without waiting, so that the final fsync has little left to do.
func startWriteback(f *os.File, off, n int64) {
	// Advisory: an error only means the final fsync does all the work.
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
