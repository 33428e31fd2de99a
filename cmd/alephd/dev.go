package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/node"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/client"
	crnnode "github.com/go-aleph/go-aleph/crn/node"
)

func newDevCmd() *cobra.Command {
	var f nodeFlags
	var noCRN bool
	var dc devCRN
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a complete local network on embedded defaults (CCN on 127.0.0.1:4024, CRN on 127.0.0.1:4020)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := filepath.Join(".alephd", "dev")
			cfg, err := f.load(cmd, config.Dev(dir))
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			stop, err := startPprof(f.pprofListen, log)
			if err != nil {
				return err
			}
			defer stop()
			var crn *crnnode.Node
			closeIt := func() {
				if crn != nil {
					_ = closeCRN(crn, log)
					crn = nil
				}
			}
			defer closeIt() // when the CCN fails after the CRN started
			return runNode(cmd.Context(), cfg, log, func(n *node.Node) error {
				accts, err := all.DevAccounts(3)
				if err != nil {
					return fmt.Errorf("dev accounts: %w", err)
				}
				out := cmd.OutOrStdout()
				crnLine := "  CRN      disabled (--no-crn)\n"
				if !noCRN {
					dc.dir, dc.ccn, dc.acct = filepath.Join(cfg.DataDir, "crn"), n.URL(), accts[0]
					crn, err = startDevCRN(cmd.Context(), dc, log)
					switch {
					case err != nil:
						crnLine = fmt.Sprintf("  CRN      not started: %v\n", err)
					default:
						crnLine = fmt.Sprintf("  CRN      %s\n", crn.URL())
					}
				}
				fmt.Fprintf(out, "go-aleph dev network %s\n\n  API      %s\n%s  data     %s\n\n", version, n.URL(), crnLine, cfg.DatabaseDSN())
				fmt.Fprintln(out, "Dev accounts (deterministic; for local use only, never on a real network):")
				for i, a := range accts {
					fmt.Fprintf(out, "  (%d) %-4s %s\n      key %s\n", i, a.Chain, a.Address, a.Secret)
				}
				if crn != nil {
					fmt.Fprintf(out, "\nDeploy a program:  aleph program upload ./mydir run.sh --crn %s\n", crn.URL())
				}
				fmt.Fprintln(out, "\nPress Ctrl-C to stop.")
				return nil
			}, closeIt)
		},
	}
	f.register(cmd, filepath.Join(".alephd", "dev"))
	cmd.Flags().BoolVar(&noCRN, "no-crn", false, "run the core channel node only")
	cmd.Flags().StringVar(&dc.listen, "crn-listen", "127.0.0.1:4020", "the compute node's listen address")
	cmd.Flags().BoolVar(&dc.python, "python", false, "publish the Python runtime (Debian bookworm via debootstrap, cached after the first build) instead of the busybox one")
	cmd.Flags().StringVar(&dc.executor, "executor", "sandbox", "the compute node's default backend: sandbox or qemu")
	return cmd
}

// devCRN is the dev network's compute node.
type devCRN struct {
	dir, ccn, listen, executor string
	python                     bool
	acct                       all.DevAccount
}

// startDevCRN builds the runtime, publishes it and the check program with
// the first dev account, and starts a compute node on the local CCN.
func startDevCRN(ctx context.Context, o devCRN, log *slog.Logger) (*crnnode.Node, error) {
	dir, acct := o.dir, o.acct
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("sandboxes need root (runc, loop mounts, cgroups): run as root, or pass --no-crn")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	initPath, image, err := devRuntime(ctx, dir, o.python, log)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(image)
	if err != nil {
		return nil, err
	}
	pub, err := crnnode.Bootstrap(ctx, client.New(o.ccn, client.WithSigner(acct.Signer)), acct.Address, b)
	if err != nil {
		return nil, err
	}
	cfg := crnnode.Dev(dir)
	cfg.CCN, cfg.Listen, cfg.Init, cfg.Version = o.ccn, o.listen, initPath, version
	cfg.Executor = o.executor
	cfg.DefaultRuntime, cfg.CheckProgram = pub.Runtime, pub.CheckProgram
	n, err := crnnode.New(ctx, cfg, log.With("node", "crn"))
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		n.Close(context.Background())
		return nil, err
	}
	log.Info("dev compute node", "url", n.URL(), "runtime", pub.Runtime, "check_program", pub.CheckProgram)
	return n, nil
}
