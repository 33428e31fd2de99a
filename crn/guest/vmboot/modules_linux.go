package vmboot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Initramfs paths (crn/initramfs).
const (
	ModulesDir   = "/modules"
	ModulesOrder = "/modules.order"
)

// Limits of a modules.order file.
const (
	maxOrderSize = 64 << 10
	maxModules   = 256
)

// ReadModuleOrder reads a modules.order file: one module file name
// ("virtio_ring.ko") per line, in load order. Blank lines are skipped.
func ReadModuleOrder(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxOrderSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxOrderSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadModuleOrder, file, maxOrderSize)
	}
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if name == "" {
			continue
		}
		if !validName(name) || !strings.HasSuffix(name, ".ko") || len(name) == len(".ko") {
			return nil, fmt.Errorf("%w: %s:%d: %q is not a module file name", ErrBadModuleOrder, file, line, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: %s:%d: %s listed twice", ErrBadModuleOrder, file, line, name)
		}
		seen[name] = true
		if len(out) == maxModules {
			return nil, fmt.Errorf("%w: %s lists more than %d modules", ErrBadModuleOrder, file, maxModules)
		}
		out = append(out, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadModuleOrder, file, err)
	}
	return out, nil
}

// LoadModules loads dir/<name> for each name of the order file with
// finit_module(2), in order, and returns how many it loaded. A module that
// is already loaded (EEXIST) counts as loaded.
func LoadModules(orderFile, dir string, log *slog.Logger) (int, error) {
	names, err := ReadModuleOrder(orderFile)
	if err != nil {
		return 0, err
	}
	for i, name := range names {
		if err := loadModule(filepath.Join(dir, name)); err != nil {
			return i, fmt.Errorf("load module %s: %w", name, err)
		}
		log.Debug("module loaded", "module", name)
	}
	return len(names), nil
}

func loadModule(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = unix.FinitModule(int(f.Fd()), "", 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil || errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
