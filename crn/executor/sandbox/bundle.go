package sandbox

import (
	"encoding/base32"
	"encoding/hex"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Guest paths.
const (
	guestInit    = "/sbin/aleph-init"
	guestCode    = "/opt/code"
	guestRunDir  = "/run/aleph"
	cpuPeriodUS  = 100000
	devSizeBytes = "65536k"
)

// bundleParams is what the OCI config is built from; host paths are already
// mounted (rootfs overlay, code, image volumes).
type bundleParams struct {
	rootfs    string // the writable overlay root
	hostname  string
	args      []string // PID 1's argv, [0] = guestInit
	env       []string
	initPath  string // host aleph-init
	runDir    string // host socket dir → /run/aleph
	codeDir   string // host mount of the code squashfs, "" if none
	binds     []bind
	tmpfs     []tmpfsMount
	netnsPath string // "" → a new empty netns
	memory    int64  // bytes
	vcpus     int
	pids      int64
	cgroup    string // cgroupsPath
	userNS    bool
	nofile    uint64 // RLIMIT_NOFILE, at most the node's own hard limit
}

type bind struct {
	src, dst string
	ro       bool
}

type tmpfsMount struct {
	dst     string
	sizeMiB int
}

// hostnameFor is aleph-vm's guest hostname: the lowercase unpadded base32 of
// the 32 hash bytes; other ids (tests) keep a fixed name.
func hostnameFor(id string) string {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 32 {
		return "aleph-sandbox"
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// buildSpec is the OCI config: new pid, mount, ipc, uts, cgroup and net
// namespaces, no capabilities, no_new_privs, the seccomp deny list, runc's
// masked and read-only /proc paths, and cgroup limits.
func buildSpec(p bundleParams) *specs.Spec {
	mem, swap := p.memory, p.memory // memory+swap = memory: no swap
	quota := int64(p.vcpus) * cpuPeriodUS
	period := uint64(cpuPeriodUS)
	pids := p.pids
	roBind := []string{"rbind", "ro", "nosuid", "nodev"}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=" + devSizeBytes}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: guestInit, Type: "bind", Source: p.initPath, Options: roBind},
		{Destination: guestRunDir, Type: "bind", Source: p.runDir, Options: []string{"rbind", "rw", "nosuid", "nodev", "noexec"}},
	}
	if p.codeDir != "" {
		mounts = append(mounts, specs.Mount{Destination: guestCode, Type: "bind", Source: p.codeDir, Options: roBind})
	}
	for _, b := range p.binds {
		opts := []string{"rbind", "rw", "nosuid", "nodev"}
		if b.ro {
			opts = roBind
		}
		mounts = append(mounts, specs.Mount{Destination: b.dst, Type: "bind", Source: b.src, Options: opts})
	}
	for _, t := range p.tmpfs {
		mounts = append(mounts, specs.Mount{Destination: t.dst, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "mode=1777", "size=" + strconv.Itoa(t.sizeMiB) + "m"}})
	}
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: p.netnsPath}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: p.args,
			Env:  p.env,
			Cwd:  "/",
			// aleph-init needs no privilege: runc sets the hostname, brings lo
			// up and mounts the volumes; it only signals its own children.
			Capabilities:    &specs.LinuxCapabilities{Bounding: []string{}, Effective: []string{}, Permitted: []string{}, Inheritable: []string{}, Ambient: []string{}},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: p.nofile, Soft: p.nofile}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: p.rootfs},
		Hostname: p.hostname,
		Mounts:   mounts,
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &mem, Swap: &swap},
				CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period},
				Pids:    &specs.LinuxPids{Limit: pids},
			},
			CgroupsPath: p.cgroup,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.CgroupNamespace}, netns,
			},
			Seccomp:           seccompProfile(),
			RootfsPropagation: "private",
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if p.userNS {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: userNSBase, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: userNSBase, Size: 65536}}
	}
	return s
}

// userNSBase is the first host uid of the sandbox's user namespace mapping.
const userNSBase = 1 << 20

// deniedSyscalls fail with EPERM: mounting, module and kernel loading,
// tracing, keyrings, clock setting, swap, reboot, BPF and perf, handle-based
// opens and userfaultfd. Without capabilities most already fail; the filter
// keeps them out even if a kernel bug hands a capability back.
var deniedSyscalls = []string{
	"mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
	"fsmount", "fspick", "mount_setattr",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
	"bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
	"keyctl", "add_key", "request_key",
	"swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
	"setns", "iopl", "ioperm", "syslog", "lookup_dcookie", "vhangup", "nfsservctl",
	"uselib", "create_module", "get_kernel_syms", "query_module", "fanotify_init",
}

// nsFlags are the clone/unshare flags that create namespaces.
var nsFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP, unix.CLONE_NEWTIME,
}

func seccompProfile() *specs.LinuxSeccomp {
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	calls := []specs.LinuxSyscall{{Names: deniedSyscalls, Action: specs.ActErrno, ErrnoRet: &eperm}}
	// A rule's args are ANDed, rules are ORed: one rule per flag denies any
	// clone or unshare asking for a namespace.
	for _, name := range []string{"clone", "unshare"} {
		for _, f := range nsFlags {
			calls = append(calls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActErrno, ErrnoRet: &eperm,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}}})
		}
	}
	// clone3 passes its flags in memory a filter cannot read; ENOSYS makes
	// libc and Go fall back to clone, which is filtered above.
	calls = append(calls, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      calls,
	}
}
