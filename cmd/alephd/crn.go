package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	crnnode "github.com/go-aleph/go-aleph/crn/node"
	alephrt "github.com/go-aleph/go-aleph/crn/runtime"
)

// crnFlags are the compute node's settings on the command line.
type crnFlags struct {
	ccn, listen, domain, dataDir, stateDir, init, ociRuntime string
	checkProgram, defaultRuntime, logLevel, logFormat        string
	executor, kernelDir, qemuAccel                           string
	executors                                                []string
	idle                                                     time.Duration
	internet                                                 bool
}

func (f *crnFlags) register(cmd *cobra.Command, def crnnode.Config) {
	fs := cmd.Flags()
	fs.StringVar(&f.ccn, "ccn", def.CCN, "core channel node API URL")
	fs.StringVar(&f.listen, "listen", def.Listen, "API listen address")
	fs.StringVar(&f.domain, "domain", def.Domain, "public host name (programs answer on {base32 hash}.{domain})")
	fs.StringVar(&f.dataDir, "data-dir", def.DataDir, "cache, persistent volumes and node key")
	fs.StringVar(&f.stateDir, "state-dir", def.StateDir, "executions' working directories")
	fs.StringVar(&f.init, "init", "", "aleph-init binary (default: next to alephd, then PATH)")
	fs.StringVar(&f.executor, "executor", def.Executor, "default backend: sandbox (runc) or qemu (microVMs)")
	fs.StringSliceVar(&f.executors, "executors", nil, "other backends offered to programs that require one (content.metadata.executor), e.g. qemu")
	fs.StringVar(&f.ociRuntime, "oci-runtime", "runc", "OCI runtime of the sandbox executor: runc or runsc")
	fs.StringVar(&f.kernelDir, "kernel-dir", "", "guest kernel of the qemu executor (default: where `alephd runtime kernel` puts it)")
	fs.StringVar(&f.qemuAccel, "qemu-accel", "auto", "qemu accelerator: auto (KVM if a canary VM boots with it, else TCG), kvm or tcg")
	fs.StringVar(&f.checkProgram, "check-program", "", "item hash of the program /status/check/program runs")
	fs.StringVar(&f.defaultRuntime, "default-runtime", "", "runtime STORE hash advertised to clients in /status/config")
	fs.DurationVar(&f.idle, "idle-timeout", def.IdleTimeout, "stop on-demand programs idle this long")
	fs.BoolVar(&f.internet, "internet", false, "give programs with environment.internet a network (needs nft and ip)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
}

func (f *crnFlags) apply(cfg *crnnode.Config) {
	cfg.CCN, cfg.Listen, cfg.Domain = strings.TrimRight(f.ccn, "/"), f.listen, f.domain
	cfg.DataDir, cfg.StateDir, cfg.Init, cfg.OCIRuntime = f.dataDir, f.stateDir, f.init, f.ociRuntime
	cfg.CheckProgram, cfg.DefaultRuntime, cfg.IdleTimeout = f.checkProgram, f.defaultRuntime, f.idle
	cfg.Executor, cfg.Executors, cfg.KernelDir, cfg.QEMUAccel = f.executor, f.executors, f.kernelDir, f.qemuAccel
	cfg.Version = version
}

func newCRNCmd() *cobra.Command {
	var f crnFlags
	def := crnnode.Default()
	cmd := &cobra.Command{
		Use:   "crn",
		Short: "Run a compute resource node (programs in sandboxes or microVMs, API on port 4020)",
		Long: "Run a compute resource node: programs published on the core channel node given by --ccn run on " +
			"demand in sandboxes (runc) or QEMU microVMs (--executor qemu, after `alephd runtime kernel`) and " +
			"answer on /vm/{item_hash}/ and {base32 hash}.{domain}. Needs root.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := def
			f.apply(&cfg)
			log, err := crnLogger(cmd, f)
			if err != nil {
				return err
			}
			if f.internet {
				if cfg.Network, err = crnnode.NewNetwork(cmd.Context(), cfg.StateDir, log); err != nil {
					return err
				}
			}
			n, err := crnnode.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if err := n.Start(cmd.Context()); err != nil {
				n.Close(context.Background())
				return err
			}
			<-cmd.Context().Done()
			return closeCRN(n, log)
		},
	}
	f.register(cmd, def)
	return cmd
}

func crnLogger(cmd *cobra.Command, f crnFlags) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if f.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts)), nil
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts)), nil
}

func closeCRN(n *crnnode.Node, log *slog.Logger) error {
	log.Info("compute node shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("crn shutdown: %w", err)
	}
	return nil
}

// devRuntime returns the dev network's runtime image, building it (and
// aleph-init, from the source tree when it is not installed) on first use.
func devRuntime(ctx context.Context, dir string, python bool, log *slog.Logger) (initPath, image string, err error) {
	initPath, err = alephrt.FindInit()
	if err != nil {
		// `make run` from a checkout: build it from the tree.
		wd, _ := os.Getwd()
		initPath = filepath.Join(dir, "aleph-init")
		log.Info("building aleph-init from the source tree", "dir", wd)
		if berr := alephrt.BuildInit(ctx, wd, initPath); berr != nil {
			return "", "", fmt.Errorf("%w; building it failed too: %w", err, berr)
		}
	}
	image = filepath.Join(dir, "runtime.squashfs")
	if python {
		image = filepath.Join(dir, "runtime-python.squashfs")
	}
	opts := alephrt.Options{Out: image, Init: initPath, Python: python, Logger: log}
	res, err := alephrt.Build(ctx, opts)
	if err != nil {
		return "", "", fmt.Errorf("build the dev runtime: %w", err)
	}
	log.Info("dev runtime built", "path", res.Path, "sha256", res.SHA256, "size", res.Size, "python", res.Python)
	return initPath, image, nil
}
