//go:build !linux

package filestore

import (
	"fmt"
	"os"
)

// haveSyncfs is false: flatfs fsyncs every block (and its directory) as it is
// written.
const haveSyncfs = false

func (s *sysState) openBlocks(string) error { return nil }

func (s *sysState) syncBlocks() error { return nil }

func fdatasync(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return nil
}

func startWriteback(*os.File, int64, int64) {}
