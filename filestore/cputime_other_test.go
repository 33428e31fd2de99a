//go:build !unix

package filestore

import "time"

// cpuTime is unavailable here; the cpu metrics then read 0.
func cpuTime() time.Duration { return 0 }
