package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// tree is the staging root. Every write goes through an os.Root so that a
// symlink in the tree can never redirect a write onto the host, and every
// write replaces the entry (remove, then create) rather than modifying a
// file in place: the Debian stage is hard links into the runtime cache.
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

// openTree opens an existing staged root (the Debian tree).
func openTree(dir string) (*tree, error) {
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

// mountPoints are the directories the executors mount over or bind into
// (sandbox and VM alike) and the ones aleph-init writes to. The image is
// read-only: a missing mount point cannot be created at run time.
var mountPoints = []struct {
	path string
	mode fs.FileMode
}{
	{"/proc", 0o555}, {"/sys", 0o555}, {"/dev", 0o755}, {"/tmp", fs.ModeSticky | 0o777}, {"/run", 0o755},
	{"/run/aleph", 0o755}, {"/opt", 0o755}, {"/opt/code", 0o755}, {"/data", 0o755}, {"/mnt", 0o755},
	{"/root", 0o700}, {"/var/tmp", fs.ModeSticky | 0o777}, {"/etc/ssl/certs", 0o755},
}

// resolvConf is a regular file (never a link) that aleph-init rewrites in
// the writable layer with the nameservers the host configures.
const resolvConf = "# written by aleph-init from the node's configuration\n"

// skeleton lays out the mount points, the files every runtime needs in /etc
// and the CA links. The minimal runtime also gets its own users and
// os-release; the Debian one keeps Debian's.
func (t *tree) skeleton(python bool) error {
	for _, d := range mountPoints {
		if err := t.mkdir(d.path, d.mode); err != nil {
			return fmt.Errorf("mkdir %s: %w", d.path, err)
		}
	}
	files := []struct{ path, content string }{
		{"/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
		{"/etc/hostname", "aleph\n"},
		{"/etc/resolv.conf", resolvConf},
	}
	if !python {
		files = append(files, []struct{ path, content string }{
			{"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
			{"/etc/group", "root:x:0:\nnogroup:x:65534:\n"},
			{"/etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"},
			{"/etc/os-release", "NAME=\"go-aleph runtime\"\nID=go-aleph\nPRETTY_NAME=\"go-aleph minimal runtime\"\n" +
				"VARIANT_ID=minimal\nHOME_URL=\"https://github.com/go-aleph/go-aleph\"\n"},
		}...)
	}
	for _, f := range files {
		if err := t.writeFile(f.path, f.content, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	// OpenSSL (Python's ssl) looks in /usr/lib/ssl, Debian's openssl
	// package points it at /etc/ssl; the minimal runtime has no openssl.
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
