// Package kernel fetches and verifies the guest kernel of the qemu microVM
// backend: Debian's cloud kernel, unpacked from its .deb into an
// uncompressed PVH vmlinux (QEMU -M microvm boots it without firmware
// decompression) plus the closure of the virtio, squashfs, overlay and vsock
// modules the guest's init loads, since Debian builds them all as modules.
//
// A fetched kernel is a directory:
//
//	<dir>/vmlinux            the ELF kernel
//	<dir>/modules/<name>.ko  the modules, see kernel.json for the load order
//	<dir>/kernel.json        the manifest with package, version and hashes
//
// Fetch replaces the directory atomically, so it always holds either a
// complete kernel or the previous one.
package kernel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// File names inside a kernel directory.
const (
	ManifestName = "kernel.json"
	VmlinuxName  = "vmlinux"
	ModulesDir   = "modules"
)

const maxManifestSize = 1 << 20

var (
	// ErrNoKernel is a directory without a fetched kernel (it also matches
	// fs.ErrNotExist).
	ErrNoKernel = errors.New("no fetched kernel")
	// ErrCorrupt is a kernel directory whose manifest or files do not match.
	ErrCorrupt = errors.New("kernel directory corrupt")
)

// Module is one kernel module of a fetched kernel.
type Module struct {
	Name string // normalised module name, e.g. virtio_mmio
	Path string // absolute path of the .ko file
}

// Kernel is a fetched, verified guest kernel.
type Kernel struct {
	Dir            string
	Vmlinux        string // absolute path of the ELF kernel
	Version        string // uname -r, e.g. 6.1.0-56-cloud-amd64
	Package        string // e.g. linux-image-6.1.0-56-cloud-amd64
	PackageVersion string // e.g. 6.1.192-2
	DebSHA256      string
	VmlinuxSHA256  string
	Modules        []Module // load order: every module after its dependencies
	Builtin        []string // needed modules that are built into the kernel
}

// manifest is kernel.json.
type manifest struct {
	Package        string            `json:"package"`
	PackageVersion string            `json:"package_version"`
	Version        string            `json:"version"`
	DebSHA256      string            `json:"deb_sha256"`
	VmlinuxSHA256  string            `json:"vmlinux_sha256"`
	Modules        []string          `json:"modules"`
	ModuleSHA256   map[string]string `json:"module_sha256"`
	Builtin        []string          `json:"builtin,omitempty"`
}

// DefaultDir is where Fetch puts the kernel by default:
// /var/cache/go-aleph/kernel for root, else go-aleph/kernel under the
// user's cache directory ($XDG_CACHE_HOME or ~/.cache). It is empty when
// neither is known.
func DefaultDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/go-aleph/kernel"
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "go-aleph", "kernel")
}

// Load reads the kernel in dir and verifies it: the manifest must parse and
// the vmlinux and every module must match their recorded hashes.
func Load(dir string) (*Kernel, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: no kernel directory given", ErrNoKernel)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	m, err := readManifest(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	k := &Kernel{
		Dir:            dir,
		Vmlinux:        filepath.Join(dir, VmlinuxName),
		Version:        m.Version,
		Package:        m.Package,
		PackageVersion: m.PackageVersion,
		DebSHA256:      m.DebSHA256,
		VmlinuxSHA256:  m.VmlinuxSHA256,
		Builtin:        m.Builtin,
	}
	sum, size, err := fileSHA256(k.Vmlinux, MaxVmlinuxSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if sum != m.VmlinuxSHA256 {
		return nil, fmt.Errorf("%w: %s has sha256 %s, manifest says %s", ErrCorrupt, k.Vmlinux, sum, m.VmlinuxSHA256)
	}
	if size == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrCorrupt, k.Vmlinux)
	}
	for _, name := range m.Modules {
		p := filepath.Join(dir, ModulesDir, name+".ko")
		sum, _, err := fileSHA256(p, maxModuleSize)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if sum != m.ModuleSHA256[name] {
			return nil, fmt.Errorf("%w: %s has sha256 %s, manifest says %s", ErrCorrupt, p, sum, m.ModuleSHA256[name])
		}
		k.Modules = append(k.Modules, Module{Name: name, Path: p})
	}
	return k, nil
}

// Has reports whether every module in names (normalised) is either loaded
// from the initramfs or built into k.
func (k *Kernel) Has(names []string) bool {
	for _, n := range names {
		n = NormalizeModuleName(n)
		if !slices.Contains(k.Builtin, n) && !slices.ContainsFunc(k.Modules, func(m Module) bool { return m.Name == n }) {
			return false
		}
	}
	return true
}

func readManifest(file string) (*manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoKernel, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if len(b) > maxManifestSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrCorrupt, file, maxManifestSize)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, file, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, file, err)
	}
	return &m, nil
}

func (m *manifest) validate() error {
	if err := ValidatePackageName(m.Package); err != nil {
		return err
	}
	if !validVersion(m.Version) {
		return fmt.Errorf("invalid kernel version %q", m.Version)
	}
	for what, s := range map[string]string{"deb_sha256": m.DebSHA256, "vmlinux_sha256": m.VmlinuxSHA256} {
		if !validSHA256(s) {
			return fmt.Errorf("%s %q is not a hex sha256", what, s)
		}
	}
	seen := make(map[string]bool)
	for _, n := range append(slices.Clone(m.Modules), m.Builtin...) {
		if !ValidModuleName(n) {
			return fmt.Errorf("invalid module name %q", n)
		}
		if seen[n] {
			return fmt.Errorf("module %s listed twice", n)
		}
		seen[n] = true
	}
	for _, n := range m.Modules {
		if !validSHA256(m.ModuleSHA256[n]) {
			return fmt.Errorf("module %s has no valid sha256", n)
		}
	}
	return nil
}

func validSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && hex.EncodeToString(b) == s
}

// validVersion accepts a uname -r string: letters, digits and ._+-, which
// keeps it safe inside paths.
func validVersion(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// fileSHA256 hashes a regular file of at most limit bytes.
func fileSHA256(file string, limit int64) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", file)
	}
	if fi.Size() > limit {
		return "", 0, fmt.Errorf("%s of %d bytes: %w (limit %d)", file, fi.Size(), ErrTooLarge, limit)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, limit+1))
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
