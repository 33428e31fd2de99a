// Package sandbox is the process-sandbox executor: each execution is an OCI
// container run by runc (or gVisor's runsc) from a bundle written here. The
// root is the read-only runtime under a writable overlay on a size-limited
// tmpfs; the program gets new pid, mount, ipc, uts, cgroup and network
// namespaces (only lo, unless the caller passes a prepared netns), no
// capabilities, no_new_privs, a seccomp deny list and cgroup limits for
// memory, CPU and pids. The host talks to aleph-init over Unix sockets in a
// bind-mounted directory (/run/aleph).
package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"golang.org/x/sys/unix"
)

// Name is the backend's registry name.
const Name = "sandbox"

// Config configures the backend. Zero fields take the defaults below.
type Config struct {
	// Runtime is the OCI runtime binary: "runc" (default) or "runsc".
	Runtime string
	// StateRoot is the runtime's own state directory (its --root), private
	// to the node so that listing and cleanup see only our containers.
	StateRoot string // default /run/aleph-sandbox
	// CgroupParent holds every container's cgroup.
	CgroupParent string // default /aleph-sandbox
	// CgroupRoot is where cgroup hierarchies are mounted.
	CgroupRoot string // default /sys/fs/cgroup
	// Prefix starts every container id this backend creates.
	Prefix string // default "aleph-"
	// PidsLimit caps tasks (processes and threads) per execution.
	PidsLimit int64 // default 512
	// ScratchMiB sizes the tmpfs behind the writable root overlay.
	ScratchMiB int // default 256
	// ImageKeep is how long an unused squashfs image (runtime, code,
	// immutable volume) stays mounted for the next execution.
	ImageKeep time.Duration // default 10 min
	// ConsoleBytes is how much console output Logs keeps.
	ConsoleBytes int // default 64 KiB
	// UserNS adds a user namespace (container root = host uid 1<<20). Off by
	// default: the runtime's root-owned files are then read-only to the
	// guest, the runtime must already hold its mount points, and the state
	// dir's parents must be traversable.
	UserNS bool
	// NewTransport makes the host side of the protocol in the execution's
	// socket directory before the container starts (protocol.UnixTransport).
	// Nil: no transport; the guest's sockets are still in RunDir.
	NewTransport func(runDir string) (protocol.Transport, error)
	Logger       *slog.Logger
}

func (c *Config) defaults() {
	if c.Runtime == "" {
		c.Runtime = "runc"
	}
	if c.StateRoot == "" {
		c.StateRoot = "/run/aleph-sandbox"
	}
	if c.CgroupParent == "" {
		c.CgroupParent = "/aleph-sandbox"
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = "/sys/fs/cgroup"
	}
	if c.Prefix == "" {
		c.Prefix = "aleph-"
	}
	if c.PidsLimit == 0 {
		c.PidsLimit = 512
	}
	if c.ScratchMiB == 0 {
		c.ScratchMiB = 256
	}
	if c.ImageKeep == 0 {
		c.ImageKeep = 10 * time.Minute
	}
	if c.ConsoleBytes == 0 {
		c.ConsoleBytes = 64 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Errors.
var (
	ErrNoNetNS   = errors.New("internet access needs a prepared network namespace")
	ErrNoRuntime = errors.New("oci runtime not found")
)

// Executor runs executions as OCI containers.
type Executor struct {
	cfg    Config
	bin    string
	images *images
}

var _ executor.Executor = (*Executor)(nil)

// New checks that the OCI runtime exists and returns the backend.
func New(cfg Config) (*Executor, error) {
	cfg.defaults()
	bin, err := exec.LookPath(cfg.Runtime)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoRuntime, cfg.Runtime, err)
	}
	if err := os.MkdirAll(cfg.StateRoot, 0o700); err != nil {
		return nil, fmt.Errorf("runtime state root: %w", err)
	}
	return &Executor{cfg: cfg, bin: bin, images: &images{root: filepath.Join(cfg.StateRoot, "images"), keep: cfg.ImageKeep}}, nil
}

// Register adds the backend to r. Settings: "runtime", "state_root",
// "cgroup_parent".
func Register(r *executor.Registry) error {
	return r.Register(Name, func(o executor.Options) (executor.Executor, error) {
		return New(Config{
			Runtime:      o.Settings["runtime"],
			StateRoot:    o.Settings["state_root"],
			CgroupParent: o.Settings["cgroup_parent"],
			Logger:       o.Logger,
			NewTransport: func(dir string) (protocol.Transport, error) { return protocol.ListenUnix(dir) },
		})
	})
}

// Name implements executor.Executor.
func (e *Executor) Name() string { return Name }

// Network implements executor.Executor: containers join a prepared netns.
func (e *Executor) Network() executor.NetworkMode { return executor.NetNamespace }

// runtimeCmd builds an invocation of the OCI runtime.
func (e *Executor) runtimeCmd(ctx context.Context, args ...string) *exec.Cmd {
	global := []string{"--root", e.cfg.StateRoot}
	if e.gvisor() {
		// Debian's runsc cannot tell our netns from the root one (lab §6).
		global = append(global, "--network=host")
	}
	return exec.CommandContext(ctx, e.bin, append(global, args...)...)
}

func (e *Executor) gvisor() bool { return filepath.Base(e.bin) == "runsc" }

// Start prepares the root filesystem and mounts, writes the bundle and runs
// the container. It returns once the runtime is started; readiness is the
// guest's ready signal on the transport.
func (e *Executor) Start(ctx context.Context, spec *executor.Spec) (_ executor.Instance, err error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Internet && spec.NetNSPath == "" {
		return nil, ErrNoNetNS
	}
	state, err := filepath.Abs(spec.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	id := e.cfg.Prefix + shortID(spec.ID) + "-" + randHex(4)
	in := &Instance{
		exec:    e,
		id:      id,
		cgroup:  path.Join(e.cfg.CgroupParent, id),
		state:   state,
		done:    make(chan struct{}),
		console: executor.NewRing(e.cfg.ConsoleBytes),
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	defer func() {
		if err != nil {
			in.release()
		}
	}()
	p, err := e.prepare(ctx, in, spec)
	if err != nil {
		return nil, err
	}
	if e.cfg.NewTransport != nil {
		if in.transport, err = e.cfg.NewTransport(in.RunDir()); err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
	}
	if spec.GuestAPI != nil {
		if err := in.serveGuestAPI(spec.GuestAPI); err != nil {
			return nil, err
		}
	}
	bundle := filepath.Join(state, "bundle")
	if err := writeConfig(bundle, buildSpec(p)); err != nil {
		return nil, err
	}
	args := []string{"run", "--bundle", bundle}
	if !e.gvisor() {
		// keep the stopped container so its cgroup (OOM counters) can be
		// read; Stop deletes it.
		args = append(args, "--keep")
	}
	// The container outlives Start's ctx: its lifetime is Stop's business.
	cmd := e.runtimeCmd(context.WithoutCancel(ctx), append(args, id)...)
	var out io.Writer = in.console
	if spec.Console != nil {
		out = io.MultiWriter(in.console, executor.Lenient{W: spec.Console})
	}
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // no terminal signals
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.cfg.Runtime, err)
	}
	in.cmd = cmd
	go in.wait()
	e.cfg.Logger.Debug("sandbox started", "container", id, "program", spec.ID)
	return in, nil
}

// prepare mounts the root overlay, the code and the image volumes under the
// state dir and returns the bundle parameters.
func (e *Executor) prepare(ctx context.Context, in *Instance, spec *executor.Spec) (bundleParams, error) {
	st := in.state
	m := &in.mounts
	lower := spec.Runtime
	if fi, err := os.Stat(spec.Runtime); err != nil {
		return bundleParams{}, fmt.Errorf("runtime: %w", err)
	} else if !fi.IsDir() {
		if lower, err = in.image(ctx, spec.Runtime); err != nil {
			return bundleParams{}, fmt.Errorf("runtime: %w", err)
		}
	}
	scratch := filepath.Join(st, "scratch")
	if err := m.mount("tmpfs", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV,
		fmt.Sprintf("size=%dm,mode=0700", e.cfg.ScratchMiB)); err != nil {
		return bundleParams{}, err
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(scratch, d), 0o755); err != nil {
			return bundleParams{}, err
		}
	}
	rootfs := filepath.Join(st, "rootfs")
	if err := m.mount("overlay", rootfs, "overlay", 0, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		lower, filepath.Join(scratch, "upper"), filepath.Join(scratch, "work"))); err != nil {
		return bundleParams{}, err
	}
	if err := os.MkdirAll(in.RunDir(), 0o755); err != nil {
		return bundleParams{}, err
	}
	if e.cfg.UserNS {
		// runc mounts the rootfs as the mapped root: it must traverse the
		// state dir (its parents are the caller's business).
		if err := os.Chmod(st, 0o711); err != nil {
			return bundleParams{}, err
		}
		// The container's root is host uid userNSBase: it must own what it
		// writes to.
		for _, d := range []string{filepath.Join(scratch, "upper"), filepath.Join(scratch, "work"), in.RunDir()} {
			if err := os.Chown(d, userNSBase, userNSBase); err != nil {
				return bundleParams{}, err
			}
		}
	}
	p := bundleParams{
		rootfs:    rootfs,
		hostname:  hostnameFor(spec.ID),
		args:      append([]string{guestInit}, spec.Args...),
		env:       spec.Env,
		initPath:  spec.Init,
		runDir:    in.RunDir(),
		netnsPath: spec.NetNSPath,
		memory:    int64(spec.MemoryMiB) << 20,
		vcpus:     spec.VCPUs,
		pids:      e.cfg.PidsLimit,
		cgroup:    in.cgroup,
		userNS:    e.cfg.UserNS,
		nofile:    nofileLimit(),
	}
	if len(p.env) == 0 {
		p.env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	if spec.Code != "" {
		var err error
		if p.codeDir, err = in.image(ctx, spec.Code); err != nil {
			return bundleParams{}, fmt.Errorf("code: %w", err)
		}
	}
	for i, v := range spec.Volumes {
		dir := filepath.Join(st, "mnt", fmt.Sprintf("vol%d", i))
		switch v.Kind {
		case executor.VolumeSquashfs:
			src, err := in.image(ctx, v.Source)
			if err != nil {
				return bundleParams{}, fmt.Errorf("volume %s: %w", v.Mount, err)
			}
			p.binds = append(p.binds, bind{src: src, dst: v.Mount, ro: true})
		case executor.VolumeExt4:
			if err := m.loop(ctx, v.Source, dir, "ext4", v.ReadOnly); err != nil {
				return bundleParams{}, fmt.Errorf("volume %s: %w", v.Mount, err)
			}
			p.binds = append(p.binds, bind{src: dir, dst: v.Mount, ro: v.ReadOnly})
		case executor.VolumeDir:
			p.binds = append(p.binds, bind{src: v.Source, dst: v.Mount, ro: v.ReadOnly})
		case executor.VolumeTmpfs:
			p.tmpfs = append(p.tmpfs, tmpfsMount{dst: v.Mount, sizeMiB: v.SizeMiB})
		}
	}
	return p, nil
}

func writeConfig(bundle string, s any) error {
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("write bundle config: %w", err)
	}
	return nil
}

// Instance is one running container.
type Instance struct {
	exec      *Executor
	id        string
	cgroup    string
	state     string
	cmd       *exec.Cmd
	mounts    mounter
	transport protocol.Transport
	api       *http.Server
	console   *executor.Ring
	images    []func() // releases of shared image mounts

	done    chan struct{}
	err     error // set before done closes
	mu      sync.Mutex
	stopped bool // Stop killed it

	stopOnce sync.Once
	stopErr  error
}

var _ executor.Instance = (*Instance)(nil)

// image mounts a squashfs image (shared) for the execution's lifetime.
func (in *Instance) image(ctx context.Context, path string) (string, error) {
	dir, release, err := in.exec.images.acquire(ctx, path)
	if err != nil {
		return "", err
	}
	in.images = append(in.images, release)
	return dir, nil
}

// Close unmounts the shared images no execution uses.
func (e *Executor) Close() error { return e.images.close() }

// OOMKilled implements executor.OOMReporter.
func (in *Instance) OOMKilled() bool {
	return (cgroupFS{root: in.exec.cfg.CgroupRoot}).oomKilled(in.cgroup)
}

// GuestAPISocket is the guest API's socket name in the run dir, which the
// guest sees as /run/aleph/api.sock.
const GuestAPISocket = "api.sock"

// serveGuestAPI listens on the run dir's api.sock before the container
// starts, so that the program finds it from its first instruction.
func (in *Instance) serveGuestAPI(h http.Handler) error {
	p := filepath.Join(in.RunDir(), GuestAPISocket)
	_ = os.Remove(p)
	ln, err := net.Listen("unix", p)
	if err != nil {
		return fmt.Errorf("guest api: %w", err)
	}
	in.api = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(in.exec.cfg.Logger.Handler(), slog.LevelDebug)}
	go func() { _ = in.api.Serve(ln) }()
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ContainerID is the runtime's name for the container.
func (in *Instance) ContainerID() string { return in.id }

// CgroupPath is the container's cgroup path below each hierarchy's root.
func (in *Instance) CgroupPath() string { return in.cgroup }

// RunDir is the host directory bind-mounted at /run/aleph.
func (in *Instance) RunDir() string { return filepath.Join(in.state, "run") }

// Transport implements executor.Instance.
func (in *Instance) Transport() protocol.Transport { return in.transport }

// Done implements executor.Instance.
func (in *Instance) Done() <-chan struct{} { return in.done }

// Logs implements executor.Instance.
func (in *Instance) Logs() io.Reader { return in.console.Reader() }

// Err implements executor.Instance: nil while running or after a clean exit,
// executor.ErrStopped after Stop, else an *executor.ExitError.
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
	if ee := executor.ExitErrorOf(werr); ee != nil {
		err = ee
	}
	// The container is kept (--keep), so its memory cgroup is still there.
	if (cgroupFS{root: in.exec.cfg.CgroupRoot}).oomKilled(in.cgroup) {
		if err == nil {
			err = &executor.ExitError{}
		}
		err.(*executor.ExitError).OOM = true
	}
	in.mu.Lock()
	if in.stopped && !executor.IsOOM(err) {
		err = executor.ErrStopped
	}
	in.mu.Unlock()
	in.err = err
	close(in.done)
}

// Stop implements executor.Instance.
func (in *Instance) Stop(ctx context.Context) error {
	in.stopOnce.Do(func() { in.stopErr = in.stop(ctx) })
	return in.stopErr
}

// stopGrace bounds the runtime calls of a Stop whose ctx has already ended:
// cleanup still has to happen.
const stopGrace = 10 * time.Second

func (in *Instance) stop(ctx context.Context) error {
	var errs []error
	select {
	case <-in.done:
	default:
		in.mu.Lock()
		in.stopped = true
		in.mu.Unlock()
		// Errors are expected when the container is already gone.
		_ = in.exec.runtimeCmd(ctx, "kill", in.id, "KILL").Run()
		select {
		case <-in.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("wait for %s: %w", in.id, ctx.Err()))
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
	defer cancel()
	if out, err := in.exec.runtimeCmd(cctx, "delete", "--force", in.id).CombinedOutput(); err != nil && !notExist(out) {
		errs = append(errs, fmt.Errorf("delete %s: %w: %s", in.id, err, bytes.TrimSpace(out)))
	}
	if in.cmd != nil {
		select {
		case <-in.done:
		case <-cctx.Done():
			_ = in.cmd.Process.Kill()
			<-in.done
		}
	}
	errs = append(errs, in.release())
	return errors.Join(errs...)
}

// release closes the transport, unmounts and removes the state dir.
func (in *Instance) release() error {
	var errs []error
	if in.transport != nil {
		errs = append(errs, in.transport.Close())
	}
	if in.api != nil {
		// Programs are gone: nothing in flight is worth waiting for.
		errs = append(errs, ignoreClosed(in.api.Close()))
	}
	errs = append(errs, in.mounts.unmountAll())
	for _, release := range in.images {
		release()
	}
	in.images = nil
	if err := removeAll(in.state); err != nil {
		errs = append(errs, fmt.Errorf("remove state dir: %w", err))
	}
	return errors.Join(errs...)
}

func notExist(out []byte) bool {
	return bytes.Contains(out, []byte("does not exist")) || bytes.Contains(out, []byte("not exist"))
}

// shortID keeps container ids short and in runc's alphabet.
func shortID(id string) string {
	var b strings.Builder
	for _, r := range id {
		if b.Len() == 16 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// nofileLimit is 65536 open files, or the node's hard limit if lower: without
// capabilities the container cannot raise it.
func nofileLimit() uint64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err == nil && r.Max < 65536 {
		return r.Max
	}
	return 65536
}
