package sim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxStatusSize bounds the /proc status file read.
const maxStatusSize = 64 << 10

// memStatus is the process's resident memory, from /proc/self/status.
type memStatus struct {
	RSS  int64 // VmRSS, bytes
	Peak int64 // VmHWM, bytes
}

// readMemStatus reads /proc/self/status; zeros where it is unavailable
// (not Linux).
func readMemStatus() memStatus {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return memStatus{}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStatusSize))
	if err != nil {
		return memStatus{}
	}
	m, _ := parseMemStatus(b)
	return m
}

// parseMemStatus takes VmRSS and VmHWM ("VmRSS:   123456 kB") from a
// /proc/<pid>/status text.
func parseMemStatus(b []byte) (memStatus, error) {
	if len(b) > maxStatusSize {
		return memStatus{}, fmt.Errorf("proc status: %d bytes, more than %d", len(b), maxStatusSize)
	}
	var m memStatus
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return memStatus{}, fmt.Errorf("proc status: %s: %q is not a size in kB", key, strings.TrimSpace(val))
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return memStatus{}, fmt.Errorf("proc status: %s: %q is not a size in kB", key, fields[0])
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return memStatus{}, fmt.Errorf("proc status: %w", err)
	}
	return m, nil
}
