package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultCacheDir is where the Python runtime's packages and Debian tree are
// kept between builds: /var/cache/go-aleph/runtime for root, else the user's
// cache directory.
func DefaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/go-aleph/runtime"
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "go-aleph", "runtime")
	}
	return filepath.Join(os.TempDir(), "go-aleph-runtime-cache")
}

// lockPoll is how often a build waiting for the cache retries its lock:
// flock has no cancellable wait.
const lockPoll = 200 * time.Millisecond

// lockCache takes the cache's exclusive lock, so that concurrent builds
// (test packages run in parallel) debootstrap once and never see a tree
// half-written or pruned. The returned func releases it.
func lockCache(ctx context.Context, dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cache lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("cache lock %s: another build holds it: %w", f.Name(), ctx.Err())
		case <-tick.C:
		}
	}
}
