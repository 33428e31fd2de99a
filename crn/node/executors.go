package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/executor/qemu"
	"github.com/go-aleph/go-aleph/crn/executor/sandbox"
)

// openExecutors builds the node's backends, the default first, and cleans
// what each left in execDir during an earlier run. The sandbox cleans
// first: its leftovers hold mounts.
func openExecutors(ctx context.Context, cfg Config, execDir string, log *slog.Logger) ([]executor.Executor, error) {
	var reg executor.Registry
	if err := sandbox.Register(&reg); err != nil {
		return nil, err
	}
	if err := qemu.Register(&reg); err != nil {
		return nil, err
	}
	names := []string{cfg.Executor}
	for _, n := range cfg.Executors {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	settings := map[string]map[string]string{
		sandbox.Name: {"runtime": cfg.OCIRuntime, "state_root": filepath.Join(cfg.StateDir, "oci")},
		qemu.Name:    {"kernel_dir": cfg.KernelDir, "accel": cfg.QEMUAccel, "state_root": filepath.Join(cfg.StateDir, "qemu")},
	}
	var out []executor.Executor
	for _, name := range names {
		ex, err := reg.Get(name, executor.Options{Logger: log, StateRoot: settings[name]["state_root"], Settings: settings[name]})
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("crn: executor: %w", err)
		}
		out = append(out, ex)
	}
	if err := os.MkdirAll(execDir, 0o700); err != nil {
		closeAll(out)
		return nil, err
	}
	ordered := slices.Clone(out)
	slices.SortStableFunc(ordered, func(a, b executor.Executor) int {
		switch {
		case a.Name() == sandbox.Name && b.Name() != sandbox.Name:
			return -1
		case b.Name() == sandbox.Name && a.Name() != sandbox.Name:
			return 1
		}
		return 0
	})
	for _, ex := range ordered {
		c, ok := ex.(interface {
			Cleanup(context.Context, string) ([]string, error)
		})
		if !ok {
			continue
		}
		if gone, err := c.Cleanup(ctx, execDir); err != nil {
			log.Warn("clean up earlier executions", "executor", ex.Name(), "err", err)
		} else if len(gone) > 0 {
			log.Info("cleaned up earlier executions", "executor", ex.Name(), "count", len(gone))
		}
	}
	return out, nil
}

func closeAll(exs []executor.Executor) error {
	var errs []error
	for _, ex := range exs {
		if c, ok := ex.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func (n *Node) closeExecutors() error { return closeAll(n.exs) }
