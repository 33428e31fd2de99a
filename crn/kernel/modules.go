package kernel

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Limits on module inputs.
const (
	maxModinfoSize = 1 << 20
	maxModuleSize  = 64 << 20
	maxBuiltinSize = 1 << 20
	maxModuleName  = 55 // MODULE_NAME_LEN - 1
)

var (
	// ErrBadModinfo is a .modinfo section (or module file) that does not
	// parse.
	ErrBadModinfo = errors.New("bad module info")
	// ErrModuleNotFound is a needed module that is neither in the package
	// nor built into the kernel.
	ErrModuleNotFound = errors.New("module not found")
	// ErrModuleCycle is a dependency loop between modules.
	ErrModuleCycle = errors.New("module dependency cycle")
	// ErrVermagic is a module built for another kernel version.
	ErrVermagic = errors.New("module built for another kernel")
)

// WantedModules returns the modules the guest loads (their dependencies are
// added by Fetch): virtio over MMIO (QEMU microvm's transport), its block,
// net and console drivers, squashfs and overlay for the root filesystem,
// and the virtio vsock transport.
func WantedModules() []string {
	return []string{
		"virtio_mmio",
		"virtio_blk",
		"virtio_net",
		"virtio_console",
		"squashfs",
		"overlay",
		"vmw_vsock_virtio_transport",
	}
}

// ModInfo is the part of a module's .modinfo section Fetch uses.
type ModInfo struct {
	Name     string   // name=, normalised (may be empty in old modules)
	Depends  []string // depends=, normalised, in the order listed
	Vermagic string   // vermagic=, e.g. "6.1.0-56-cloud-amd64 SMP mod_unload modversions "
}

// NormalizeModuleName maps a module or file name to the kernel's module
// name: "-" becomes "_" (the kernel treats them alike) and a ".ko" suffix
// is dropped.
func NormalizeModuleName(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(s, ".ko"), "-", "_")
}

// ValidModuleName reports whether s is a normalised module name that is
// safe as a file name.
func ValidModuleName(s string) bool {
	if s == "" || len(s) > maxModuleName {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ParseModinfo parses a .modinfo section: NUL-separated key=value strings
// (NUL padding between them is skipped).
func ParseModinfo(b []byte) (ModInfo, error) {
	var mi ModInfo
	if len(b) > maxModinfoSize {
		return mi, fmt.Errorf("%w: .modinfo of %d bytes is over %d", ErrBadModinfo, len(b), maxModinfoSize)
	}
	seenDepends := false
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if len(kv) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok || len(k) == 0 {
			return mi, fmt.Errorf("%w: entry %q is not key=value", ErrBadModinfo, truncate(kv, 40))
		}
		switch string(k) {
		case "name":
			mi.Name = NormalizeModuleName(string(v))
			if !ValidModuleName(mi.Name) {
				return mi, fmt.Errorf("%w: invalid module name %q", ErrBadModinfo, truncate(v, 64))
			}
		case "vermagic":
			mi.Vermagic = string(v)
		case "depends":
			if seenDepends {
				return mi, fmt.Errorf("%w: more than one depends= entry", ErrBadModinfo)
			}
			seenDepends = true
			if len(v) == 0 {
				continue
			}
			for d := range strings.SplitSeq(string(v), ",") {
				d = NormalizeModuleName(d)
				if !ValidModuleName(d) {
					return mi, fmt.Errorf("%w: invalid dependency name %q", ErrBadModinfo, truncate([]byte(d), 64))
				}
				mi.Depends = append(mi.Depends, d)
			}
		}
	}
	return mi, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// ReadModinfo reads the .modinfo section of a kernel module file.
func ReadModinfo(file string) (ModInfo, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return ModInfo{}, err
	}
	if !fi.Mode().IsRegular() {
		return ModInfo{}, fmt.Errorf("%w: %s is not a regular file", ErrBadModinfo, file)
	}
	if fi.Size() > maxModuleSize {
		return ModInfo{}, fmt.Errorf("module %s of %d bytes: %w (limit %d)", file, fi.Size(), ErrTooLarge, maxModuleSize)
	}
	f, err := elf.Open(file)
	if err != nil {
		return ModInfo{}, fmt.Errorf("%w: %s: %w", ErrBadModinfo, file, err)
	}
	defer f.Close()
	if f.Type != elf.ET_REL {
		return ModInfo{}, fmt.Errorf("%w: %s: ELF type %v, a module is ET_REL", ErrBadModinfo, file, f.Type)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return ModInfo{}, fmt.Errorf("%w: %s has no .modinfo section", ErrBadModinfo, file)
	}
	if sec.Size > maxModinfoSize {
		return ModInfo{}, fmt.Errorf("%w: %s: .modinfo of %d bytes is over %d", ErrBadModinfo, file, sec.Size, maxModinfoSize)
	}
	b, err := sec.Data()
	if err != nil {
		return ModInfo{}, fmt.Errorf("%w: %s: %w", ErrBadModinfo, file, err)
	}
	mi, err := ParseModinfo(b)
	if err != nil {
		return mi, fmt.Errorf("%s: %w", file, err)
	}
	return mi, nil
}

// parseBuiltin reads modules.builtin: one path per line
// ("kernel/fs/ext4/ext4.ko"), giving the set of built-in module names.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	set := make(map[string]bool)
	sc := bufio.NewScanner(io.LimitReader(r, maxBuiltinSize+1))
	var n int
	for sc.Scan() {
		n += len(sc.Bytes()) + 1
		if n > maxBuiltinSize {
			return nil, fmt.Errorf("modules.builtin: %w (limit %d bytes)", ErrTooLarge, maxBuiltinSize)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		set[NormalizeModuleName(path.Base(line))] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.builtin: %w", err)
	}
	return set, nil
}

// resolved is the outcome of resolveModules.
type resolved struct {
	order   []string // every module after its dependencies
	builtin []string // wanted or needed modules that are built in
}

// resolveModules computes the load order of wanted plus their dependencies.
// files maps module names to .ko paths; a name missing from files must be
// in builtin. Modules must carry the kernel's version in vermagic when
// version is set.
func resolveModules(wanted []string, files map[string]string, builtin map[string]bool, version string) (resolved, error) {
	const (
		visiting = 1
		done     = 2
	)
	var res resolved
	state := make(map[string]int)
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("%w: %s", ErrModuleCycle, strings.Join(append(chain, name), " -> "))
		}
		state[name] = visiting
		chain = append(chain, name)
		file, ok := files[name]
		if !ok {
			if !builtin[name] {
				return fmt.Errorf("%w: %s (via %s) is neither a module file in the package nor built in",
					ErrModuleNotFound, name, strings.Join(chain, " -> "))
			}
			res.builtin = append(res.builtin, name)
			state[name] = done
			return nil
		}
		mi, err := ReadModinfo(file)
		if err != nil {
			return err
		}
		if mi.Name != "" && mi.Name != name {
			return fmt.Errorf("%w: %s declares name %s", ErrBadModinfo, file, mi.Name)
		}
		if version != "" && mi.Vermagic != version && !strings.HasPrefix(mi.Vermagic, version+" ") {
			return fmt.Errorf("%w: %s has vermagic %q, kernel is %s", ErrVermagic, name, mi.Vermagic, version)
		}
		for _, d := range mi.Depends {
			if err := visit(d, chain); err != nil {
				return err
			}
		}
		state[name] = done
		res.order = append(res.order, name)
		return nil
	}
	for _, w := range wanted {
		name := NormalizeModuleName(w)
		if !ValidModuleName(name) {
			return res, fmt.Errorf("%w: invalid module name %q", ErrBadModinfo, w)
		}
		if err := visit(name, nil); err != nil {
			return res, err
		}
	}
	return res, nil
}
