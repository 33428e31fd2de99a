package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Cleanup removes what earlier runs of the node left behind, at node start
// (after a crash nothing else will): every container of ours the runtime
// still knows, mounts under stateRoot, the execution dirs in stateRoot and
// empty cgroups under the cgroup parent. stateRoot must hold only execution
// state dirs. It returns the container ids it deleted.
func (e *Executor) Cleanup(ctx context.Context, stateRoot string) ([]string, error) {
	var errs []error
	out, err := e.runtimeCmd(ctx, "list", "-q").Output()
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	}
	var deleted []string
	for _, id := range strings.Fields(string(out)) {
		if !strings.HasPrefix(id, e.cfg.Prefix) {
			continue
		}
		if b, err := e.runtimeCmd(ctx, "delete", "--force", id).CombinedOutput(); err != nil && !notExist(b) {
			errs = append(errs, fmt.Errorf("delete %s: %w: %s", id, err, strings.TrimSpace(string(b))))
			continue
		}
		deleted = append(deleted, id)
	}
	if stateRoot != "" {
		errs = append(errs, cleanStateRoot(stateRoot))
	}
	// Shared images of an earlier run (ours are still in use, if any).
	e.images.mu.Lock()
	fresh := len(e.images.m) == 0
	e.images.mu.Unlock()
	if fresh {
		errs = append(errs, cleanStateRoot(e.images.root))
	}
	// Cgroups of containers the runtime forgot (its state is on tmpfs);
	// Remove only succeeds on empty ones.
	for _, dir := range (cgroupFS{root: e.cfg.CgroupRoot}).controllerDirs(e.cfg.CgroupParent) {
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			if ent.IsDir() && strings.HasPrefix(ent.Name(), e.cfg.Prefix) {
				_ = os.Remove(filepath.Join(dir, ent.Name()))
			}
		}
	}
	return deleted, errors.Join(errs...)
}

func cleanStateRoot(stateRoot string) error {
	abs, err := filepath.Abs(stateRoot)
	if err != nil {
		return err
	}
	mps, err := mountsUnder(abs)
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	var errs []error
	for _, mp := range mps {
		if mp == abs {
			continue
		}
		errs = append(errs, unmount(mp))
	}
	ents, err := os.ReadDir(abs)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, ent := range ents {
		if err := removeAll(filepath.Join(abs, ent.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
