package runtime

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Python runtime defaults.
const (
	DefaultSuite  = "bookworm"
	DefaultMirror = "http://deb.debian.org/debian"
)

// pythonPackages are installed on top of minbase: what aleph-init's asgi
// interface runs (python3 -m uvicorn), fastapi for the programs, msgpack for
// aleph's message encoding, and the CA bundle.
var pythonPackages = []string{"python3", "python3-fastapi", "python3-uvicorn", "python3-msgpack", "ca-certificates"}

// treeFormat versions what Build does to debootstrap's tree (normalize,
// compilePython). Bump it when they change so that cached trees are rebuilt.
const treeFormat = 1

// sourceDateEpoch is the time tools stamp into the tree (shadow's last
// password change): bookworm's release day, 2023-06-10.
const sourceDateEpoch = 1686355200

// Limits on what the mirror and the tree may hand us.
const (
	maxRelease     = 32 << 20 // InRelease of a suite: ~150 KiB for bookworm
	maxDpkgStatus  = 64 << 20
	releaseTimeout = time.Minute
)

var suiteRE = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,63}$`)

// debianBuild stages the Python runtime's Debian tree.
type debianBuild struct {
	suite, mirror, arch string
	cacheDir            string
	debootstrap, cp     string
	log                 *slog.Logger
	cached              bool // set by stage
}

// newDebianBuild checks the options and host before anything is written.
func newDebianBuild(o Options) (*debianBuild, error) {
	d := &debianBuild{suite: o.Suite, mirror: o.Mirror, cacheDir: o.CacheDir, log: o.Logger}
	if d.suite == "" {
		d.suite = DefaultSuite
	}
	if d.mirror == "" {
		d.mirror = DefaultMirror
	}
	if !suiteRE.MatchString(d.suite) {
		return nil, fmt.Errorf("%w: suite %q: want a Debian suite or codename like %s", ErrInvalid, d.suite, DefaultSuite)
	}
	if err := checkMirror(d.mirror); err != nil {
		return nil, err
	}
	d.mirror = strings.TrimSuffix(d.mirror, "/")
	var ok bool
	if d.arch, ok = debianArch(goruntime.GOARCH); !ok {
		return nil, fmt.Errorf("python runtime: no Debian architecture for %s", goruntime.GOARCH)
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	var err error
	if d.debootstrap, err = lookSbin("debootstrap"); err != nil {
		return nil, fmt.Errorf("%w: debootstrap (apt-get install debootstrap): %w", ErrNoTool, err)
	}
	if d.cp, err = exec.LookPath("cp"); err != nil {
		return nil, fmt.Errorf("%w: cp: %w", ErrNoTool, err)
	}
	if d.cacheDir == "" {
		d.cacheDir = DefaultCacheDir()
	}
	if d.cacheDir, err = filepath.Abs(d.cacheDir); err != nil {
		return nil, err
	}
	return d, nil
}

// checkMirror accepts an http, https or file URL that debootstrap and
// sources.list can take as one word.
func checkMirror(mirror string) error {
	bad := func(why string) error { return fmt.Errorf("%w: mirror %q: %s", ErrInvalid, mirror, why) }
	if len(mirror) > 1024 {
		return bad("longer than 1024 bytes")
	}
	if strings.ContainsFunc(mirror, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("contains spaces or control characters")
	}
	u, err := url.Parse(mirror)
	if err != nil {
		return bad(err.Error())
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file":
		return bad("want an http, https or file URL")
	case u.Scheme != "file" && u.Host == "":
		return bad("no host")
	case u.Scheme == "file" && !path.IsAbs(u.Path):
		return bad("want file:///absolute/path")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return bad("no query, fragment or credentials allowed")
	}
	return nil
}

func debianArch(goarch string) (string, bool) {
	arch, ok := map[string]string{"amd64": "amd64", "arm64": "arm64", "riscv64": "riscv64", "386": "i386",
		"ppc64le": "ppc64el", "s390x": "s390x"}[goarch]
	return arch, ok
}

// lookSbin finds an administrator's tool, also when PATH lacks the sbin
// directories (sudo, cron).
func lookSbin(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if fi, serr := os.Stat(filepath.Join(dir, name)); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Join(dir, name), nil
		}
	}
	return "", err
}

// stage makes a copy of the Debian tree for one build and fills the
// manifest's Debian fields. It returns the copy's root and a release func
// that removes it and unlocks the cache.
//
// The tree comes from the cache when the mirror's index (InRelease) and
// every other input are unchanged; else debootstrap makes it, reusing the
// cached .debs. The copy is hard links into the cached tree (cp -al): tree's
// writes replace entries, never modify a file in place, so the cache stays
// intact. The cache lock is held until release: a concurrent build waits
// rather than debootstrapping twice.
func (d *debianBuild) stage(ctx context.Context, m *Manifest) (string, func(), error) {
	release, err := fetchRelease(ctx, d.mirror, d.suite)
	if err != nil {
		return "", nil, err
	}
	relSum := sha256.Sum256(release)
	relHex := hex.EncodeToString(relSum[:])
	dbVersion := toolVersion(ctx, d.debootstrap, "--version")
	inputs := fmt.Sprintf("format %d\nsuite %s\nmirror %s\narch %s\npackages %s\n%s\n",
		treeFormat, d.suite, d.mirror, d.arch, strings.Join(pythonPackages, ","), dbVersion)
	inSum := sha256.Sum256([]byte(inputs))
	prefix := hex.EncodeToString(inSum[:8])

	trees, debs, work := filepath.Join(d.cacheDir, "trees"), filepath.Join(d.cacheDir, "debs"), filepath.Join(d.cacheDir, "work")
	for _, dir := range []string{trees, debs, work} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("runtime cache: %w", err)
		}
	}
	unlock, err := lockCache(ctx, d.cacheDir)
	if err != nil {
		return "", nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unlock()
		}
	}()
	// Left by builds that died: nothing else can be using them.
	if stale, err := os.ReadDir(work); err == nil {
		for _, s := range stale {
			if err := os.RemoveAll(filepath.Join(work, s.Name())); err != nil {
				return "", nil, fmt.Errorf("runtime cache: remove a stale build: %w", err)
			}
		}
	}
	tree := filepath.Join(trees, prefix+"-"+relHex[:16])
	switch _, err := os.Lstat(tree); {
	case err == nil:
		d.cached = true
		d.log.Info("debian tree from the cache", "tree", tree)
	case errors.Is(err, fs.ErrNotExist):
		if err := d.build(ctx, tree, debs, work, prefix); err != nil {
			return "", nil, err
		}
	default:
		return "", nil, fmt.Errorf("runtime cache: %w", err)
	}
	tmp, err := os.MkdirTemp(work, "stage-")
	if err != nil {
		return "", nil, fmt.Errorf("runtime cache: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp); unlock() }
	dst := filepath.Join(tmp, "root")
	if err := d.copyTree(ctx, tree, dst); err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	pkgs, err := installedPackages(dst)
	if err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	m.Variant, m.Suite, m.Mirror, m.Architecture = "python", d.suite, d.mirror, d.arch
	m.ReleaseSHA256, m.Packages = relHex, pkgs
	m.BuiltWith["debootstrap"] = dbVersion
	ok = true
	return dst, cleanup, nil
}

// copyTree links tree to dst, or copies it where links fail.
func (d *debianBuild) copyTree(ctx context.Context, tree, dst string) error {
	start := time.Now()
	b, err := exec.CommandContext(ctx, d.cp, "-al", "-T", tree, dst).CombinedOutput()
	if err != nil {
		d.log.Debug("hard-linking the debian tree failed, copying it", "err", err, "out", tail(string(b), 500))
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if b, err := exec.CommandContext(ctx, d.cp, "-a", "-T", tree, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("copy the debian tree: %w: %s", err, strings.TrimSpace(string(b)))
		}
	}
	d.log.Debug("debian tree staged", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// build debootstraps and normalizes a tree in work and moves it to tree.
// The caller holds the cache lock.
func (d *debianBuild) build(ctx context.Context, tree, debs, work, prefix string) error {
	tmp, err := os.MkdirTemp(work, "build-")
	if err != nil {
		return fmt.Errorf("runtime cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	start := time.Now()
	d.log.Info("debootstrap", "suite", d.suite, "mirror", d.mirror, "packages", pythonPackages)
	if err := d.run(ctx, root, debs); err != nil {
		return err
	}
	d.log.Info("debootstrap done", "took", time.Since(start).Round(time.Millisecond))
	used, err := filepath.Glob(filepath.Join(root, "var", "cache", "apt", "archives", "*.deb"))
	if err != nil {
		return err
	}
	if err := normalize(root); err != nil {
		return fmt.Errorf("normalize the debian tree: %w", err)
	}
	if err := compilePython(ctx, root, d.log); err != nil {
		return err
	}
	trees := filepath.Dir(tree)
	if err := os.Rename(root, tree); err != nil {
		return fmt.Errorf("runtime cache: %w", err)
	}
	// Trees of the same inputs from an older index, and .debs no build
	// uses any more, only take space.
	old, _ := filepath.Glob(filepath.Join(trees, prefix+"-*"))
	for _, o := range old {
		if o != tree {
			if err := os.RemoveAll(o); err != nil {
				d.log.Warn("runtime cache: remove an old tree", "path", o, "err", err)
			}
		}
	}
	keep := make(map[string]bool, len(used))
	for _, u := range used {
		keep[filepath.Base(u)] = true
	}
	cached, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	for _, c := range cached {
		if !keep[filepath.Base(c)] {
			_ = os.Remove(c)
		}
	}
	return nil
}

// debootstrapEnv is a clean environment with the host's proxy settings.
func debootstrapEnv() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C",
		"DEBIAN_FRONTEND=noninteractive", "SOURCE_DATE_EPOCH=" + strconv.Itoa(sourceDateEpoch)}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "no_proxy", "ftp_proxy":
			env = append(env, kv)
		}
	}
	return env
}

// run executes debootstrap in a private mount namespace: the /proc and
// /sys it mounts in the target vanish with it, even when it is killed.
func (d *debianBuild) run(ctx context.Context, root, debs string) error {
	cmd := exec.CommandContext(ctx, d.debootstrap, "--variant=minbase", "--merged-usr", "--arch="+d.arch,
		"--include="+strings.Join(pythonPackages, ","), "--cache-dir="+debs, d.suite, root, d.mirror)
	cmd.Env = debootstrapEnv()
	cmd.Dir = "/"
	out := &lineLog{log: d.log, max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// Go makes / private in the new namespace, so nothing propagates back.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Setpgid: true}
	// debootstrap is a shell script: kill its wget and dpkg too.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("debootstrap %s: %w", d.suite, ctx.Err())
		}
		return fmt.Errorf("debootstrap %s from %s: %w: %s", d.suite, d.mirror, err, out.tail())
	}
	return nil
}

// lineLog logs a command's output line by line at debug level and keeps
// its tail for the error message.
type lineLog struct {
	log     *slog.Logger
	max     int
	partial []byte
	last    []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.last = append(l.last, p...)
	if len(l.last) > l.max {
		l.last = l.last[len(l.last)-l.max:]
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.log.Debug("debootstrap", "out", string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > l.max { // a line without end: log what we have
		l.log.Debug("debootstrap", "out", string(l.partial))
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

func (l *lineLog) tail() string { return strings.TrimSpace(string(l.last)) }

// fetchRelease reads the suite's InRelease from the mirror. Its hash pins
// the package index, hence every version debootstrap would install.
func fetchRelease(ctx context.Context, mirror, suite string) ([]byte, error) {
	u := mirror + "/dists/" + suite + "/InRelease"
	var body io.ReadCloser
	if p, ok := strings.CutPrefix(u, "file://"); ok {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMirror, err)
		}
		body = f
	} else {
		ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMirror, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMirror, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("%w: GET %s: %s", ErrMirror, u, resp.Status)
		}
		body = resp.Body
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxRelease+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrMirror, u, err)
	}
	if len(b) > maxRelease {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMirror, u, maxRelease)
	}
	if !bytes.Contains(b, []byte("\nSHA256:")) {
		return nil, fmt.Errorf("%w: %s is not a Release file", ErrMirror, u)
	}
	return b, nil
}

// installedPackages reads the tree's dpkg status: name → version of every
// installed package (name:arch when several architectures are installed).
func installedPackages(root string) (map[string]string, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open("var/lib/dpkg/status")
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	defer f.Close()
	pkgs, err := parseDpkgStatus(io.LimitReader(f, maxDpkgStatus))
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	if len(pkgs) == 0 {
		return nil, errors.New("dpkg status: no installed package")
	}
	return pkgs, nil
}

// parseDpkgStatus parses dpkg's status file (RFC 822 style stanzas).
func parseDpkgStatus(r io.Reader) (map[string]string, error) {
	type pkg struct{ name, arch, version, status string }
	var all []pkg
	var cur pkg
	flush := func() {
		if cur.name != "" && strings.HasSuffix(cur.status, " installed") {
			all = append(all, cur)
		}
		cur = pkg{}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed line %q", tail(line, 80))
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.name = v
		case "Architecture":
			cur.arch = v
		case "Version":
			cur.version = v
		case "Status":
			cur.status = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	flush()
	count := make(map[string]int)
	for _, p := range all {
		count[p.name]++
	}
	out := make(map[string]string, len(all))
	for _, p := range all {
		name := p.name
		if count[name] > 1 {
			name += ":" + p.arch
		}
		out[name] = p.version
	}
	return out, nil
}

// normalize strips the per-build state from a debootstrapped tree: logs,
// caches, downloaded indexes and .debs, backups, device nodes, the host's
// hostname and resolv.conf (skeleton writes ours) and shadow's dates.
func normalize(dir string) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	remove := []string{"debootstrap", "var/cache/ldconfig/aux-cache", "var/lib/dbus/machine-id",
		"etc/hostname", "etc/resolv.conf", "usr/share/man", "usr/share/info"}
	for _, pattern := range []string{"etc/*-", "var/lib/dpkg/*-old", "var/cache/debconf/*-old"} {
		m, err := fs.Glob(r.FS(), pattern)
		if err != nil {
			return err
		}
		remove = append(remove, m...)
	}
	for _, p := range remove {
		if err := r.RemoveAll(p); err != nil {
			return err
		}
	}
	// Emptied, dirs kept: the mount points and apt's expected layout.
	for _, d := range []struct {
		dir      string
		keepDirs bool
	}{
		{"var/log", true}, {"var/lib/apt/lists", true}, {"var/cache/apt", true}, {"run", true},
		{"tmp", false}, {"var/tmp", false}, {"dev", false},
	} {
		if err := emptyDir(r, d.dir, d.keepDirs, nil); err != nil {
			return err
		}
	}
	// Documentation: only the copyright files stay.
	if err := emptyDir(r, "usr/share/doc", true, func(p string) bool { return path.Base(p) == "copyright" }); err != nil {
		return err
	}
	// Translations: the message catalogs go, locale.alias stays.
	locales, err := fs.ReadDir(r.FS(), "usr/share/locale")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range locales {
		if e.IsDir() {
			if err := r.RemoveAll(path.Join("usr/share/locale", e.Name())); err != nil {
				return err
			}
		}
	}
	if _, err := r.Lstat("etc/machine-id"); err == nil {
		if err := r.WriteFile("etc/machine-id", nil, 0o444); err != nil {
			return err
		}
	}
	return fixShadowDates(r)
}

// emptyDir removes what is below dir (the directories too unless keepDirs),
// except the files keep accepts. A missing dir is fine.
func emptyDir(r *os.Root, dir string, keepDirs bool, keep func(string) bool) error {
	if _, err := r.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var dirs []string
	err := fs.WalkDir(r.FS(), dir, func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p == dir:
		case e.IsDir():
			dirs = append(dirs, p)
		case keep == nil || !keep(p):
			return r.Remove(p)
		}
		return nil
	})
	if err != nil || keepDirs {
		return err
	}
	slices.Reverse(dirs) // children first
	for _, d := range dirs {
		if err := r.Remove(d); err != nil {
			return err
		}
	}
	return nil
}

// fixShadowDates sets the last-change day of /etc/shadow's entries to
// sourceDateEpoch's, whatever stamped it.
func fixShadowDates(r *os.Root) error {
	fi, err := r.Lstat("etc/shadow")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("/etc/shadow is not a regular file")
	}
	b, err := r.ReadFile("etc/shadow")
	if err != nil {
		return err
	}
	day := strconv.Itoa(sourceDateEpoch / 86400)
	var out strings.Builder
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), ":")
		if len(f) == 9 && f[2] != "" {
			f[2] = day
		}
		out.WriteString(strings.Join(f, ":") + "\n")
	}
	if out.String() == string(b) {
		return nil
	}
	// WriteFile keeps the owner (root:shadow) and mode of the existing file.
	return r.WriteFile("etc/shadow", []byte(out.String()), fi.Mode().Perm())
}
