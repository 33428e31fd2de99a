package runtime

import (
	"debug/elf"
	"fmt"
	"os"
	goruntime "runtime"
)

// machine is the ELF machine the runtime's binaries must be: they run on
// this host (sandbox) or a VM of the same architecture.
func machine() (elf.Machine, bool) {
	switch goruntime.GOARCH {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	case "riscv64":
		return elf.EM_RISCV, true
	}
	return 0, false
}

// checkStatic accepts a regular, executable ELF file for this machine
// without a program interpreter (static, or static-pie).
func checkStatic(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", ErrNotELF)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: not executable (mode %v)", ErrNotELF, fi.Mode().Perm())
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotELF, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: ELF type %v", ErrNotELF, f.Type)
	}
	if want, ok := machine(); ok && f.Machine != want {
		return fmt.Errorf("%w: built for %v, this machine is %v", ErrNotELF, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: it needs the dynamic loader", ErrNotStatic)
		}
	}
	return nil
}
