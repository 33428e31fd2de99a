// Command aleph-init is the guest agent of go-aleph's compute node: PID 1 in
// a program's sandbox or microVM, speaking aleph-vm's v2 host↔guest protocol.
// Build it static: CGO_ENABLED=0 go build ./cmd/aleph-init.
//
// As /init of a VM's initramfs with aleph.link (or aleph.canary) on the
// kernel command line it runs package vmboot, which boots and powers off;
// otherwise it serves a sandbox with the flags below.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-aleph/go-aleph/crn/guest"
	"github.com/go-aleph/go-aleph/crn/guest/vmboot"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"golang.org/x/sys/unix"
)

func main() {
	if cl, vm, err := vmboot.Detect(); vm {
		if err != nil {
			vmboot.Fail(os.Stdout, err)
		}
		vmboot.Main(cl, os.Stdout) // does not return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "aleph-init:", err)
		os.Exit(1)
	}
}

// envOr lets the sandbox's environment set a flag's default.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("aleph-init", flag.ContinueOnError)
	transport := fs.String("transport", envOr("ALEPH_INIT_TRANSPORT", "unix"), "host transport: unix")
	dir := fs.String("dir", envOr("ALEPH_INIT_DIR", guest.DefaultDir), "directory of the unix transport's sockets")
	apiSocket := fs.String("api-socket", envOr("ALEPH_INIT_API_SOCKET", guest.DefaultAPISocket), "guest API socket announced to the program")
	appSocket := fs.String("app-socket", envOr("ALEPH_INIT_APP_SOCKET", guest.DefaultAppSocket), "socket the asgi server listens on")
	codeDir := fs.String("code-dir", guest.DefaultCodeDir, "program code directory")
	dataDir := fs.String("data-dir", guest.DefaultDataDir, "input data directory")
	debugShell := fs.Bool("debug-shell", false, "allow the host's \"!\" debug shell (insecure)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "aleph-init")

	var gt protocol.GuestTransport
	switch *transport {
	case "unix":
		gt = protocol.UnixGuestTransport{Dir: *dir}
	default:
		return fmt.Errorf("unknown transport %q", *transport)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	opts := guest.Options{
		Transport:   gt,
		Logger:      log,
		Console:     os.Stdout,
		CodeDir:     *codeDir,
		DataDir:     *dataDir,
		APISocket:   *apiSocket,
		AppSocket:   *appSocket,
		DebugShell:  *debugShell,
		Sync:        unix.Sync,
		SetHostname: func(name string) error { return unix.Sethostname([]byte(name)) },
	}
	if os.Getpid() == 1 {
		// PID 1 reaps every orphan; children must go through the reaper.
		r := guest.NewReaper(log)
		rctx, rcancel := context.WithCancel(context.Background())
		defer rcancel()
		go r.Run(rctx)
		opts.Processes = r
		opts.ResolvConf = "/etc/resolv.conf"
	}
	err := guest.New(opts).Run(ctx)
	if err != nil && ctx.Err() != nil {
		log.Info("stopped by signal")
		return nil
	}
	return err
}
