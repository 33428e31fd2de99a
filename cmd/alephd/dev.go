package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/node"
	"github.com/go-aleph/go-aleph/ccn/p2p"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/client"
	crnnode "github.com/go-aleph/go-aleph/crn/node"
)

func newDevCmd() *cobra.Command {
	var f nodeFlags
	var noCRN bool
	var nodes int
	var dc devCRN
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a complete local network on embedded defaults (CCN on 127.0.0.1:4024, CRN on 127.0.0.1:4020)",
		Long: "Run a complete local network on embedded defaults: a core channel node on 127.0.0.1:4024 (libp2p on " +
			"127.0.0.1:4025) and a compute node on 127.0.0.1:4020. With --nodes N, N core channel nodes connected over " +
			"libp2p, node i with its API on port 4024+2i, libp2p on 4025+2i and its data in <data-dir>/node<i>.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := filepath.Join(".alephd", "dev")
			cfg, err := f.load(cmd, config.Dev(dir))
			if err != nil {
				return err
			}
			if nodes < 1 || nodes > 64 {
				return fmt.Errorf("--nodes %d: want 1 to 64", nodes)
			}
			cfgs, err := clusterConfigs(cfg, nodes)
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
			return runNodes(cmd.Context(), cfgs, log, func(ns []*node.Node) error {
				n := ns[0]
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
				fmt.Fprintf(out, "go-aleph dev network %s\n\n", version)
				for i, n := range ns {
					name := "API"
					if len(ns) > 1 {
						name = fmt.Sprintf("node %d", i)
					}
					fmt.Fprintf(out, "  %-8s %s", name, n.URL())
					if p := n.P2P(); p != nil {
						fmt.Fprintf(out, "  libp2p %s", p.Addrs()[0])
					}
					fmt.Fprintf(out, "\n           data %s\n", cfgs[i].DatabaseDSN())
				}
				fmt.Fprintf(out, "%s\n", crnLine)
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
	cmd.Flags().IntVar(&nodes, "nodes", 1, "core channel nodes to run, connected over libp2p on loopback")
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

// clusterConfigs derives the configurations of n connected nodes from base:
// node i listens on the API port + 2i and the libp2p port + 2i, keeps its data
// in <data dir>/node<i>, and has every other node as a bootstrap peer (their
// identity keys are made first, so that their peer IDs are known).
func clusterConfigs(base config.Config, n int) ([]config.Config, error) {
	if n == 1 {
		return []config.Config{base}, nil
	}
	if !base.P2P.Enabled {
		return nil, errors.New("--nodes needs p2p (drop --no-p2p)")
	}
	host, portStr, err := net.SplitHostPort(base.API.Listen)
	if err != nil {
		return nil, fmt.Errorf("api listen %q: %w", base.API.Listen, err)
	}
	apiPort, err := strconv.Atoi(portStr)
	if err != nil || apiPort == 0 {
		return nil, fmt.Errorf("--nodes needs a fixed API port, not %q", base.API.Listen)
	}
	p2pPort := apiPort + 1
	cfgs := make([]config.Config, n)
	addrs := make([]string, n)
	for i := range cfgs {
		c := base
		c.DataDir = filepath.Join(base.DataDir, fmt.Sprintf("node%d", i))
		c.DB, c.Storage.Dir, c.P2P.KeyFile = "", "", ""
		if base.DB != "" {
			return nil, errors.New("--nodes runs one SQLite database per node; drop --db")
		}
		c.API.Listen = net.JoinHostPort(host, strconv.Itoa(apiPort+2*i))
		c.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2pPort+2*i)}
		key, err := p2p.LoadOrCreateKey(c.P2PKeyFile())
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("node %d peer id: %w", i, err)
		}
		addrs[i] = fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", p2pPort+2*i, id)
		cfgs[i] = c
	}
	for i := range cfgs {
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		cfgs[i].P2P.Peers = append(append([]string(nil), base.P2P.Peers...), peers...)
	}
	return cfgs, nil
}
