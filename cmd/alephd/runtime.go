package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/crn/runtime"
)

func newRuntimeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Program runtimes (the read-only root filesystem programs run on)",
	}
	cmd.AddCommand(newRuntimeBuildCmd(), newRuntimeKernelCmd())
	return cmd
}

func newRuntimeBuildCmd() *cobra.Command {
	var o runtime.Options
	var verbose bool
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build a reproducible runtime squashfs (busybox, aleph-init, CA certificates; --python: Debian with python3, fastapi, uvicorn)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelDebug
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if o.Init == "" {
				p, cleanup, err := initForBuild(cmd)
				if err != nil {
					return err
				}
				defer cleanup()
				o.Init = p
			}
			res, err := runtime.Build(cmd.Context(), o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			_, err = fmt.Fprintf(w, "path      %s\nsha256    %s\nsize      %d\nfiles     %d\npython    %t\nmanifest  %s\n",
				res.Path, res.SHA256, res.Size, res.Files, res.Python, res.Manifest)
			if err == nil && res.Python {
				_, err = fmt.Fprintf(w, "packages  %d (python3 %s)\ncached    %t\n", len(res.Packages), res.Packages["python3"], res.Cached)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Out, "out", "runtime.squashfs", "squashfs file to write")
	f.StringVar(&o.Init, "init", "", "static aleph-init binary (default: next to alephd, in PATH, or built from the source tree in the working directory)")
	f.BoolVar(&o.Python, "python", false, "build the Debian runtime (debootstrap minbase + python3, fastapi, uvicorn, msgpack; needs root)")
	f.StringVar(&o.Suite, "suite", runtime.DefaultSuite, "Debian suite of the --python runtime")
	f.StringVar(&o.Mirror, "mirror", runtime.DefaultMirror, "Debian mirror of the --python runtime")
	f.StringVar(&o.CacheDir, "cache-dir", runtime.DefaultCacheDir(), "where the --python runtime's packages and Debian tree are cached")
	f.StringVar(&o.Busybox, "busybox", runtime.DefaultBusybox, "static busybox binary (Debian busybox-static; minimal runtime)")
	f.StringVar(&o.CACerts, "ca-certs", runtime.DefaultCACerts, "CA certificate bundle (minimal runtime)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log progress")
	return cmd
}

// initForBuild finds an installed aleph-init or, in the go-aleph source
// tree, builds one into a temporary directory.
func initForBuild(cmd *cobra.Command) (string, func(), error) {
	p, err := runtime.FindInit()
	if err == nil {
		return p, func() {}, nil
	}
	if _, serr := os.Stat(filepath.Join("cmd", runtime.InitName, "main.go")); serr != nil {
		return "", nil, errors.Join(err, errors.New("pass --init or run from the go-aleph source tree"))
	}
	dir, terr := os.MkdirTemp("", "aleph-init-")
	if terr != nil {
		return "", nil, terr
	}
	cleanup := func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, runtime.InitName)
	fmt.Fprintln(cmd.ErrOrStderr(), "building aleph-init from the source tree")
	if err := runtime.BuildInit(cmd.Context(), ".", out); err != nil {
		cleanup()
		return "", nil, err
	}
	return out, cleanup, nil
}
