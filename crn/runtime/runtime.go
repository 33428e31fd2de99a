// Package runtime builds program runtimes: the read-only squashfs root a
// sandbox (or later a microVM) boots programs from. A runtime holds a static
// busybox with its applet links, the aleph-init guest agent at
// /sbin/aleph-init, CA certificates, a minimal /etc and the mount points the
// executor and aleph-init expect; optionally python3 with uvicorn (and
// fastapi when installed) copied from the host's Debian packages.
//
// Builds are reproducible: the tree is staged with fixed modes, and
// mksquashfs stores every entry as root:root at time 0 without xattrs, so
// the same inputs give a byte-identical image (and hash). The layout is
// merged-/usr like Debian 12: /bin, /sbin, /lib and /lib64 are links into
// /usr.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Default host paths of the runtime's inputs (Debian packages busybox-static
// and ca-certificates).
const (
	DefaultBusybox = "/bin/busybox"
	DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"
)

// Guest paths.
const (
	GuestInit    = "/sbin/aleph-init"
	GuestBusybox = "/bin/busybox"
	GuestCACerts = "/etc/ssl/certs/ca-certificates.crt"
)

// Errors. Build wraps them with the offending path.
var (
	// ErrNotStatic is an executable that needs a dynamic loader.
	ErrNotStatic = errors.New("not a static executable")
	// ErrNotELF is an input that is not an ELF executable for this machine.
	ErrNotELF = errors.New("not an executable ELF file")
	// ErrNoPython means python3-uvicorn is not installed on the host.
	ErrNoPython = errors.New("python3-uvicorn is not installed (apt-get install python3-uvicorn)")
	// ErrNoTool is a missing host tool (mksquashfs, dpkg-query, go).
	ErrNoTool = errors.New("required tool not found")
)

// Options configure Build.
type Options struct {
	// Out is the squashfs file to write (replaced atomically). Required.
	Out string
	// Init is the static aleph-init binary. Required.
	Init string
	// Busybox is a static busybox; default DefaultBusybox.
	Busybox string
	// CACerts is the CA bundle; default DefaultCACerts.
	CACerts string
	// Python adds python3, uvicorn and fastapi (when installed) from the
	// host's Debian packages.
	Python bool
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

// Result describes a built runtime.
type Result struct {
	Path   string
	SHA256 string // hex
	Size   int64
	Files  int // entries in the image (files, links, dirs), root excluded
	Python bool
}

// Build stages the runtime tree next to Out and packs it with mksquashfs.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Out == "" {
		return nil, errors.New("runtime: no output path")
	}
	if o.Init == "" {
		return nil, errors.New("runtime: no aleph-init binary given")
	}
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	if o.CACerts == "" {
		o.CACerts = DefaultCACerts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkStatic(o.Init); err != nil {
		return nil, fmt.Errorf("aleph-init %s: %w", o.Init, err)
	}
	if err := checkStatic(o.Busybox); err != nil {
		return nil, fmt.Errorf("busybox %s: %w", o.Busybox, err)
	}
	if fi, err := os.Stat(o.CACerts); err != nil {
		return nil, fmt.Errorf("ca certificates: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ca certificates %s: not a regular file", o.CACerts)
	}
	mksquashfs, err := exec.LookPath("mksquashfs")
	if err != nil {
		return nil, fmt.Errorf("%w: mksquashfs (apt-get install squashfs-tools): %w", ErrNoTool, err)
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}
	stage, err := os.MkdirTemp(filepath.Dir(out), ".runtime-stage-")
	if err != nil {
		return nil, fmt.Errorf("staging dir: %w", err)
	}
	defer os.RemoveAll(stage)

	t, err := newTree(stage)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if o.Python {
		files, err := pythonFiles(ctx, o.Logger)
		if err != nil {
			return nil, err
		}
		if err := t.copyHostPaths(files, o.Logger); err != nil {
			return nil, err
		}
		if err := t.compilePython(ctx, o.Logger); err != nil {
			return nil, err
		}
	}
	if err := t.skeleton(o.Python); err != nil {
		return nil, err
	}
	if err := t.copyFile(o.CACerts, GuestCACerts, 0o644); err != nil {
		return nil, fmt.Errorf("ca certificates: %w", err)
	}
	if err := t.copyFile(o.Init, GuestInit, 0o755); err != nil {
		return nil, fmt.Errorf("aleph-init: %w", err)
	}
	if err := t.copyFile(o.Busybox, GuestBusybox, 0o755); err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	applets, err := busyboxApplets(ctx, o.Busybox)
	if err != nil {
		return nil, err
	}
	if err := t.appletLinks(applets); err != nil {
		return nil, err
	}
	if err := t.usrMerge(); err != nil {
		return nil, err
	}
	files, err := t.count()
	if err != nil {
		return nil, err
	}

	tmp := filepath.Join(stage, "image.squashfs.tmp")
	// The staging tree is a sibling of tmp: keep tmp out of the image.
	root := filepath.Join(stage, "root")
	cmd := exec.CommandContext(ctx, mksquashfs, root, tmp,
		"-noappend", "-reproducible", "-all-root", "-all-time", "0", "-mkfs-time", "0",
		"-no-xattrs", "-comp", "gzip", "-quiet", "-no-progress")
	cmd.Env = withoutEnv(os.Environ(), "SOURCE_DATE_EPOCH") // conflicts with -all-time
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mksquashfs: %w: %s", err, strings.TrimSpace(string(b)))
	}
	sum, size, err := hashFile(tmp)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("install runtime: %w", err)
	}
	o.Logger.Info("runtime built", "path", out, "sha256", sum, "size", size, "files", files, "python", o.Python)
	return &Result{Path: out, SHA256: sum, Size: size, Files: files, Python: o.Python}, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
