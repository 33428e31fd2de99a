package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// compilePython byte-compiles the Debian tree's Python libraries with its
// own interpreter, in a chroot. Without a valid cache, every execution
// recompiles what it imports into its scratch layer, which under TCG costs
// seconds for fastapi.
//
// Debian's py3compile writes "checked-hash" files (PEP 552), valid at any
// mtime but re-hashing each source at import. "unchecked-hash" ones skip
// that: the runtime is read-only, the sources never change. One process
// compiling in directory order with a fixed hash seed keeps the files
// reproducible (marshal's reference flags follow the process' history).
func compilePython(ctx context.Context, root string, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(root, "usr", "bin", "python3")); err != nil {
		return fmt.Errorf("python runtime: no python3 installed: %w", err)
	}
	var dirs []string
	for _, pattern := range []string{"usr/lib/python3*", "usr/share/python3"} {
		found, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return err
		}
		for _, d := range found {
			if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
				dirs = append(dirs, "/"+strings.TrimPrefix(d, root+"/"))
			}
		}
	}
	const python = "/usr/bin/python3" // inside the chroot
	args := append([]string{"-s", "-m", "compileall", "-f", "-q", "-j1", "--invalidation-mode", "unchecked-hash"}, dirs...)
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Path, cmd.Err = python, nil // not the host's python3
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1", "LC_ALL=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// A module with a syntax error (lib2to3's test data) fails only
		// itself: it is compiled, and fails, at import as without a cache.
		if ctx.Err() != nil {
			return fmt.Errorf("compile python: %w", ctx.Err())
		}
		if _, ok := err.(*exec.ExitError); !ok {
			return fmt.Errorf("compile python: %w", err)
		}
		log.Debug("compileall reported errors", "err", err, "output", tail(out.String(), 2000))
	}
	// compileall's directories and files follow the umask.
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && d.Name() == "__pycache__":
			return os.Chmod(p, 0o755)
		case d.Type().IsRegular() && strings.HasSuffix(p, ".pyc"):
			return os.Chmod(p, 0o644)
		}
		return nil
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
