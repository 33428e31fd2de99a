package vmboot

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/initramfs"
	"github.com/go-aleph/go-aleph/crn/kernel"
)

var (
	initOnce sync.Once
	initDir  string
	initErr  error
)

// alephInit builds the static aleph-init once per test binary.
func alephInit(t *testing.T) string {
	t.Helper()
	initOnce.Do(func() {
		if initDir, initErr = os.MkdirTemp("", "vmboot-init"); initErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(initDir, "aleph-init"), "../../../cmd/aleph-init")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			initErr = errors.New(string(out))
		}
	})
	if initErr != nil {
		t.Fatalf("build aleph-init: %v", initErr)
	}
	return filepath.Join(initDir, "aleph-init")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if initDir != "" {
		os.RemoveAll(initDir)
	}
	os.Exit(code)
}

// bootVM boots the fetched kernel with aleph-init as /init and the extra
// kernel parameters, with no drives and no link, and returns the console
// once QEMU has exited by itself.
func bootVM(t *testing.T, params string) string {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skipf("needs qemu-system-x86_64 (Debian qemu-system-x86): %v", err)
	}
	kdir := os.Getenv("ALEPH_KERNEL_DIR")
	if kdir == "" {
		kdir = kernel.DefaultDir()
	}
	k, err := kernel.Load(kdir)
	if errors.Is(err, kernel.ErrNoKernel) {
		t.Skipf("no fetched kernel in %s (run alephd runtime kernel, or set ALEPH_KERNEL_DIR): %v", kdir, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	if _, _, err := initramfs.WriteFile(initrd, initramfs.Options{Init: alephInit(t), Modules: k.Modules}); err != nil {
		t.Fatal(err)
	}
	accel := "tcg"
	if os.Getenv("ALEPH_TEST_KVM") == "1" {
		accel = "kvm"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-M", "microvm", "-accel", accel, "-m", "256", "-smp", "1",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-serial", "stdio",
		"-kernel", k.Vmlinux, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet tsc=reliable no_timer_check cryptomgr.notests mitigations=off "+
			"tsc_early_khz="+hostKHz(t)+" "+params)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		console.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the VM did not power off within the deadline; console:\n%s", console.String())
	}
	if err != nil {
		t.Fatalf("qemu: %v; console:\n%s", err, console.String())
	}
	return console.String()
}

func hostKHz(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "cpu MHz"); ok {
			mhz, _, _ := strings.Cut(strings.TrimLeft(v, "\t :"), ".")
			return mhz + "000"
		}
	}
	t.Skip("no cpu MHz in /proc/cpuinfo for tsc_early_khz")
	return ""
}

// TestBootCanary is the host's KVM probe: PID 1 mounts, loads every
// module, prints the canary line and powers off.
func TestBootCanary(t *testing.T) {
	console := bootVM(t, "aleph.canary=1")
	if !strings.Contains(console, CanaryLine+"\n") {
		t.Fatalf("no %q line; console:\n%s", CanaryLine, console)
	}
	if strings.Contains(console, "boot failed") || strings.Contains(console, "Kernel panic") {
		t.Fatalf("console:\n%s", console)
	}
}

// TestBootFailurePowersOff: a broken command line is reported on the
// console and the VM powers off instead of hanging or panicking.
func TestBootFailurePowersOff(t *testing.T) {
	console := bootVM(t, "aleph.link=vsock:0")
	if !strings.Contains(console, `aleph-init: boot failed: bad kernel command line: aleph.link: bad vsock port "0"`) {
		t.Fatalf("no boot failure line; console:\n%s", console)
	}
	if strings.Contains(console, "Kernel panic") {
		t.Fatalf("kernel panic; console:\n%s", console)
	}
}
