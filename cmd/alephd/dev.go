package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/chain/all"
)

func newDevCmd(logger *slog.Logger) *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run a local network on embedded defaults (skeleton until the node lands)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := all.NewRegistry()
			logger.Info("alephd dev skeleton: protocol core loaded; the node API arrives with the core channel node",
				"version", version, "chains", len(reg.Chains()))
			accts, err := all.DevAccounts(3)
			if err != nil {
				return fmt.Errorf("dev accounts: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "Dev accounts (deterministic, for local use only):")
			for i, a := range accts {
				fmt.Fprintf(out, "  (%d) %-5s %s\n      key %s\n", i, a.Chain, a.Address, a.Secret)
			}
			fmt.Fprintln(out, "Press Ctrl-C to stop.")
			<-cmd.Context().Done()
			logger.Info("shutting down")
			return nil
		},
	}
}
