package sandbox

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// cgroupFS locates the memory controller: cgroup v1 (a "memory" hierarchy,
// as on this hybrid machine) or v2 (a unified hierarchy with memory enabled).
type cgroupFS struct {
	root string // usually /sys/fs/cgroup
}

// memoryDir is the container's memory cgroup directory and whether it is v2.
func (c cgroupFS) memoryDir(path string) (dir string, v2 bool) {
	if _, err := os.Stat(filepath.Join(c.root, "memory", "memory.limit_in_bytes")); err == nil {
		return filepath.Join(c.root, "memory", path), false
	}
	for _, unified := range []string{c.root, filepath.Join(c.root, "unified")} {
		b, err := os.ReadFile(filepath.Join(unified, "cgroup.controllers"))
		if err == nil && bytes.Contains(b, []byte("memory")) {
			return filepath.Join(unified, path), true
		}
	}
	return "", false
}

// oomKilled reports whether the kernel OOM-killed a process of the cgroup:
// oom_kill in memory.oom_control (v1) or memory.events (v2).
func (c cgroupFS) oomKilled(path string) bool {
	dir, v2 := c.memoryDir(path)
	if dir == "" {
		return false
	}
	file := "memory.oom_control"
	if v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return false
	}
	return counter(b, "oom_kill") > 0
}

// counter reads "key value" lines.
func counter(b []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(" "))
		if ok && string(k) == key {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n
		}
	}
	return 0
}

// controllerDirs are the directories a cgroup path has in every hierarchy
// (v1 controllers and the unified one), existing or not.
func (c cgroupFS) controllerDirs(path string) []string {
	ents, err := os.ReadDir(c.root)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(c.root, e.Name(), path))
		}
	}
	return append(out, filepath.Join(c.root, path))
}
