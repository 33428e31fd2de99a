// Package qemu is the microVM backend of the compute node: each execution
// is a QEMU `-M microvm` guest booted directly from the Debian cloud kernel
// (package kernel) and an initramfs holding aleph-init and the virtio
// modules (package initramfs). The runtime, the code and the volumes are
// virtio disks in aleph-vm's drive order; the host↔guest protocol runs over
// a virtio-serial port, or over vsock where /dev/vhost-vsock exists
// (package vmlink). It uses KVM when a canary boot proves KVM works, TCG
// otherwise.
package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/initramfs"
	"github.com/go-aleph/go-aleph/crn/kernel"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/go-aleph/go-aleph/crn/vmlink"
)

// Name is the backend's registry name.
const Name = "qemu"

// Config configures the backend. Zero fields take the defaults.
type Config struct {
	// QEMU is the emulator binary (default qemu-system-x86_64).
	QEMU string
	// KernelDir holds the guest kernel fetched by `alephd runtime kernel`
	// (default kernel.DefaultDir()).
	KernelDir string
	// Accel is "auto" (default: KVM if a canary VM boots with it, else TCG),
	// "kvm" or "tcg".
	Accel string
	// AccelCache remembers the auto detection across restarts (default
	// next to the kernel directory).
	AccelCache string
	// CanaryTimeout bounds the KVM canary boot (default 5 s).
	CanaryTimeout time.Duration
	// Link is "auto" (default: vsock when /dev/vhost-vsock exists, else
	// virtio-serial), "serial" or "vsock".
	Link string
	// VsockPort is the host port guests dial over vsock (default 1024).
	VsockPort uint32
	// StateRoot holds the initramfs images built for each aleph-init
	// (default /run/aleph-qemu).
	StateRoot string
	// BootTimeout bounds qemu's start up to the guest's link (default 30 s).
	BootTimeout time.Duration
	// ConsoleBytes is how much console output Logs keeps (default 64 KiB).
	ConsoleBytes int
	// OverheadMiB is added to each program's memory for the guest kernel,
	// the initramfs and the root filesystem's page cache, so that the
	// program gets about what it asked for, as in a sandbox (default 64).
	OverheadMiB int
	// Debug turns on aleph-init's debug logs.
	Debug  bool
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.QEMU == "" {
		c.QEMU = "qemu-system-x86_64"
	}
	if c.KernelDir == "" {
		c.KernelDir = kernel.DefaultDir()
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	if c.AccelCache == "" {
		c.AccelCache = filepath.Join(filepath.Dir(filepath.Clean(c.KernelDir)), "qemu-accel.json")
	}
	if c.CanaryTimeout <= 0 {
		c.CanaryTimeout = 5 * time.Second
	}
	if c.Link == "" {
		c.Link = "auto"
	}
	if c.VsockPort == 0 {
		c.VsockPort = 1024
	}
	if c.StateRoot == "" {
		c.StateRoot = "/run/aleph-qemu"
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = 30 * time.Second
	}
	if c.ConsoleBytes <= 0 {
		c.ConsoleBytes = 64 << 10
	}
	if c.OverheadMiB <= 0 {
		c.OverheadMiB = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Errors.
var (
	ErrNoQEMU   = errors.New("qemu not found (apt-get install qemu-system-x86)")
	ErrNoKernel = errors.New("no guest kernel (run `alephd runtime kernel`)")
	ErrNoTap    = errors.New("internet access needs a tap device")
	ErrBoot     = errors.New("vm did not boot")
)

// Executor runs executions as microVMs.
type Executor struct {
	cfg    Config
	qemu   string
	qemuID string // identifies the binary for the accel cache
	kern   *kernel.Kernel
	tscKHz int
	link   string
	vsock  *vsockHub

	accelMu sync.Mutex
	accel   string

	initMu  sync.Mutex
	initrds map[string]string // aleph-init path, size and mtime → initramfs
}

var _ executor.Executor = (*Executor)(nil)

// New checks qemu and the kernel and returns the backend.
func New(cfg Config) (*Executor, error) {
	cfg.defaults()
	// qemu runs in each execution's dir: keep every path absolute.
	for _, p := range []*string{&cfg.KernelDir, &cfg.StateRoot, &cfg.AccelCache} {
		a, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = a
	}
	bin, err := exec.LookPath(cfg.QEMU)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoQEMU, cfg.QEMU, err)
	}
	switch cfg.Accel {
	case "auto", AccelKVM, AccelTCG:
	default:
		return nil, fmt.Errorf("qemu: accel %q: want auto, kvm or tcg", cfg.Accel)
	}
	k, err := kernel.Load(cfg.KernelDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoKernel, cfg.KernelDir, err)
	}
	if err := os.MkdirAll(cfg.StateRoot, 0o700); err != nil {
		return nil, fmt.Errorf("qemu state root: %w", err)
	}
	e := &Executor{cfg: cfg, qemu: bin, kern: k, tscKHz: hostTSCkHz("/proc/cpuinfo"), initrds: map[string]string{}}
	if fi, err := os.Stat(bin); err == nil {
		e.qemuID = fmt.Sprintf("%s %d %d", bin, fi.Size(), fi.ModTime().Unix())
	}
	switch cfg.Link {
	case "auto":
		e.link = LinkSerial
		if haveVsock() {
			e.link = LinkVsock
		}
	case LinkSerial, LinkVsock:
		e.link = cfg.Link
	default:
		return nil, fmt.Errorf("qemu: link %q: want auto, serial or vsock", cfg.Link)
	}
	if e.link == LinkVsock {
		e.vsock = newVsockHub(cfg.VsockPort, cfg.Logger)
	}
	cfg.Logger.Info("qemu backend", "qemu", bin, "kernel", k.Version, "link", e.link, "accel", cfg.Accel)
	return e, nil
}

// Register adds the backend to r. Settings: "qemu", "kernel_dir", "accel",
// "link", "state_root".
func Register(r *executor.Registry) error {
	return r.Register(Name, func(o executor.Options) (executor.Executor, error) {
		return New(Config{
			QEMU:      o.Settings["qemu"],
			KernelDir: o.Settings["kernel_dir"],
			Accel:     o.Settings["accel"],
			Link:      o.Settings["link"],
			StateRoot: o.Settings["state_root"],
			Logger:    o.Logger,
		})
	})
}

// Name implements executor.Executor.
func (e *Executor) Name() string { return Name }

// Network implements executor.Executor: a VM gets a tap device.
func (e *Executor) Network() executor.NetworkMode { return executor.NetTap }

// Close releases the vsock listener.
func (e *Executor) Close() error {
	if e.vsock != nil {
		e.vsock.close()
	}
	return nil
}

// initramfs returns the initramfs for the aleph-init binary at path,
// building it once per binary content. The binary is hashed only when its
// path, size or mtime is new, not at every start.
func (e *Executor) initramfs(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("aleph-init: %w", err)
	}
	seen := fmt.Sprintf("%s %d %d", path, fi.Size(), fi.ModTime().UnixNano())
	e.initMu.Lock()
	defer e.initMu.Unlock()
	if p, ok := e.initrds[seen]; ok {
		return p, nil
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return "", fmt.Errorf("aleph-init: %w", err)
	}
	p := filepath.Join(e.cfg.StateRoot, "initramfs-"+sum[:16]+"-"+e.kern.VmlinuxSHA256[:16]+".cpio")
	if _, err := os.Stat(p); err != nil {
		if _, _, err := initramfs.WriteFile(p, initramfs.Options{Init: path, Modules: e.kern.Modules}); err != nil {
			return "", fmt.Errorf("build initramfs: %w", err)
		}
	}
	e.initrds[seen] = p
	return p, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Start implements executor.Executor.
func (e *Executor) Start(ctx context.Context, spec *executor.Spec) (_ executor.Instance, err error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(spec.Runtime); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: runtime %s must be a squashfs image file for a vm", executor.ErrBadSpec, spec.Runtime)
	}
	for i, v := range spec.Volumes {
		if v.Kind == executor.VolumeDir {
			return nil, fmt.Errorf("%w: volume %d (%s): a host directory cannot be given to a vm", executor.ErrBadSpec, i, v.Mount)
		}
	}
	if spec.Internet && spec.Tap == nil {
		return nil, ErrNoTap
	}
	// qemu runs in the state dir: every path it gets must be absolute.
	abs := *spec
	spec = &abs
	for _, p := range []*string{&spec.StateDir, &spec.Runtime, &spec.Code, &spec.Init} {
		if *p == "" {
			continue
		}
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	spec.Volumes = slices.Clone(spec.Volumes)
	for i := range spec.Volumes {
		if spec.Volumes[i].Source != "" {
			if spec.Volumes[i].Source, err = filepath.Abs(spec.Volumes[i].Source); err != nil {
				return nil, err
			}
		}
	}
	accel, err := e.resolveAccel(ctx, spec.Init)
	if err != nil {
		return nil, err
	}
	initrd, err := e.initramfs(spec.Init)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(spec.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(spec.StateDir, stateMarker), nil, 0o600); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	in := &Instance{
		exec:    e,
		id:      spec.ID,
		state:   spec.StateDir,
		console: executor.NewRing(e.cfg.ConsoleBytes),
		done:    make(chan struct{}),
	}
	defer func() {
		if err != nil {
			in.kill()
			_ = in.release()
		}
	}()

	m := &machine{
		accel: accel, memoryMiB: spec.MemoryMiB + e.cfg.OverheadMiB, vcpus: spec.VCPUs,
		kernel: e.kern.Vmlinux, initrd: initrd, tscKHz: e.tscKHz,
		link: e.link, qmpSock: filepath.Join(spec.StateDir, "qmp.sock"), debug: e.cfg.Debug,
	}
	m.drives = append(m.drives, drive{name: "vda", path: spec.Runtime, readOnly: true})
	if spec.Code != "" {
		m.drives = append(m.drives, drive{name: "vdb", path: spec.Code, readOnly: true})
	}
	devs := executor.VolumeDevices(spec)
	for i, v := range spec.Volumes {
		path := v.Source
		if v.Kind == executor.VolumeTmpfs {
			// A VM has no host tmpfs: an ephemeral volume is a scratch ext4
			// disk, deleted with the state dir.
			path = filepath.Join(spec.StateDir, "ephemeral-"+strconv.Itoa(i)+".ext4")
			if err := makeExt4(ctx, path, v.SizeMiB); err != nil {
				return nil, fmt.Errorf("ephemeral volume %s: %w", v.Mount, err)
			}
		}
		m.drives = append(m.drives, drive{name: devs[i], path: path, readOnly: v.ReadOnly || v.Kind == executor.VolumeSquashfs})
	}

	var linkLn *net.UnixListener
	var vsockCh <-chan net.Conn
	switch e.link {
	case LinkVsock:
		cid, ch, err := e.vsock.register()
		if err != nil {
			return nil, err
		}
		in.cid = cid
		m.vsockCID, m.vsockPort, vsockCh = cid, e.cfg.VsockPort, ch
	default:
		m.linkSock = filepath.Join(spec.StateDir, "link.sock")
		_ = os.Remove(m.linkSock)
		linkLn, err = net.ListenUnix("unix", &net.UnixAddr{Name: m.linkSock, Net: "unix"})
		if err != nil {
			return nil, fmt.Errorf("link socket: %w", err)
		}
		defer linkLn.Close()
	}

	cmd := exec.Command(e.qemu)
	var extra []*os.File
	if spec.Internet {
		extra = append(extra, spec.Tap)
		m.tapFD, m.guestMAC = 3, spec.GuestMAC
	}
	cmd.Args = append(cmd.Args, m.args()...)
	cmd.ExtraFiles = extra
	cmd.Dir = spec.StateDir
	// A node that dies takes its VMs with it (and their taps vanish).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var out io.Writer = in.console
	if spec.Console != nil {
		out = io.MultiWriter(in.console, executor.Lenient{W: spec.Console})
	}
	in.oom = &oomWatch{}
	cmd.Stdout = io.MultiWriter(out, in.oom)
	in.stderr = &bytes.Buffer{}
	cmd.Stderr = io.MultiWriter(out, &limited{w: in.stderr, n: 4096})
	in.cmd = cmd
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go in.wait()

	bctx, cancel := context.WithTimeout(ctx, e.cfg.BootTimeout)
	defer cancel()
	conn, err := in.awaitLink(bctx, linkLn, vsockCh)
	if err != nil {
		return nil, err
	}
	in.session, err = vmlink.Host(conn, e.cfg.Logger)
	if err != nil {
		conn.Close()
		return nil, err
	}
	t, err := vmlink.NewHostTransport(in.session)
	if err != nil {
		return nil, err
	}
	in.transport = t
	if spec.GuestAPI != nil {
		ln, err := in.session.Listen(vmlink.PortAPI)
		if err != nil {
			return nil, err
		}
		in.api = &http.Server{Handler: spec.GuestAPI, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(e.cfg.Logger.Handler(), slog.LevelDebug)}
		go func() { _ = in.api.Serve(ln) }()
	}
	e.cfg.Logger.Debug("vm started", "id", spec.ID, "accel", accel, "pid", cmd.Process.Pid, "drives", len(m.drives))
	return in, nil
}

// awaitLink waits for the guest's end of the link: qemu connecting to our
// serial socket (at its start), or aleph-init dialing the vsock hub.
func (in *Instance) awaitLink(ctx context.Context, ln *net.UnixListener, vsockCh <-chan net.Conn) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if ln != nil {
			stop := context.AfterFunc(lctx, func() { _ = ln.SetDeadline(time.Unix(1, 0)) })
			defer stop()
			c, err := ln.Accept()
			ch <- res{c, err}
			return
		}
		c, err := in.exec.vsock.await(lctx, vsockCh)
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: no link after %s: %w", ErrBoot, in.exec.cfg.BootTimeout, ctx.Err())
			}
			return nil, fmt.Errorf("%w: link: %w", ErrBoot, r.err)
		}
		return r.c, nil
	case <-in.done:
		cancel()
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
		return nil, fmt.Errorf("%w: qemu exited: %s", ErrBoot, strings.TrimSpace(in.stderr.String()))
	}
}

// makeExt4 creates a sparse ext4 image of sizeMiB.
func makeExt4(ctx context.Context, path string, sizeMiB int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(sizeMiB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=0:0,lazy_itable_init=1", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Instance is one running VM.
type Instance struct {
	exec      *Executor
	id        string
	state     string
	cid       uint32
	cmd       *exec.Cmd
	session   *vmlink.Session
	transport *vmlink.HostTransport
	api       *http.Server
	console   *executor.Ring
	stderr    *bytes.Buffer
	oom       *oomWatch

	done    chan struct{}
	err     error
	mu      sync.Mutex
	stopped bool

	stopOnce sync.Once
	stopErr  error
}

var (
	_ executor.Instance    = (*Instance)(nil)
	_ executor.OOMReporter = (*Instance)(nil)
)

// Transport implements executor.Instance.
func (in *Instance) Transport() protocol.Transport { return in.transport }

// Done implements executor.Instance.
func (in *Instance) Done() <-chan struct{} { return in.done }

// Logs implements executor.Instance.
func (in *Instance) Logs() io.Reader { return in.console.Reader() }

// Pid is qemu's process id.
func (in *Instance) Pid() int { return in.cmd.Process.Pid }

// OOMKilled implements executor.OOMReporter: the guest kernel's OOM killer
// announced a kill on the console.
func (in *Instance) OOMKilled() bool { return in.oom.seen() }

// Err implements executor.Instance.
func (in *Instance) Err() error {
	select {
	case <-in.done:
		return in.err
	default:
		return nil
	}
}

func (in *Instance) wait() {
	werr := in.cmd.Wait()
	var err error
	if werr != nil {
		err = executor.ExitErrorOf(werr)
		if msg := strings.TrimSpace(in.stderr.String()); msg != "" {
			err = fmt.Errorf("qemu: %s: %w", msg, err)
		}
	} else if in.oom.panicked() {
		// PID 1 died: the guest kernel panicked and qemu exited (-no-reboot).
		err = &executor.ExitError{Status: 1}
	}
	if in.oom.seen() {
		if err == nil {
			err = &executor.ExitError{}
		}
		var ee *executor.ExitError
		if errors.As(err, &ee) {
			ee.OOM = true
		}
	}
	in.mu.Lock()
	stopped := in.stopped
	if in.stopped && !executor.IsOOM(err) {
		err = executor.ErrStopped
	}
	in.mu.Unlock()
	if werr != nil && !stopped {
		in.exec.cfg.Logger.Warn("qemu exited", "id", in.id, "err", werr, "stderr", strings.TrimSpace(in.stderr.String()))
	}
	in.err = err
	if in.session != nil {
		in.session.Close()
	}
	close(in.done)
}

// Stop implements executor.Instance. The supervisor asks the guest to halt
// first; here qemu is told to quit over QMP, then killed.
func (in *Instance) Stop(ctx context.Context) error {
	in.stopOnce.Do(func() { in.stopErr = in.stop(ctx) })
	return in.stopErr
}

const quitGrace = 3 * time.Second

func (in *Instance) stop(ctx context.Context) error {
	var errs []error
	select {
	case <-in.done:
	default:
		in.mu.Lock()
		in.stopped = true
		in.mu.Unlock()
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quitGrace)
		if err := qmpCommand(qctx, filepath.Join(in.state, "qmp.sock"), "quit"); err != nil {
			in.exec.cfg.Logger.Debug("qmp quit", "id", in.id, "err", err)
		}
		select {
		case <-in.done:
		case <-qctx.Done():
			in.kill()
			<-in.done
		}
		cancel()
	}
	errs = append(errs, in.release())
	return errors.Join(errs...)
}

func (in *Instance) kill() {
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

func (in *Instance) release() error {
	var errs []error
	if in.transport != nil {
		errs = append(errs, in.transport.Close())
	}
	if in.api != nil {
		if err := in.api.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if in.session != nil {
		in.session.Close()
	}
	if in.cid != 0 {
		in.exec.vsock.release(in.cid)
	}
	if err := os.RemoveAll(in.state); err != nil {
		errs = append(errs, fmt.Errorf("remove state dir: %w", err))
	}
	return errors.Join(errs...)
}

// oomWatch scans the console for the guest kernel's OOM-killer and panic
// lines.
type oomWatch struct {
	mu    sync.Mutex
	tail  []byte
	oom   bool
	panic bool
}

var (
	oomMark   = []byte("Out of memory: Killed process")
	panicMark = []byte("Kernel panic - not syncing")
)

func (w *oomWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := append(w.tail, p...)
	if bytes.Contains(buf, oomMark) {
		w.oom = true
	}
	if bytes.Contains(buf, panicMark) {
		w.panic = true
	}
	keep := 32 // longer than either mark
	if len(buf) > keep {
		buf = buf[len(buf)-keep:]
	}
	w.tail = append(w.tail[:0], buf...)
	return len(p), nil
}

func (w *oomWatch) seen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.oom
}

func (w *oomWatch) panicked() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.panic
}

// stateMarker marks an execution dir as a VM's, so that Cleanup only
// removes what is ours (a sandbox's dirs hold mounts).
const stateMarker = ".qemu"

// Cleanup removes what VMs of an earlier run left in stateRoot (the
// executions' parent dir): a qemu still running there is killed (the
// parent-death signal normally did it), then the dir is removed. Call it at
// node start, before any Start.
func (e *Executor) Cleanup(ctx context.Context, stateRoot string) ([]string, error) {
	stateRoot, err := filepath.Abs(stateRoot)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(stateRoot)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var gone []string
	var errs []error
	for _, ent := range ents {
		dir := filepath.Join(stateRoot, ent.Name())
		if _, err := os.Stat(filepath.Join(dir, stateMarker)); err != nil {
			continue
		}
		killIn(dir)
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, ent.Name())
	}
	return gone, errors.Join(errs...)
}

// killIn kills the processes whose working directory is dir.
func killIn(dir string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", p.Name(), "cwd")); err == nil && cwd == dir {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
