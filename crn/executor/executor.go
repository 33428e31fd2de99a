// Package executor defines how the compute node runs one program execution,
// whatever isolates it: a process sandbox (package sandbox) or a microVM (the
// qemu backend). A backend starts an Instance from a Spec and hands out the
// host side of the host↔guest protocol transport; the supervisor does the rest.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"

	"github.com/go-aleph/go-aleph/crn/protocol"
)

// VolumeKind is how a volume's host source is attached.
type VolumeKind string

// Volume kinds.
const (
	// VolumeSquashfs is a squashfs image file, always mounted read-only.
	VolumeSquashfs VolumeKind = "squashfs"
	// VolumeDir is a host directory, bind-mounted.
	VolumeDir VolumeKind = "dir"
	// VolumeExt4 is an ext4 filesystem image file (persistent volumes).
	VolumeExt4 VolumeKind = "ext4-image"
	// VolumeTmpfs is an empty size-limited scratch volume (ephemeral
	// volumes); Source is unused.
	VolumeTmpfs VolumeKind = "tmpfs"
)

// Volume is one filesystem the program sees besides its root and code.
type Volume struct {
	Source   string     // host path: image file or directory
	Mount    string     // absolute guest path
	ReadOnly bool       // squashfs volumes are read-only whatever this says
	Kind     VolumeKind //
	SizeMiB  int        // tmpfs only: the size limit
}

// Spec is everything a backend needs to start one execution.
type Spec struct {
	// ID names the execution: the program's item hash.
	ID string
	// Runtime is the root filesystem, a host directory or a squashfs file,
	// mounted read-only (backends add a writable layer on top).
	Runtime string
	// Init is the host path of the aleph-init binary, run as PID 1 from
	// /sbin/aleph-init with Args.
	Init string
	Args []string
	// Env is PID 1's environment ("KEY=value").
	Env []string
	// Code is an optional squashfs file mounted read-only at /opt/code.
	Code    string
	Volumes []Volume
	// MemoryMiB and VCPUs are the resource limits.
	MemoryMiB int
	VCPUs     int
	// Internet gives the program a network. Networking itself is set up by
	// the caller in the backend's NetworkMode: a prepared network namespace
	// in NetNSPath (sandbox), or an open tap device in Tap whose guest side
	// answers at GuestMAC (VMs). Without it, Internet is refused.
	Internet  bool
	NetNSPath string
	Tap       *os.File
	GuestMAC  string
	// StateDir is the execution's private working directory on the host;
	// the backend creates it and removes it on Stop.
	StateDir string
	// Console receives the guest's console output (stdout and stderr), if set.
	Console io.Writer
	// GuestAPI, if set, is served to the guest (and nothing else of the
	// host is): on /run/aleph/api.sock in a sandbox, over vsock in a VM.
	GuestAPI http.Handler
}

// Validate reports the first problem that makes the spec unusable.
func (s *Spec) Validate() error {
	switch {
	case s.ID == "":
		return fmt.Errorf("%w: empty id", ErrBadSpec)
	case s.Runtime == "":
		return fmt.Errorf("%w: no runtime", ErrBadSpec)
	case s.Init == "":
		return fmt.Errorf("%w: no init binary", ErrBadSpec)
	case s.StateDir == "":
		return fmt.Errorf("%w: no state dir", ErrBadSpec)
	case s.MemoryMiB <= 0:
		return fmt.Errorf("%w: memory %d MiB", ErrBadSpec, s.MemoryMiB)
	case s.VCPUs <= 0:
		return fmt.Errorf("%w: %d vcpus", ErrBadSpec, s.VCPUs)
	}
	for i, v := range s.Volumes {
		if len(v.Mount) == 0 || v.Mount[0] != '/' {
			return fmt.Errorf("%w: volume %d: mount %q is not absolute", ErrBadSpec, i, v.Mount)
		}
		switch v.Kind {
		case VolumeSquashfs, VolumeDir, VolumeExt4:
			if v.Source == "" {
				return fmt.Errorf("%w: volume %d: no source", ErrBadSpec, i)
			}
		case VolumeTmpfs:
			if v.SizeMiB <= 0 {
				return fmt.Errorf("%w: volume %d: tmpfs size %d MiB", ErrBadSpec, i, v.SizeMiB)
			}
		default:
			return fmt.Errorf("%w: volume %d: unknown kind %q", ErrBadSpec, i, v.Kind)
		}
	}
	return nil
}

// Instance is one running execution.
type Instance interface {
	// Transport is the host side of the protocol channel to the guest's
	// aleph-init (nil if the backend was configured without one).
	Transport() protocol.Transport
	// Done is closed when the execution has ended, for any reason.
	Done() <-chan struct{}
	// Err says why it ended once Done is closed: nil for a clean exit, an
	// *ExitError otherwise (with OOM set when the memory limit killed it).
	Err() error
	// Stop kills the execution if it still runs, waits for it, and removes
	// everything it used on the host. It is safe to call more than once.
	Stop(ctx context.Context) error
	// Logs returns the latest console output (bounded).
	Logs() io.Reader
}

// OOMReporter is implemented by instances that can tell whether the kernel
// killed one of their processes for memory while PID 1 lives on (the
// program died, aleph-init did not).
type OOMReporter interface {
	OOMKilled() bool
}

// NetworkMode is how a backend joins an execution to its network.
type NetworkMode string

// Network modes.
const (
	// NetNamespace: the execution runs in a prepared network namespace.
	NetNamespace NetworkMode = "netns"
	// NetTap: the execution (a VM) gets a tap device's file descriptor.
	NetTap NetworkMode = "tap"
)

// Executor starts executions.
type Executor interface {
	Name() string
	// Network says what Spec.Internet needs from the caller.
	Network() NetworkMode
	Start(ctx context.Context, spec *Spec) (Instance, error)
}

// VolumeDevices names the block device of each volume of spec as aleph-vm
// does: vda is the runtime, vdb the code when it is a squashfs drive, then
// one letter per volume in order. The names go into the guest's
// configuration; VM backends attach the drives in that order.
func VolumeDevices(spec *Spec) []string {
	next := 'b'
	if spec.Code != "" {
		next++
	}
	out := make([]string, len(spec.Volumes))
	for i := range spec.Volumes {
		out[i] = DriveName(int(next-'a') + i)
	}
	return out
}

// DriveName is the name of the i-th virtio disk: vda, ..., vdz, vdaa, ...
func DriveName(i int) string {
	if i < 26 {
		return "vd" + string(rune('a'+i))
	}
	return "vd" + string(rune('a'+i/26-1)) + string(rune('a'+i%26))
}

// ExitError is why an execution ended abnormally.
type ExitError struct {
	Status int  // exit status of PID 1, 128+signal when killed
	OOM    bool // the memory limit was hit and the kernel killed a process
}

func (e *ExitError) Error() string {
	if e.OOM {
		return fmt.Sprintf("killed: out of memory (exit status %d)", e.Status)
	}
	return fmt.Sprintf("exit status %d", e.Status)
}

// Errors.
var (
	ErrBadSpec        = errors.New("bad execution spec")
	ErrUnknownBackend = errors.New("unknown executor backend")
	// ErrStopped is Err after Stop ended a running execution.
	ErrStopped = errors.New("execution stopped")
)

// ExitErrorOf converts the error of exec.Cmd.Wait: nil stays nil, a
// signal becomes status 128+signal, anything else status -1.
func ExitErrorOf(werr error) *ExitError {
	if werr == nil {
		return nil
	}
	status := -1
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		status = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
	}
	return &ExitError{Status: status}
}

// IsOOM reports whether err says the execution was killed for memory.
func IsOOM(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.OOM
}

// Options are what every backend factory receives; Settings holds the
// backend's own string settings (from the node's configuration).
type Options struct {
	Logger    *slog.Logger
	StateRoot string
	Settings  map[string]string
}

// Factory builds a backend.
type Factory func(Options) (Executor, error)

// Registry maps backend names to factories. The node builds one and each
// backend package offers a Register function for it.
type Registry struct {
	mu sync.Mutex
	m  map[string]Factory
}

// Register adds a backend; a second registration of a name is an error.
func (r *Registry) Register(name string, f Factory) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]Factory{}
	}
	if _, dup := r.m[name]; dup {
		return fmt.Errorf("executor %q registered twice", name)
	}
	r.m[name] = f
	return nil
}

// Get builds the named backend.
func (r *Registry) Get(name string, o Options) (Executor, error) {
	r.mu.Lock()
	f, ok := r.m[name]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q (have %v)", ErrUnknownBackend, name, r.Names())
	}
	return f(o)
}

// Names lists the registered backends, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
