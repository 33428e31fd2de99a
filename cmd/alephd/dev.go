package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/node"
	"github.com/go-aleph/go-aleph/chain/all"
)

func newDevCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a complete local node on embedded defaults (SQLite, API on 127.0.0.1:4024)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd, config.Dev(filepath.Join(".alephd", "dev")))
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			stop, err := startPprof(f.pprofListen, log)
			if err != nil {
				return err
			}
			defer stop()
			return runNode(cmd.Context(), cfg, log, func(n *node.Node) error {
				accts, err := all.DevAccounts(3)
				if err != nil {
					return fmt.Errorf("dev accounts: %w", err)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "go-aleph dev node %s\n\n  API      %s\n  data     %s\n\n", version, n.URL(), cfg.DatabaseDSN())
				fmt.Fprintln(out, "Dev accounts (deterministic; for local use only, never on a real network):")
				for i, a := range accts {
					fmt.Fprintf(out, "  (%d) %-4s %s\n      key %s\n", i, a.Chain, a.Address, a.Secret)
				}
				fmt.Fprintln(out, "\nPress Ctrl-C to stop.")
				return nil
			})
		},
	}
	f.register(cmd, filepath.Join(".alephd", "dev"))
	return cmd
}
