package vmboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/crn/guest"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/go-aleph/go-aleph/crn/vmlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CanaryLine is what canary mode prints on the console before powering off.
const CanaryLine = "aleph-init: canary ok"

// Env is the program's base environment, the same as in a sandbox.
var Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}

// cmdlineFile is read once /proc is mounted.
const cmdlineFile = "/proc/cmdline"

// Detect reports whether this process is PID 1 of a VM booted from the
// initramfs with aleph.link (or aleph.canary) on the kernel command line,
// and returns the parsed command line. It mounts /proc if needed, which it
// only does in an initramfs: a sandbox's PID 1 sees the host's command line
// and must not take it for its own. err is set only with vm true: the
// command line is meant for aleph-init but does not parse.
func Detect() (cl Cmdline, vm bool, err error) {
	if os.Getpid() != 1 || !rootIsInitramfs() {
		return Cmdline{}, false, nil
	}
	if mounted, err := IsMountPoint("/proc"); err == nil && !mounted {
		if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return Cmdline{}, false, nil
		}
	}
	b, err := readLimited(cmdlineFile, MaxCmdline)
	if err != nil {
		return Cmdline{}, false, nil
	}
	cl, err = ParseCmdline(string(b))
	if err != nil {
		// Meant for us (it names aleph.* keys) but broken: fail loudly.
		return Cmdline{}, true, err
	}
	return cl, cl.VM(), nil
}

// rootIsInitramfs: the kernel unpacks the initramfs into a ramfs or tmpfs
// root; a sandbox's root is an overlay or a squashfs.
func rootIsInitramfs() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return false
	}
	return st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}

func readLimited(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", file, limit)
	}
	return b, nil
}

// NewLogger is aleph-init's console logger: slog text without the time
// (the host stamps console lines), info level unless debug.
func NewLogger(w io.Writer, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
	return slog.New(h).With("component", "aleph-init")
}

// Main is aleph-init's VM mode. It boots, serves the host until halt or
// until the link dies, and powers the VM off. It does not return; on any
// failure it prints "aleph-init: boot failed: …" on the console first.
func Main(cl Cmdline, console *os.File) {
	log := NewLogger(console, cl.Debug)
	// The kernel starts PID 1 without PATH; aleph-init looks up python3 and
	// friends in its own environment.
	for _, kv := range Env {
		k, v, _ := strings.Cut(kv, "=")
		_ = os.Setenv(k, v)
	}
	if err := boot(cl, console, log); err != nil {
		fmt.Fprintf(console, "aleph-init: boot failed: %s\n", oneLine(err))
	} else if !cl.Canary {
		if err := serve(cl, console, log); err != nil {
			fmt.Fprintf(console, "aleph-init: stopped: %s\n", oneLine(err))
		}
	}
	Halt(console)
}

// Fail reports a failure before Main could start and powers off.
func Fail(console *os.File, err error) {
	fmt.Fprintf(console, "aleph-init: boot failed: %s\n", oneLine(err))
	Halt(console)
}

// Halt powers off; PID 1 must not return (the kernel would panic), so if
// power-off fails it exits, and the kernel's panic=-1 reboot ends QEMU.
func Halt(console *os.File) {
	err := PowerOff()
	fmt.Fprintf(console, "aleph-init: %s\n", oneLine(err))
	os.Exit(1)
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// recovered turns a panic of the calling function into an error: PID 1
// must power off, not crash.
func recovered(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
	}
}

// boot mounts, loads the modules and switches to the runtime root (or, in
// canary mode, prints the canary line after the modules).
func boot(cl Cmdline, console *os.File, log *slog.Logger) (err error) {
	defer recovered(&err)
	t0 := time.Now()
	if err := MountEarly(); err != nil {
		return err
	}
	n, err := LoadModules(ModulesOrder, ModulesDir, log)
	if err != nil {
		return err
	}
	if cl.Canary {
		_, err := fmt.Fprintln(console, CanaryLine)
		return err
	}
	if err := Boot(context.Background(), log); err != nil {
		return err
	}
	log.Info("booted", "modules", n, "took", time.Since(t0).Round(time.Millisecond), "uptime", uptime())
	return nil
}

// uptime is CLOCK_BOOTTIME: the time since the kernel started.
func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(time.Millisecond)
}

// serve runs the agent over the host link with the VM's mounter, network
// and guest API forwarding, then unmounts the volumes.
func serve(cl Cmdline, console *os.File, log *slog.Logger) (err error) {
	defer recovered(&err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nw, err := NewNetwork(netns.None())
	if err != nil {
		return err
	}
	defer nw.Close()
	if err := nw.LoopbackUp(); err != nil {
		return err
	}

	reaper := guest.NewReaper(log)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // stops the reaper and the forwarder before wg.Wait
	wg.Go(func() { reaper.Run(ctx) })

	lctx, lcancel := context.WithTimeout(ctx, DeviceTimeout)
	session, err := OpenLink(lctx, cl.Link, log)
	lcancel()
	if err != nil {
		return err
	}
	defer session.Close()
	log.Debug("link up", "link", cl.Link.String(), "uptime", uptime())

	_ = os.Remove(guest.DefaultAPISocket)
	ln, err := net.Listen("unix", guest.DefaultAPISocket)
	if err != nil {
		return fmt.Errorf("guest api socket: %w", err)
	}
	wg.Go(func() {
		if err := vmlink.Forward(ctx, ln, session, vmlink.PortAPI); err != nil {
			log.Warn("guest api forwarding stopped", "err", err)
		}
	})

	mounter := NewMounter(SysBlock, DevDir, DeviceTimeout, log)
	defer func() {
		if uerr := mounter.Unmount(); uerr != nil {
			log.Warn("unmount volumes", "err", uerr)
		}
	}()
	agent := guest.New(guest.Options{
		Transport: vmlink.GuestTransport{S: session},
		Logger:    log,
		Console:   console,
		Processes: reaper,
		Mounter:   mounter,
		ConfigureNetwork: func(ctx context.Context, cfg *protocol.Configuration) error {
			ctx, cancel := context.WithTimeout(ctx, DeviceTimeout)
			defer cancel()
			return nw.Configure(ctx, NetConfigOf(cfg))
		},
		ResolvConf:  "/etc/resolv.conf",
		Sync:        unix.Sync,
		SetHostname: func(name string) error { return unix.Sethostname([]byte(name)) },
		Env:         Env,
		APISocket:   guest.DefaultAPISocket,
	})
	err = agent.Run(ctx)
	if err != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
