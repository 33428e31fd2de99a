// Package runtime builds program runtimes: the read-only squashfs root a
// sandbox or a microVM runs programs from, with the aleph-init guest agent at
// /sbin/aleph-init and the mount points the executors and aleph-init expect.
//
// Two variants exist. The minimal runtime holds a static busybox with its
// applet links, CA certificates and a minimal /etc. The Python runtime is
// Debian (bookworm by default) minbase made by debootstrap, with python3,
// fastapi, uvicorn and msgpack, for ASGI programs.
//
// Builds are reproducible: mksquashfs stores every entry at time 0 without
// xattrs, the staged tree has fixed modes, and the Debian tree is stripped of
// logs, caches and other per-build state, so the same inputs (the same
// package versions, the same aleph-init) give a byte-identical image. The
// image's hash and inputs are recorded in a manifest next to it (<out>.json).
// The layout is merged-/usr like Debian 12: /bin, /sbin, /lib and /lib64 are
// links into /usr.
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

// Default host paths of the minimal runtime's inputs (Debian packages
// busybox-static and ca-certificates).
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

// Errors. Build wraps them with the offending path or option.
var (
	// ErrNotStatic is an executable that needs a dynamic loader.
	ErrNotStatic = errors.New("not a static executable")
	// ErrNotELF is an input that is not an ELF executable for this machine.
	ErrNotELF = errors.New("not an executable ELF file")
	// ErrNoTool is a missing host tool (mksquashfs, debootstrap, go).
	ErrNoTool = errors.New("required tool not found")
	// ErrNotRoot means the Python runtime was asked for without root:
	// debootstrap installs packages as root in a chroot.
	ErrNotRoot = errors.New("the python runtime is built with debootstrap, which needs root")
	// ErrInvalid is a malformed option (suite, mirror).
	ErrInvalid = errors.New("invalid option")
	// ErrMirror means the Debian mirror did not give the suite's index.
	ErrMirror = errors.New("debian mirror unavailable")
)

// Options configure Build.
type Options struct {
	// Out is the squashfs file to write (replaced atomically). Required.
	// The manifest is written next to it as Out + ".json".
	Out string
	// Init is the static aleph-init binary. Required.
	Init string
	// Busybox is a static busybox for the minimal runtime; default
	// DefaultBusybox. Unused by the Python runtime.
	Busybox string
	// CACerts is the minimal runtime's CA bundle; default DefaultCACerts.
	// The Python runtime has Debian's ca-certificates.
	CACerts string
	// Python builds the Debian runtime with python3, fastapi, uvicorn and
	// msgpack (debootstrap; needs root and the mirror).
	Python bool
	// Suite is the Debian suite of the Python runtime; default DefaultSuite.
	Suite string
	// Mirror is the Debian mirror (http, https or file URL); default
	// DefaultMirror.
	Mirror string
	// CacheDir keeps downloaded packages and the Debian tree between builds;
	// default DefaultCacheDir().
	CacheDir string
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

// Result describes a built runtime.
type Result struct {
	Path     string
	SHA256   string // hex
	Size     int64
	Files    int // entries in the image (files, links, dirs), root excluded
	Python   bool
	Manifest string // the manifest's path (Path + ".json")
	// Packages maps the Python runtime's Debian packages to their versions.
	Packages map[string]string
	// Cached says the Debian tree came from CacheDir (no debootstrap).
	Cached bool
}

// Build stages the runtime tree next to Out, packs it with mksquashfs and
// writes the manifest.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Out == "" {
		return nil, errors.New("runtime: no output path")
	}
	if o.Init == "" {
		return nil, errors.New("runtime: no aleph-init binary given")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkStatic(o.Init); err != nil {
		return nil, fmt.Errorf("aleph-init %s: %w", o.Init, err)
	}
	var deb *debianBuild
	if o.Python {
		var err error
		if deb, err = newDebianBuild(o); err != nil {
			return nil, err
		}
	} else if err := checkMinimalInputs(&o); err != nil {
		return nil, err
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

	m := &Manifest{Variant: "minimal", BuiltWith: map[string]string{"mksquashfs": toolVersion(ctx, mksquashfs, "-version")}}
	if m.AlephInitSHA256, _, err = hashFile(o.Init); err != nil {
		return nil, err
	}
	res := &Result{Python: o.Python}
	root := filepath.Join(stage, "root")
	var t *tree
	if o.Python {
		var release func()
		if root, release, err = deb.stage(ctx, m); err != nil {
			return nil, err
		}
		defer release()
		res.Packages, res.Cached = m.Packages, deb.cached
		if t, err = openTree(root); err != nil {
			return nil, err
		}
		defer t.close()
		if err := t.skeleton(true); err != nil {
			return nil, err
		}
	} else {
		if t, err = newTree(stage); err != nil {
			return nil, err
		}
		defer t.close()
		if err := stageMinimal(ctx, t, o, m); err != nil {
			return nil, err
		}
	}
	if err := t.copyFile(o.Init, GuestInit, 0o755); err != nil {
		return nil, fmt.Errorf("aleph-init: %w", err)
	}
	if !o.Python {
		if err := t.usrMerge(); err != nil {
			return nil, err
		}
	}
	if res.Files, err = t.count(); err != nil {
		return nil, err
	}

	// tmp is outside the staged root: keep it out of the image.
	tmp := filepath.Join(stage, "image.squashfs.tmp")
	args := []string{root, tmp, "-noappend", "-reproducible", "-all-time", "0", "-mkfs-time", "0",
		"-no-xattrs", "-comp", "gzip", "-quiet", "-no-progress"}
	if !o.Python {
		// Staged by whoever runs the build; Debian's tree keeps its owners
		// (root:shadow /etc/shadow, setgid tools).
		args = append(args, "-all-root")
	}
	cmd := exec.CommandContext(ctx, mksquashfs, args...)
	cmd.Env = withoutEnv(os.Environ(), "SOURCE_DATE_EPOCH") // conflicts with -all-time
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mksquashfs: %w: %s", err, strings.TrimSpace(string(b)))
	}
	if res.SHA256, res.Size, err = hashFile(tmp); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("install runtime: %w", err)
	}
	res.Path = out
	m.SHA256, m.Size = res.SHA256, res.Size
	if res.Manifest, err = writeManifest(out, m); err != nil {
		return nil, err
	}
	o.Logger.Info("runtime built", "path", out, "sha256", res.SHA256, "size", res.Size, "files", res.Files,
		"python", o.Python, "manifest", res.Manifest)
	return res, nil
}

// checkMinimalInputs fills the minimal runtime's defaults and checks them.
func checkMinimalInputs(o *Options) error {
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	if o.CACerts == "" {
		o.CACerts = DefaultCACerts
	}
	if err := checkStatic(o.Busybox); err != nil {
		return fmt.Errorf("busybox %s: %w", o.Busybox, err)
	}
	if fi, err := os.Stat(o.CACerts); err != nil {
		return fmt.Errorf("ca certificates: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("ca certificates %s: not a regular file", o.CACerts)
	}
	return nil
}

// stageMinimal lays out the busybox runtime.
func stageMinimal(ctx context.Context, t *tree, o Options, m *Manifest) error {
	if err := t.skeleton(false); err != nil {
		return err
	}
	if err := t.copyFile(o.CACerts, GuestCACerts, 0o644); err != nil {
		return fmt.Errorf("ca certificates: %w", err)
	}
	if err := t.copyFile(o.Busybox, GuestBusybox, 0o755); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	applets, err := busyboxApplets(ctx, o.Busybox)
	if err != nil {
		return err
	}
	if err := t.appletLinks(applets); err != nil {
		return err
	}
	if m.BusyboxSHA256, _, err = hashFile(o.Busybox); err != nil {
		return err
	}
	m.CACertsSHA256, _, err = hashFile(o.CACerts)
	return err
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

// toolVersion is the first line a tool prints for its version flag, for the
// manifest ("unknown" when it prints nothing useful).
func toolVersion(ctx context.Context, bin string, args ...string) string {
	out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	if line = strings.TrimSpace(line); line == "" || len(line) > 200 {
		return "unknown"
	}
	return line
}
