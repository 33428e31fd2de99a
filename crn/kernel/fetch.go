package kernel

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MetaPackage is the Debian package whose dependency names the current
// cloud kernel.
const MetaPackage = "linux-image-cloud-amd64"

// Timeouts of the external tools Fetch runs.
const (
	aptCacheTimeout = time.Minute
	downloadTimeout = 15 * time.Minute
	unpackTimeout   = 5 * time.Minute
)

// Limits on the package and what Fetch unpacks from it.
const (
	maxDebSize     = 1 << 30
	maxUnpacked    = 2 << 30
	maxBzImageSize = 128 << 20
	maxToolOutput  = 1 << 20
)

var (
	// ErrNoTool is a missing host tool (apt-get, apt-cache, dpkg-deb).
	ErrNoTool = errors.New("required tool not found")
	// ErrPackageNotFound means apt does not know the package; its lists
	// may be stale.
	ErrPackageNotFound = errors.New("kernel package not found")
	// ErrDownload is a failed apt-get download (network, mirror, apt).
	ErrDownload = errors.New("kernel package download failed")
	// ErrBadPackage is an invalid package name or a .deb that is not the
	// kernel package asked for.
	ErrBadPackage = errors.New("bad kernel package")
)

// Options configure Fetch.
type Options struct {
	// Dir receives the kernel; default DefaultDir().
	Dir string
	// Package is the exact Debian package, e.g.
	// linux-image-6.1.0-56-cloud-amd64; default the one MetaPackage
	// depends on.
	Package string
	// Force downloads again even when Dir holds a complete kernel of
	// Package.
	Force bool
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

// packageName is a Debian kernel image package: no globs or options, so
// apt-get download fetches exactly one package.
var packageName = regexp.MustCompile(`^linux-image-[a-z0-9][a-z0-9.+-]*$`)

// ValidatePackageName accepts an exact linux-image-* package name.
func ValidatePackageName(p string) error {
	if len(p) > 128 || !packageName.MatchString(p) {
		return fmt.Errorf("%w: %q is not an exact linux-image-… package name", ErrBadPackage, p)
	}
	return nil
}

// Fetch makes o.Dir hold the guest kernel from the Debian package: it
// downloads the .deb with apt-get, extracts the PVH vmlinux and the needed
// modules, writes the manifest and swaps the result into place. If o.Dir
// already holds a complete kernel of that package, Fetch returns it
// without downloading (unless o.Force).
func Fetch(ctx context.Context, o Options) (*Kernel, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" {
		o.Dir = DefaultDir()
		if o.Dir == "" {
			return nil, errors.New("kernel: no directory given and no cache directory known (set HOME or pass a directory)")
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	wanted := WantedModules()
	pkg := o.Package
	if pkg == "" {
		if pkg, err = ResolvePackage(ctx); err != nil {
			// Offline or not Debian: a complete kernel already here will do.
			if k, lerr := Load(dir); lerr == nil && !o.Force && k.Has(wanted) {
				log.Warn("cannot resolve the kernel package, using the fetched kernel", "dir", dir, "package", k.Package, "err", err)
				return k, nil
			}
			return nil, err
		}
		log.Debug("resolved kernel package", "meta", MetaPackage, "package", pkg)
	} else if err := ValidatePackageName(pkg); err != nil {
		return nil, err
	}
	if !o.Force {
		k, err := Load(dir)
		switch {
		case err == nil && k.Package == pkg && k.Has(wanted):
			log.Info("kernel already fetched", "dir", dir, "package", pkg, "version", k.Version)
			return k, nil
		case err == nil:
			log.Info("replacing kernel", "dir", dir, "have", k.Package, "want", pkg)
		case errors.Is(err, fs.ErrNotExist):
		default:
			log.Warn("existing kernel unusable, fetching again", "dir", dir, "err", err)
		}
	}
	if err := checkReplaceable(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("kernel directory: %w", err)
	}
	removeStaleWork(log, dir)
	// The work dir sits next to dir so the final rename stays on one
	// filesystem.
	work, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+"-fetch-")
	if err != nil {
		return nil, fmt.Errorf("kernel work directory: %w", err)
	}
	defer os.RemoveAll(work)

	start := time.Now()
	deb, err := download(ctx, log, filepath.Join(work, "download"), pkg)
	if err != nil {
		return nil, err
	}
	m := manifest{Package: pkg, ModuleSHA256: make(map[string]string)}
	var debSize int64
	if m.DebSHA256, debSize, err = fileSHA256(deb, maxDebSize); err != nil {
		return nil, fmt.Errorf("kernel package: %w", err)
	}
	if m.PackageVersion, err = checkDeb(ctx, deb, pkg); err != nil {
		return nil, err
	}
	log.Info("downloaded kernel package", "package", pkg, "version", m.PackageVersion,
		"bytes", debSize, "sha256", m.DebSHA256, "took", time.Since(start).Round(time.Millisecond))

	t := time.Now()
	u, err := unpack(ctx, deb, filepath.Join(work, "unpack"))
	if err != nil {
		return nil, err
	}
	m.Version = u.version
	log.Debug("unpacked kernel package", "version", u.version, "modules", len(u.modules),
		"took", time.Since(t).Round(time.Millisecond))

	stage := filepath.Join(work, "stage")
	if err := os.MkdirAll(filepath.Join(stage, ModulesDir), 0o755); err != nil {
		return nil, err
	}
	t = time.Now()
	var vmSize int64
	if m.VmlinuxSHA256, vmSize, err = writeVmlinux(u.vmlinuz, filepath.Join(stage, VmlinuxName)); err != nil {
		return nil, err
	}
	log.Info("extracted vmlinux", "bytes", vmSize, "sha256", m.VmlinuxSHA256, "took", time.Since(t).Round(time.Millisecond))

	res, err := resolveModules(wanted, u.modules, u.builtin, u.version)
	if err != nil {
		return nil, err
	}
	for _, name := range res.order {
		dst := filepath.Join(stage, ModulesDir, name+".ko")
		if err := os.Rename(u.modules[name], dst); err != nil {
			return nil, err
		}
		if err := syncFile(dst); err != nil {
			return nil, err
		}
		if m.ModuleSHA256[name], _, err = fileSHA256(dst, maxModuleSize); err != nil {
			return nil, err
		}
	}
	m.Modules, m.Builtin = res.order, res.builtin
	log.Info("kernel modules", "load_order", res.order, "builtin", res.builtin)

	b, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(stage, ManifestName), append(b, '\n')); err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(stage, ModulesDir), stage} {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	if err := install(stage, dir); err != nil {
		return nil, err
	}
	k, err := Load(dir)
	if err != nil {
		return nil, fmt.Errorf("verifying the installed kernel: %w", err)
	}
	log.Info("kernel fetched", "dir", dir, "version", k.Version, "took", time.Since(start).Round(time.Millisecond))
	return k, nil
}

// ResolvePackage asks apt-cache for the exact kernel package MetaPackage
// depends on (e.g. linux-image-6.1.0-56-cloud-amd64).
func ResolvePackage(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, aptCacheTimeout)
	defer cancel()
	out, err := runTool(ctx, "", "apt-cache", "depends", MetaPackage)
	if err != nil {
		if bytes.Contains(out, []byte("Unable to locate")) || bytes.Contains(out, []byte("No packages found")) {
			return "", fmt.Errorf("%w: apt does not know %s: run apt-get update and retry", ErrPackageNotFound, MetaPackage)
		}
		return "", err
	}
	return parseDepends(out)
}

// parseDepends picks the single linux-image-*-cloud-amd64 "Depends:" line
// of apt-cache depends output.
func parseDepends(out []byte) (string, error) {
	var found []string
	for line := range strings.Lines(string(out)) {
		dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends:")
		if !ok {
			continue
		}
		dep = strings.Trim(strings.TrimSpace(dep), "<>")
		if strings.HasPrefix(dep, "linux-image-") && strings.HasSuffix(dep, "-cloud-amd64") && dep != MetaPackage {
			found = append(found, dep)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%w: apt-cache depends %s names %d kernel packages %v, want one (run apt-get update, or pass the package)",
			ErrPackageNotFound, MetaPackage, len(found), found)
	}
	if err := ValidatePackageName(found[0]); err != nil {
		return "", err
	}
	return found[0], nil
}

// download runs apt-get download for the exact package into dir and
// returns the .deb's path.
func download(ctx context.Context, log *slog.Logger, dir, pkg string) (string, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	log.Info("downloading kernel package", "package", pkg)
	out, err := runTool(ctx, dir, "apt-get", "download", pkg)
	if err != nil {
		if isAptNotFound(out) {
			return "", fmt.Errorf("%w: apt cannot find %s: run apt-get update and retry: %s",
				ErrPackageNotFound, pkg, firstLine(out))
		}
		return "", fmt.Errorf("%w: %w", ErrDownload, err)
	}
	log.Debug("apt-get download", "output", string(bytes.TrimSpace(out)))
	debs, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil {
		return "", err
	}
	if len(debs) != 1 {
		return "", fmt.Errorf("%w: apt-get download %s left %d .deb files, want 1", ErrBadPackage, pkg, len(debs))
	}
	return debs[0], nil
}

func isAptNotFound(out []byte) bool {
	for _, s := range []string{"Unable to locate package", "has no installation candidate", "Can't select candidate version", "Can't select version"} {
		if bytes.Contains(out, []byte(s)) {
			return true
		}
	}
	return false
}

func firstLine(b []byte) string {
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "E:") {
			return line
		}
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// checkDeb checks the .deb's control fields name the package asked for and
// returns its version.
func checkDeb(ctx context.Context, deb, pkg string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, aptCacheTimeout)
	defer cancel()
	out, err := runTool(ctx, "", "dpkg-deb", "--showformat=${Package}\t${Version}\t${Architecture}\n", "--show", deb)
	if err != nil {
		return "", err
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) != 3 || f[0] != pkg {
		return "", fmt.Errorf("%w: %s holds %q, want package %s", ErrBadPackage, filepath.Base(deb), strings.TrimSpace(string(out)), pkg)
	}
	if f[2] != "amd64" {
		return "", fmt.Errorf("%w: %s is for %s, want amd64", ErrBadPackage, pkg, f[2])
	}
	return f[1], nil
}

// runTool runs a host tool in the C locale and returns its combined
// output (bounded); a failure's error quotes the output.
func runTool(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (apt-get install apt dpkg): %w", ErrNoTool, name, err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	var out boundedBuffer
	out.max = maxToolOutput
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return out.Bytes(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctx.Err())
		}
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// unpacked is what Fetch takes from the package.
type unpacked struct {
	version string
	vmlinuz string            // path of the bzImage
	modules map[string]string // name -> .ko path
	builtin map[string]bool
}

// unpack streams the package's data archive through dpkg-deb and keeps
// only the bzImage, modules.builtin and the .ko files (flattened by module
// name), so nothing from the archive is written outside dir.
func unpack(ctx context.Context, deb, dir string) (*unpacked, error) {
	bin, err := exec.LookPath("dpkg-deb")
	if err != nil {
		return nil, fmt.Errorf("%w: dpkg-deb (apt-get install dpkg): %w", ErrNoTool, err)
	}
	ctx, cancel := context.WithTimeout(ctx, unpackTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--fsys-tarfile", deb)
	var stderr boundedBuffer
	stderr.max = maxToolOutput
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dpkg-deb: %w", err)
	}
	u, rerr := readDataTar(stdout, dir, filepath.Join(dir, "ko"))
	if rerr != nil {
		cancel() // stop dpkg-deb rather than drain what we no longer read
	} else {
		// Drain the tar's padding so dpkg-deb does not fail on a closed pipe.
		_, rerr = io.Copy(io.Discard, stdout)
	}
	werr := cmd.Wait()
	if rerr != nil {
		return nil, fmt.Errorf("unpacking %s: %w", filepath.Base(deb), rerr)
	}
	if werr != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", filepath.Base(deb), werr, bytes.TrimSpace(stderr.Bytes()))
	}
	return u, nil
}

// readDataTar reads the data archive of a kernel image package.
func readDataTar(r io.Reader, dir, koDir string) (*unpacked, error) {
	if err := os.MkdirAll(koDir, 0o755); err != nil {
		return nil, err
	}
	u := &unpacked{modules: make(map[string]string)}
	compressed := make(map[string]string)
	var total int64
	setVersion := func(v, where string) error {
		if !validVersion(v) {
			return fmt.Errorf("%w: invalid kernel version %q in %s", ErrBadPackage, v, where)
		}
		if u.version != "" && u.version != v {
			return fmt.Errorf("%w: files for kernel %s and %s", ErrBadPackage, u.version, v)
		}
		u.version = v
		return nil
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		name = strings.TrimPrefix(name, "usr/") // merged-/usr packages
		if hdr.Size < 0 {
			return nil, fmt.Errorf("%w: %s has a negative size", ErrBadPackage, name)
		}
		if v, ok := strings.CutPrefix(name, "boot/vmlinuz-"); ok {
			if u.vmlinuz != "" {
				return nil, fmt.Errorf("%w: more than one boot/vmlinuz-*", ErrBadPackage)
			}
			if err := setVersion(v, name); err != nil {
				return nil, err
			}
			if hdr.Size > maxBzImageSize {
				return nil, fmt.Errorf("%s of %d bytes: %w (limit %d)", name, hdr.Size, ErrTooLarge, maxBzImageSize)
			}
			u.vmlinuz = filepath.Join(dir, "vmlinuz")
			if err := writeFrom(u.vmlinuz, tr, hdr.Size); err != nil {
				return nil, err
			}
			total += hdr.Size
			continue
		}
		rest, ok := strings.CutPrefix(name, "lib/modules/")
		if !ok {
			continue
		}
		v, file, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		base := path.Base(file)
		switch {
		case file == "modules.builtin":
			if err := setVersion(v, name); err != nil {
				return nil, err
			}
			if u.builtin, err = parseBuiltin(tr); err != nil {
				return nil, err
			}
		case strings.HasSuffix(base, ".ko"):
			if err := setVersion(v, name); err != nil {
				return nil, err
			}
			mod := NormalizeModuleName(base)
			if !ValidModuleName(mod) {
				return nil, fmt.Errorf("%w: invalid module file name %s", ErrBadPackage, name)
			}
			if _, dup := u.modules[mod]; dup {
				return nil, fmt.Errorf("%w: module %s appears twice", ErrBadPackage, mod)
			}
			if hdr.Size > maxModuleSize {
				return nil, fmt.Errorf("%s of %d bytes: %w (limit %d)", name, hdr.Size, ErrTooLarge, maxModuleSize)
			}
			if total += hdr.Size; total > maxUnpacked {
				return nil, fmt.Errorf("package contents: %w (limit %d bytes)", ErrTooLarge, maxUnpacked)
			}
			p := filepath.Join(koDir, mod+".ko")
			if err := writeFrom(p, tr, hdr.Size); err != nil {
				return nil, err
			}
			u.modules[mod] = p
		case strings.Contains(base, ".ko."):
			compressed[NormalizeModuleName(base[:strings.Index(base, ".ko.")])] = base
		}
	}
	if u.vmlinuz == "" {
		return nil, fmt.Errorf("%w: no boot/vmlinuz-* in the package", ErrBadPackage)
	}
	if u.builtin == nil {
		return nil, fmt.Errorf("%w: no lib/modules/%s/modules.builtin in the package", ErrBadPackage, u.version)
	}
	for _, w := range WantedModules() {
		if _, ok := u.modules[w]; !ok && compressed[w] != "" {
			return nil, fmt.Errorf("%w: module %s is compressed (%s); only plain .ko files are supported",
				ErrBadPackage, w, compressed[w])
		}
	}
	return u, nil
}

// writeFrom writes exactly size bytes from r to a new file.
func writeFrom(file string, r io.Reader, size int64) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", file, err)
	}
	return f.Close()
}

// writeVmlinux extracts the bzImage into a synced file and returns its
// sha256 and size.
func writeVmlinux(bzImage, out string) (string, int64, error) {
	in, err := os.Open(bzImage)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return "", 0, err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	cw := &countWriter{w: bw}
	if err := ExtractVmlinux(in, fi.Size(), cw); err != nil {
		return "", 0, fmt.Errorf("extracting vmlinux: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", 0, err
	}
	if err := f.Sync(); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, f.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeFileSync(file string, b []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncFile(file string) error {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// staleWork is the age after which a work directory belongs to a Fetch
// that crashed: longer than any Fetch runs given its tool timeouts.
const staleWork = time.Hour

// removeStaleWork deletes work directories that crashed Fetches of dir
// left behind.
func removeStaleWork(log *slog.Logger, dir string) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+"-fetch-*"))
	for _, p := range old {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > staleWork {
			log.Info("removing a stale kernel work directory", "path", p)
			if err := os.RemoveAll(p); err != nil {
				log.Warn("cannot remove a stale kernel work directory", "path", p, "err", err)
			}
		}
	}
}

// checkReplaceable refuses to replace a dir that exists but does not look
// like a kernel directory, so a wrong --dir never deletes someone's files.
func checkReplaceable(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("kernel directory %s exists and is not a directory", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); err != nil {
		return fmt.Errorf("kernel directory %s is not empty and has no %s: refusing to replace it", dir, ManifestName)
	}
	return nil
}

// install puts stage at dir: a plain rename when dir is absent or empty,
// else an atomic exchange, after which the old kernel is removed.
func install(stage, dir string) error {
	if err := os.Rename(stage, dir); err == nil {
		return syncDir(filepath.Dir(dir))
	}
	if err := unix.Renameat2(unix.AT_FDCWD, stage, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
		// No RENAME_EXCHANGE on this filesystem: two renames; a crash in
		// between leaves no kernel, never a partial one.
		old := stage + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("moving the old kernel aside: %w", err)
		}
		if err := os.Rename(stage, dir); err != nil {
			return fmt.Errorf("installing the kernel: %w", err)
		}
		return errors.Join(syncDir(filepath.Dir(dir)), os.RemoveAll(old))
	}
	// stage now holds the old kernel.
	return errors.Join(syncDir(filepath.Dir(dir)), os.RemoveAll(stage))
}
