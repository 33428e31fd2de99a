package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestArgs(t *testing.T) {
	m := &machine{accel: AccelTCG, memoryMiB: 256, vcpus: 2, kernel: "/k/vmlinux", initrd: "/k/initrd",
		tscKHz: 2299998, link: LinkSerial, linkSock: "/s/link.sock", qmpSock: "/s/qmp,sock",
		drives: []drive{{"vda", "/r/runtime", true}, {"vdc", "/v/data.ext4", false}},
		tapFD:  3, guestMAC: "aa:fc:00:00:00:01"}
	a := strings.Join(m.args(), " ")
	for _, want := range []string{
		"-M microvm -accel tcg -m 256M -smp 2",
		"-no-reboot",
		"-drive file=/r/runtime,format=raw,if=none,id=vda,readonly=on -device virtio-blk-device,drive=vda,serial=vda",
		"-drive file=/v/data.ext4,format=raw,if=none,id=vdc,readonly=off -device virtio-blk-device,drive=vdc,serial=vdc",
		"-chardev socket,id=link,path=/s/link.sock",
		"virtserialport,chardev=link,name=org.aleph.link",
		"-qmp unix:/s/qmp,,sock,server=on,wait=off", // commas escaped
		"-netdev tap,id=net0,fd=3 -device virtio-net-device,netdev=net0,mac=aa:fc:00:00:00:01",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("args lack %q:\n%s", want, a)
		}
	}
	if strings.Contains(a, "-cpu host") {
		t.Error("-cpu host under TCG")
	}
	cl := m.cmdline()
	for _, want := range []string{"console=ttyS0", "tsc_early_khz=2299998", "aleph.link=serial", "panic=-1"} {
		if !strings.Contains(cl, want) {
			t.Errorf("cmdline lacks %q: %s", want, cl)
		}
	}

	v := &machine{accel: AccelKVM, memoryMiB: 128, vcpus: 1, link: LinkVsock, vsockCID: 7, vsockPort: 1024}
	a = strings.Join(v.args(), " ")
	if !strings.Contains(a, "vhost-vsock-device,guest-cid=7") || !strings.Contains(v.cmdline(), "aleph.link=vsock:1024") ||
		!strings.Contains(a, "-cpu host") || strings.Contains(a, "virtio-serial") || strings.Contains(a, "-netdev") {
		t.Errorf("vsock/kvm args: %s / %s", a, v.cmdline())
	}
	c := &machine{accel: AccelKVM, canary: true}
	if a := strings.Join(c.args(), " "); strings.Contains(a, "chardev") || !strings.Contains(c.cmdline(), "aleph.canary=1") {
		t.Errorf("canary: %s / %s", a, c.cmdline())
	}
}

func TestParseCPUMHz(t *testing.T) {
	for in, want := range map[string]int{
		"processor\t: 0\ncpu MHz\t\t: 2299.998\ncache size\t: 1 KB\n": 2299998,
		"cpu MHz : 3000\n": 3000000,
		"model name : x\n": 0,
		"cpu MHz : abc\n":  0,
		"cpu MHz : -5\n":   0,
		"":                 0,
	} {
		if got := parseCPUMHz([]byte(in)); got != want {
			t.Errorf("parseCPUMHz(%q) = %d, want %d", in, got, want)
		}
	}
}

// The console scanner finds its marks even when split across writes.
func TestOOMWatch(t *testing.T) {
	w := &oomWatch{}
	for _, s := range []string{"[ 3.1] Out of mem", "ory: Killed process 42 (server)\n"} {
		w.Write([]byte(s))
	}
	if !w.seen() || w.panicked() {
		t.Fatalf("oom %v panic %v", w.seen(), w.panicked())
	}
	p := &oomWatch{}
	p.Write([]byte("Kernel panic - not"))
	p.Write([]byte(" syncing: Attempted to kill init!"))
	if !p.panicked() || p.seen() {
		t.Fatalf("panic not seen")
	}
}

// qmpCommand makes a real (paused, kernel-less) qemu quit.
func TestQMPQuit(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("needs qemu-system-x86_64")
	}
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	cmd := exec.Command(bin, "-M", "microvm", "-accel", "tcg", "-S", "-nodefaults", "-no-user-config", "-display", "none",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for { // the socket appears once qemu is up
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("qemu exited: %v", err)
		case <-ctx.Done():
			cmd.Process.Kill()
			t.Fatal("no qmp socket")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := qmpCommand(ctx, sock, "query-status"); err != nil {
		t.Fatalf("query-status: %v", err)
	}
	if err := qmpCommand(ctx, sock, "no-such-command"); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("unknown command: %v", err)
	}
	if err := qmpCommand(ctx, sock, "quit"); err != nil {
		t.Fatalf("quit: %v", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		t.Fatal("qemu did not quit")
	}
}
