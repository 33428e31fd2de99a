package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/crn/kernel"
)

func newRuntimeKernelCmd() *cobra.Command {
	var o kernel.Options
	var verbose bool
	cmd := &cobra.Command{
		Use:   "kernel",
		Short: "Fetch the microVM guest kernel (Debian's cloud kernel as a PVH vmlinux, plus its virtio modules)",
		Long: "Downloads the exact Debian cloud kernel package with apt-get, extracts the uncompressed PVH vmlinux " +
			"and the modules the guest needs, and writes them with a manifest to the kernel directory. " +
			"Does nothing when the directory already holds that kernel (unless --force).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			k, err := kernel.Fetch(cmd.Context(), o)
			if err != nil {
				return err
			}
			names := make([]string, len(k.Modules))
			for i, m := range k.Modules {
				names[i] = m.Name
			}
			builtin := strings.Join(k.Builtin, " ")
			if builtin == "" {
				builtin = "-"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(),
				"dir      %s\npackage  %s %s\nversion  %s\nvmlinux  %s\nsha256   %s\nmodules  %s\nbuiltin  %s\n",
				k.Dir, k.Package, k.PackageVersion, k.Version, k.Vmlinux, k.VmlinuxSHA256,
				strings.Join(names, " "), builtin)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", kernel.DefaultDir(), "kernel directory")
	f.StringVar(&o.Package, "package", "", "exact kernel package (default: what "+kernel.MetaPackage+" depends on)")
	f.BoolVar(&o.Force, "force", false, "download again even if the directory holds the kernel")
	f.BoolVarP(&verbose, "verbose", "v", false, "log debug detail")
	return cmd
}
