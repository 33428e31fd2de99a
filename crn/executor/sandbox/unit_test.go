package sandbox

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBuildSpec(t *testing.T) {
	s := buildSpec(bundleParams{rootfs: "/r", args: []string{guestInit}, initPath: "/i", runDir: "/run",
		memory: 64 << 20, vcpus: 2, pids: 10, cgroup: "/p/c", nofile: 1024})
	if c := s.Process.Capabilities; len(c.Bounding)+len(c.Effective)+len(c.Permitted) != 0 {
		t.Errorf("capabilities kept: %+v", c)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("no_new_privs off")
	}
	var types []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		types = append(types, ns.Type)
		if ns.Type == specs.NetworkNamespace && ns.Path != "" {
			t.Errorf("netns joins %s without a netns path param", ns.Path)
		}
	}
	for _, want := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.CgroupNamespace, specs.NetworkNamespace} {
		if !slices.Contains(types, want) {
			t.Errorf("namespace %s missing", want)
		}
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 || *r.CPU.Quota != 200000 || *r.CPU.Period != 100000 || r.Pids.Limit != 10 {
		t.Errorf("resources: mem %d swap %d quota %d period %d pids %d", *r.Memory.Limit, *r.Memory.Swap, *r.CPU.Quota, *r.CPU.Period, r.Pids.Limit)
	}
	denied := map[string]bool{}
	for _, sc := range s.Linux.Seccomp.Syscalls {
		if len(sc.Args) == 0 && sc.Action == specs.ActErrno {
			for _, n := range sc.Names {
				denied[n] = true
			}
		}
	}
	for _, n := range []string{"mount", "umount2", "pivot_root", "kexec_load", "init_module", "finit_module", "delete_module",
		"ptrace", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "open_by_handle_at",
		"swapon", "swapoff", "reboot", "acct", "settimeofday", "clock_settime", "setns", "clone3"} {
		if !denied[n] {
			t.Errorf("syscall %s not denied", n)
		}
	}
}

func TestHostname(t *testing.T) {
	h := hostnameFor(strings.Repeat("ab", 32))
	if len(h) != 52 || strings.ToLower(h) != h {
		t.Errorf("hostname %q", h)
	}
	if hostnameFor("not-a-hash") != "aleph-sandbox" {
		t.Error("fallback hostname")
	}
}

const mountinfo = `22 1 0:21 / / rw - ext4 /dev/root rw
30 22 0:40 / /state rw - tmpfs tmpfs rw
31 30 0:41 / /state/x/scratch rw - tmpfs tmpfs rw
32 30 0:42 / /state/x/rootfs rw - overlay overlay rw
33 30 7:1 / /state/x/mnt/my\040vol ro - squashfs /dev/loop1 ro
34 22 0:43 / /stateful rw - tmpfs tmpfs rw
`

func TestParseMountsUnder(t *testing.T) {
	got, err := parseMountsUnder(strings.NewReader(mountinfo), "/state/x/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/state/x/mnt/my vol", "/state/x/scratch", "/state/x/rootfs"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzParseMountsUnder(f *testing.F) {
	f.Add(mountinfo, "/state")
	f.Add(`1 2 3 4 \0 \777\\`, "/")
	f.Fuzz(func(t *testing.T, info, dir string) {
		mps, err := parseMountsUnder(strings.NewReader(info), dir)
		if err != nil {
			return
		}
		for i := 1; i < len(mps); i++ {
			if len(mps[i]) > len(mps[i-1]) {
				t.Fatalf("not deepest first: %q", mps)
			}
		}
	})
}
