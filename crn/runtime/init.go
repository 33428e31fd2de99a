package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// InitName is the guest agent's binary name.
const InitName = "aleph-init"

// ErrNoInit means FindInit found no aleph-init binary.
var ErrNoInit = errors.New("aleph-init not found")

// BuildInit compiles moduleDir's ./cmd/aleph-init into out as a static,
// reproducible binary (no cgo, trimmed paths, no build id or VCS stamp).
func BuildInit(ctx context.Context, moduleDir, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: go: %w", ErrNoTool, err)
	}
	if _, err := os.Stat(filepath.Join(moduleDir, "cmd", InitName)); err != nil {
		return fmt.Errorf("build aleph-init: %s is not the go-aleph source tree: %w", moduleDir, err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid=", "-o", abs, "./cmd/"+InitName)
	cmd.Dir = moduleDir
	cmd.Env = append(withoutEnv(os.Environ(), "CGO_ENABLED"), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build aleph-init: %w: %s", err, strings.TrimSpace(string(b)))
	}
	if err := checkStatic(abs); err != nil {
		return fmt.Errorf("build aleph-init: %s: %w", abs, err)
	}
	return nil
}

// FindInit returns aleph-init next to the running executable, else the one
// in PATH.
func FindInit() (string, error) {
	var tried []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		p := filepath.Join(filepath.Dir(exe), InitName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
		tried = append(tried, p)
	}
	p, err := exec.LookPath(InitName)
	if err == nil {
		return filepath.Abs(p)
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("%w: looked in %s", ErrNoInit, strings.Join(tried, " and "))
}
