package initramfs

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-aleph/go-aleph/crn/kernel"
)

// Guest paths of the initramfs.
const (
	InitPath     = "/init"
	ModulesDir   = "/modules"       // holds <name>.ko
	ModulesOrder = "/modules.order" // one file name per line, load order
	NewRoot      = "/newroot"       // where aleph-init mounts the real root
)

// Limits on Build's inputs.
const (
	maxInitSize   = 256 << 20
	maxModuleSize = 64 << 20
	maxModules    = 256
)

var (
	// ErrBadInit is an /init binary that is missing or not a static
	// x86-64 executable.
	ErrBadInit = errors.New("bad init binary")
	// ErrBadModule is a kernel module input that is missing, misnamed or
	// not a relocatable ELF object.
	ErrBadModule = errors.New("bad kernel module")
)

// Options configure Build.
type Options struct {
	// Init is the host path of the static aleph-init binary. Required.
	Init string
	// Modules are loaded by init in this order (kernel.Kernel.Modules).
	Modules []kernel.Module
}

// Build writes the initramfs to w: /dev with /dev/console (c 5:1), /proc,
// /sys and /newroot, /init, the modules under /modules and /modules.order.
func Build(w io.Writer, o Options) error {
	if err := checkInit(o.Init); err != nil {
		return err
	}
	if len(o.Modules) > maxModules {
		return fmt.Errorf("%w: %d modules, limit %d", ErrBadModule, len(o.Modules), maxModules)
	}
	seen := make(map[string]bool)
	for _, m := range o.Modules {
		if !kernel.ValidModuleName(m.Name) {
			return fmt.Errorf("%w: invalid module name %q", ErrBadModule, m.Name)
		}
		if seen[m.Name] {
			return fmt.Errorf("%w: %s listed twice", ErrBadModule, m.Name)
		}
		seen[m.Name] = true
		if err := checkModule(m.Path); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadModule, m.Name, err)
		}
	}

	c := NewWriter(w)
	for _, d := range []string{"/dev", "/proc", "/sys", NewRoot} {
		if err := c.AddDir(d, 0o755); err != nil {
			return err
		}
	}
	if err := c.AddCharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := addHostFile(c, InitPath, 0o755, o.Init, maxInitSize); err != nil {
		return fmt.Errorf("%w: %w", ErrBadInit, err)
	}
	if err := c.AddDir(ModulesDir, 0o755); err != nil {
		return err
	}
	var order strings.Builder
	for _, m := range o.Modules {
		file := m.Name + ".ko"
		if err := addHostFile(c, ModulesDir+"/"+file, 0o644, m.Path, maxModuleSize); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadModule, m.Name, err)
		}
		order.WriteString(file + "\n")
	}
	if err := c.AddFile(ModulesOrder, 0o644, strings.NewReader(order.String()), int64(order.Len())); err != nil {
		return err
	}
	return c.Close()
}

// WriteFile builds the initramfs into file (replaced atomically) and
// returns its sha256 (hex) and size.
func WriteFile(file string, o Options) (string, int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+"-")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name()) // after the rename this is a no-op
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	if err := Build(cw, o); err != nil {
		tmp.Close()
		return "", 0, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
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

// addHostFile copies a regular host file of at most limit bytes.
func addHostFile(c *Writer, name string, mode os.FileMode, src string, limit int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	if fi.Size() > limit {
		return fmt.Errorf("%s: %d bytes is over the %d limit", src, fi.Size(), limit)
	}
	return c.AddFile(name, mode, f, fi.Size())
}

// checkInit accepts a regular, executable x86-64 ELF without a program
// interpreter: the guest kernel runs it before any library exists.
func checkInit(file string) error {
	if file == "" {
		return fmt.Errorf("%w: no init binary given", ErrBadInit)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadInit, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrBadInit, file)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not executable (mode %v)", ErrBadInit, file, fi.Mode().Perm())
	}
	if fi.Size() > maxInitSize {
		return fmt.Errorf("%w: %s: %d bytes is over the %d limit", ErrBadInit, file, fi.Size(), maxInitSize)
	}
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%w: %s is not an ELF executable: %w", ErrBadInit, file, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: %s: ELF type %v is not an executable", ErrBadInit, file, f.Type)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%w: %s is built for %v, the guest kernel is x86-64", ErrBadInit, file, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked (build it with CGO_ENABLED=0)", ErrBadInit, file)
		}
	}
	return nil
}

// checkModule accepts a relocatable ELF object, which every .ko is.
func checkModule(file string) error {
	if file == "" {
		return errors.New("no path")
	}
	f, err := elf.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if f.Type != elf.ET_REL {
		return fmt.Errorf("%s: ELF type %v, a module is ET_REL", file, f.Type)
	}
	return nil
}
