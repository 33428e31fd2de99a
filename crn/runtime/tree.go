package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// tree is the staging root. Every write goes through an os.Root so that a
// copied symlink can never redirect a write onto the host.
type tree struct {
	dir  string
	root *os.Root
}

func newTree(stage string) (*tree, error) {
	dir := filepath.Join(stage, "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("staging root: %w", err)
	}
	// Modes are explicit everywhere: the umask must not leak into the image.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &tree{dir: dir, root: r}, nil
}

func (t *tree) close() { t.root.Close() }

// mergedDirs are the top-level directories that are links into /usr.
var mergedDirs = []string{"bin", "sbin", "lib", "lib64", "lib32", "libx32"}

// canonical turns a guest path into its merged-/usr place relative to the
// root: /bin/sh → usr/bin/sh. "" is the root itself.
func canonical(p string) string {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	first, rest, _ := strings.Cut(rel, "/")
	if slices.Contains(mergedDirs, first) {
		return path.Join("usr", first, rest)
	}
	return rel
}

// mkdirAll creates dir and its missing parents with mode 0755 and refuses
// to cross a symlink.
func (t *tree) mkdirAll(dir string) error {
	if dir == "" || dir == "." {
		return nil
	}
	cur := ""
	for _, c := range strings.Split(dir, "/") {
		cur = path.Join(cur, c)
		fi, err := t.root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := t.root.Mkdir(cur, 0o755); err != nil {
				return err
			}
			if err := t.root.Chmod(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("staging /%s: %s is not a directory", dir, "/"+cur)
		}
	}
	return nil
}

// mkdir makes dir (a guest path) with mode, even if it exists.
func (t *tree) mkdir(dir string, mode fs.FileMode) error {
	rel := canonical(dir)
	if err := t.mkdirAll(rel); err != nil {
		return err
	}
	return t.root.Chmod(rel, mode)
}

// prepare makes rel's parents and removes whatever is at rel.
func (t *tree) prepare(rel string) error {
	if err := t.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	if err := t.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace /%s: %w", rel, err)
	}
	return nil
}

func (t *tree) writeFrom(dst string, r io.Reader, mode fs.FileMode) error {
	rel := canonical(dst)
	if err := t.prepare(rel); err != nil {
		return err
	}
	f, err := t.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write /%s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return t.root.Chmod(rel, mode)
}

func (t *tree) writeFile(dst, content string, mode fs.FileMode) error {
	return t.writeFrom(dst, strings.NewReader(content), mode)
}

func (t *tree) copyFile(src, dst string, mode fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return t.writeFrom(dst, f, mode)
}

func (t *tree) symlink(target, dst string) error {
	rel := canonical(dst)
	if err := t.prepare(rel); err != nil {
		return err
	}
	return t.root.Symlink(target, rel)
}

func (t *tree) exists(dst string) bool {
	_, err := t.root.Lstat(canonical(dst))
	return err == nil
}

// skippedPrefixes are package paths a runtime does not need.
var skippedPrefixes = []string{
	"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/", "/usr/share/lintian/",
}

func skipped(p string) bool {
	for _, s := range skippedPrefixes {
		if p+"/" == s || strings.HasPrefix(p, s) {
			return true
		}
	}
	return false
}

// copyHostPaths copies host paths (as dpkg lists them) into the tree:
// regular files (permission bits only, no setuid), symlinks and directories.
// The first path to claim a place wins; missing paths (removed conffiles,
// diversions) are skipped.
func (t *tree) copyHostPaths(paths []string, log *slog.Logger) error {
	for _, p := range paths {
		rel := canonical(p)
		if rel == "" || skipped(p) {
			continue
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			log.Debug("listed but missing on the host", "path", p)
			continue
		} else if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if err := t.mkdirAll(rel); err != nil {
				return err
			}
			mode := fi.Mode().Perm() | fi.Mode()&fs.ModeSticky
			if err := t.root.Chmod(rel, mode); err != nil {
				return err
			}
		case t.exists(rel):
			// /bin/x and /usr/bin/x on a merged host: the same file.
		case fi.Mode()&fs.ModeSymlink != 0:
			if path.Dir(rel) == "usr" && slices.Contains(mergedDirs, path.Base(rel)) {
				continue // the host's own /bin → usr/bin; usrMerge makes ours
			}
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := t.symlink(target, rel); err != nil {
				return fmt.Errorf("copy link %s: %w", p, err)
			}
		case fi.Mode().IsRegular():
			if err := t.copyFile(p, rel, fi.Mode().Perm()); err != nil {
				return fmt.Errorf("copy %s: %w", p, err)
			}
		default:
			log.Debug("skipping special file", "path", p, "mode", fi.Mode())
		}
	}
	return nil
}

// skeleton lays out /etc, the CA links and the mount points.
func (t *tree) skeleton(python bool) error {
	dirs := []struct {
		path string
		mode fs.FileMode
	}{
		{"/proc", 0o555}, {"/sys", 0o555}, {"/dev", 0o755}, {"/tmp", fs.ModeSticky | 0o777}, {"/run", 0o755},
		{"/run/aleph", 0o755}, {"/opt/code", 0o755}, {"/data", 0o755}, {"/mnt", 0o755},
		{"/root", 0o700}, {"/var/tmp", fs.ModeSticky | 0o777}, {"/etc/ssl/certs", 0o755},
	}
	for _, d := range dirs {
		if err := t.mkdir(d.path, d.mode); err != nil {
			return fmt.Errorf("mkdir %s: %w", d.path, err)
		}
	}
	variant := "minimal"
	if python {
		variant = "python"
	}
	files := []struct{ path, content string }{
		{"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"/etc/group", "root:x:0:\nnogroup:x:65534:\n"},
		{"/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
		{"/etc/hostname", "aleph\n"},
		// aleph-init writes the nameservers the host configures.
		{"/etc/resolv.conf", "# written by aleph-init from the node's configuration\n"},
		{"/etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"},
		{"/etc/os-release", "NAME=\"go-aleph runtime\"\nID=go-aleph\nPRETTY_NAME=\"go-aleph " + variant +
			" runtime\"\nVARIANT_ID=" + variant + "\nHOME_URL=\"https://github.com/go-aleph/go-aleph\"\n"},
	}
	for _, f := range files {
		if err := t.writeFile(f.path, f.content, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	// OpenSSL (Python's ssl) looks in /usr/lib/ssl, Debian points it at
	// /etc/ssl; the openssl package that makes these links is not copied.
	links := []struct{ target, path string }{
		{GuestCACerts, "/usr/lib/ssl/cert.pem"},
		{"/etc/ssl/certs", "/usr/lib/ssl/certs"},
	}
	for _, l := range links {
		if t.exists(l.path) {
			continue
		}
		if err := t.symlink(l.target, l.path); err != nil {
			return fmt.Errorf("link %s: %w", l.path, err)
		}
	}
	return nil
}

// appletLinks points every applet without a real file at busybox.
func (t *tree) appletLinks(applets []string) error {
	for _, a := range applets {
		rel := canonical(a)
		if rel == "" || !strings.Contains(rel, "/") || t.exists(rel) {
			continue // linuxrc and other root-level applets are not wanted
		}
		if err := t.symlink("/usr/bin/busybox", rel); err != nil {
			return fmt.Errorf("applet %s: %w", a, err)
		}
	}
	return nil
}

// usrMerge links /bin, /sbin, /lib… to their /usr directory when it exists.
func (t *tree) usrMerge() error {
	for _, d := range mergedDirs {
		fi, err := t.root.Lstat(path.Join("usr", d))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("staging /usr/%s: not a directory", d)
		}
		if err := t.root.Symlink(path.Join("usr", d), d); err != nil {
			return fmt.Errorf("link /%s: %w", d, err)
		}
	}
	return nil
}

// count is the number of entries below the root.
func (t *tree) count() (int, error) {
	n := -1
	err := filepath.WalkDir(t.dir, func(_ string, _ fs.DirEntry, err error) error {
		n++
		return err
	})
	return n, err
}
