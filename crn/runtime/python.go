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
)

// compilePython byte-compiles the staged Python libraries with the staged
// interpreter. Without it every execution recompiles what it imports into
// its scratch overlay (fastapi + uvicorn: 0.67 s instead of 0.13 s).
//
// The .pyc files are "unchecked-hash" (PEP 552): the image's mtimes are all
// 0, so timestamp-based ones would never validate, and the runtime is
// read-only. A fixed hash seed keeps set constants in a stable order, so
// the files are reproducible.
func (t *tree) compilePython(ctx context.Context, log *slog.Logger) error {
	python := filepath.Join(t.dir, "usr", "bin", "python3")
	if _, err := os.Stat(python); err != nil {
		return fmt.Errorf("python runtime: no python3 copied: %w", err)
	}
	dirs, err := filepath.Glob(filepath.Join(t.dir, "usr", "lib", "python3*"))
	if err != nil {
		return err
	}
	args := []string{"-s", "-m", "compileall", "-f", "-q", "-j0", "--invalidation-mode", "unchecked-hash",
		"-s", t.dir, "-p", "/"}
	cmd := exec.CommandContext(ctx, python, append(args, dirs...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1", "LC_ALL=C.UTF-8"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// A module with a syntax error fails only itself: it is compiled
		// (and fails) at import, as without the cache.
		if ctx.Err() != nil {
			return fmt.Errorf("compile python: %w", ctx.Err())
		}
		log.Warn("compileall reported errors", "err", err, "output", tail(out.String(), 2000))
	}
	// compileall's directories and files follow the umask.
	return filepath.WalkDir(t.dir, func(p string, d fs.DirEntry, err error) error {
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
