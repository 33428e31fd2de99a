// Command aleph is the command line for Aleph core channel nodes: local accounts,
// posts, aggregates, messages (with a live watch), delegations and files. See
// package cli for the commands and their output.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-aleph/go-aleph/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.0.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Env{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		Version: version,
	})
	stop()
	os.Exit(code)
}
