// Command alephd is the go-aleph node daemon: `alephd ccn` (core channel node),
// `alephd crn` (compute resource node) and `alephd dev` (a complete local network on
// embedded defaults).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.0.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "alephd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "alephd",
		Short:         "go-aleph node daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "alephd", version)
				return err
			},
		},
		newCCNCmd(),
		newDevCmd(),
		newCRNCmd(),
		newRuntimeCmd(),
	)
	return root
}
