package qemu

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// canaryLine is what aleph-init prints in canary mode before powering off.
const canaryLine = "aleph-init: canary ok"

// accelChoice is the detection's outcome, cached on disk.
type accelChoice struct {
	Key    string `json:"key"`
	Accel  string `json:"accel"`
	Reason string `json:"reason"`
}

// accelKey names what the outcome depends on: the host kernel, qemu and
// the guest kernel. A change of any of them tests again.
func (e *Executor) accelKey() string {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", unix.ByteSliceToString(uts.Release[:]), e.qemuID, e.kern.VmlinuxSHA256)
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// resolveAccel picks kvm or tcg once per executor: forced by the config,
// else read from the cache, else tested by booting a canary VM with KVM.
// Only a canary proves KVM works: on PVM hosts /dev/kvm opens and
// KVM_CREATE_VM succeeds, yet a stock guest kernel spins forever.
func (e *Executor) resolveAccel(ctx context.Context, init string) (string, error) {
	e.accelMu.Lock()
	defer e.accelMu.Unlock()
	if e.accel != "" {
		return e.accel, nil
	}
	choice, err := e.detectAccel(ctx, init)
	if err != nil {
		return "", err
	}
	e.accel = choice.Accel
	e.cfg.Logger.Info("qemu acceleration", "accel", choice.Accel, "reason", choice.Reason)
	return e.accel, nil
}

func (e *Executor) detectAccel(ctx context.Context, init string) (accelChoice, error) {
	switch e.cfg.Accel {
	case AccelKVM, AccelTCG:
		return accelChoice{Accel: e.cfg.Accel, Reason: "set in the configuration"}, nil
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return accelChoice{Accel: AccelTCG, Reason: fmt.Sprintf("no usable /dev/kvm: %v", err)}, nil
	} else {
		f.Close()
	}
	key := e.accelKey()
	if b, err := os.ReadFile(e.cfg.AccelCache); err == nil {
		var c accelChoice
		if json.Unmarshal(b, &c) == nil && c.Key == key && (c.Accel == AccelKVM || c.Accel == AccelTCG) {
			c.Reason = "cached: " + c.Reason
			return c, nil
		}
	}
	initrd, err := e.initramfs(init)
	if err != nil {
		return accelChoice{}, err
	}
	c := accelChoice{Key: key}
	start := time.Now()
	if err := e.canary(ctx, initrd); err != nil {
		if ctx.Err() != nil {
			return accelChoice{}, fmt.Errorf("kvm canary: %w", ctx.Err())
		}
		c.Accel, c.Reason = AccelTCG, fmt.Sprintf("a KVM canary VM did not boot: %v", err)
	} else {
		c.Accel, c.Reason = AccelKVM, fmt.Sprintf("a KVM canary VM booted in %s", time.Since(start).Round(time.Millisecond))
	}
	if b, err := json.Marshal(c); err == nil {
		_ = os.MkdirAll(filepath.Dir(e.cfg.AccelCache), 0o755)
		tmp := e.cfg.AccelCache + ".tmp"
		if os.WriteFile(tmp, b, 0o644) == nil {
			_ = os.Rename(tmp, e.cfg.AccelCache)
		}
	}
	return c, nil
}

// canary boots the initramfs alone under KVM and waits for its line.
func (e *Executor) canary(ctx context.Context, initrd string) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CanaryTimeout)
	defer cancel()
	m := &machine{accel: AccelKVM, memoryMiB: 128, vcpus: 1, kernel: e.kern.Vmlinux, initrd: initrd,
		tscKHz: e.tscKHz, canary: true}
	cmd := exec.CommandContext(ctx, e.qemu, m.args()...)
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(io.LimitReader(out, 1<<20))
		ok := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), canaryLine) {
				ok = true
			}
		}
		found <- ok
	}()
	ok := <-found // EOF: qemu exited or was killed at the deadline
	werr := cmd.Wait()
	switch {
	case ok:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("no sign of life in %s", e.cfg.CanaryTimeout)
	case werr != nil:
		return fmt.Errorf("%w: %s", werr, strings.TrimSpace(stderr.String()))
	default:
		return errors.New("the guest powered off without its canary line")
	}
}

// hostTSCkHz reads the host's TSC frequency from /proc/cpuinfo ("cpu MHz").
func hostTSCkHz(cpuinfo string) int {
	b, err := os.ReadFile(cpuinfo)
	if err != nil {
		return 0
	}
	return parseCPUMHz(b)
}

func parseCPUMHz(b []byte) int {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz <= 0 || mhz > 100000 {
			return 0
		}
		return int(mhz * 1000)
	}
	return 0
}

// limited keeps the first n bytes written and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
