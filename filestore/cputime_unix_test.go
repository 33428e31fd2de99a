//go:build unix

package filestore

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: under a shared machine it gives a
// throughput per core that wall time cannot.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
