package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/protocol"
)

var (
	progOnce sync.Once
	progPath string
	progErr  error
)

// requireRunc skips without root or runc, but fails under CI, where the
// sandbox must be tested.
func requireRunc(tb testing.TB) {
	tb.Helper()
	_, err := exec.LookPath("runc")
	switch {
	case err == nil && os.Geteuid() == 0:
		return
	case os.Getenv("CI") == "true":
		tb.Fatalf("sandbox tests need root and runc under CI (euid %d, runc: %v)", os.Geteuid(), err)
	default:
		tb.Skipf("sandbox tests need root and runc (euid %d, runc: %v)", os.Geteuid(), err)
	}
}

// testProg builds testdata/sbxprog statically, once per test binary.
func testProg(tb testing.TB) string {
	tb.Helper()
	progOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sbxprog")
		if err != nil {
			progErr = err
			return
		}
		progPath = filepath.Join(dir, "sbxprog")
		cmd := exec.Command("go", "build", "-o", progPath, "./testdata/sbxprog")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			progErr = fmt.Errorf("build sbxprog: %w: %s", err, out)
		}
	})
	if progErr != nil {
		tb.Fatal(progErr)
	}
	return progPath
}

// testTransport stands in for protocol.UnixTransport: the guest says
// "ready" on ready.sock, the host dials the guest's http.sock.
type testTransport struct {
	dir string
	ln  *net.UnixListener
}

func newTestTransport(dir string) (protocol.Transport, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "ready.sock"), Net: "unix"})
	if err != nil {
		return nil, err
	}
	// A user-namespaced guest root is not the socket's owner.
	if err := os.Chmod(filepath.Join(dir, "ready.sock"), 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return &testTransport{dir: dir, ln: ln}, nil
}

func (t *testTransport) AwaitReady(ctx context.Context) (string, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = t.ln.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = t.ln.SetDeadline(time.Now()) })
	defer stop()
	c, err := t.ln.Accept()
	if err != nil {
		return "", err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func (t *testTransport) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", filepath.Join(t.dir, "http.sock"))
}

func (t *testTransport) Close() error { return t.ln.Close() }

type harness struct {
	exec      *Executor
	cfg       Config
	stateRoot string
}

func newHarness(t testing.TB, tweak func(*Config)) *harness {
	t.Helper()
	requireRunc(t)
	cfg := Config{
		StateRoot:    t.TempDir(),
		CgroupParent: "/aleph-sandbox-test",
		Prefix:       "alephtest-",
		NewTransport: newTestTransport,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &harness{exec: e, cfg: e.cfg, stateRoot: t.TempDir()}
}

// runtimeDir is a minimal root: the directories a program expects.
func runtimeDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc", "sbin", "tmp", "opt", "run", "proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "runtime-marker"), []byte("runtime"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func squashfs(t testing.TB, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs missing")
	}
	out := filepath.Join(t.TempDir(), "image.squashfs")
	if b, err := exec.Command("mksquashfs", dir, out, "-quiet", "-noappend", "-all-root").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	return out
}

func (h *harness) spec(t testing.TB, runtimeFS string) *executor.Spec {
	t.Helper()
	return &executor.Spec{
		ID:        "e2e" + strconv.Itoa(int(time.Now().UnixNano()%1e6)),
		Runtime:   runtimeFS,
		Init:      testProg(t),
		Args:      []string{"serve", "/run/aleph"},
		MemoryMiB: 128,
		VCPUs:     1,
		StateDir:  filepath.Join(h.stateRoot, "exec"),
	}
}

// start starts spec, waits for the ready line and stops it at cleanup.
func (h *harness) start(t testing.TB, spec *executor.Spec) (*Instance, *http.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inst, err := h.exec.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	in := inst.(*Instance)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := in.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	awaitReady(t, ctx, in)
	return in, clientFor(in.Transport())
}

// awaitReady waits for the guest's ready line, or fails with the console if
// the container ends first.
func awaitReady(t testing.TB, ctx context.Context, in *Instance) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {})
	defer stop()
	go func() {
		select {
		case <-in.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if _, err := in.Transport().AwaitReady(ctx); err != nil {
		logs, _ := io.ReadAll(in.Logs())
		t.Fatalf("await ready: %v (exit: %v); console:\n%s", err, in.Err(), logs)
	}
}

func clientFor(tr protocol.Transport) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return tr.Dial(ctx) },
	}}
}

func get(t testing.TB, c *http.Client, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://guest"+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitDone(t testing.TB, in *Instance) error {
	t.Helper()
	select {
	case <-in.Done():
		return in.Err()
	case <-time.After(20 * time.Second):
		t.Fatal("execution did not end")
		return nil
	}
}

func TestServeAndIsolation(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PidsLimit = 48 })
	// Host things the program must not reach.
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	nodeData := filepath.Join(h.stateRoot, "node.db")
	if err := os.WriteFile(nodeData, []byte("node data"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()

	codeDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(codeDir, "main.py"), []byte("code"), 0o644); err != nil {
		t.Fatal(err)
	}
	volDir := t.TempDir()
	spec := h.spec(t, squashfs(t, runtimeDir(t)))
	spec.Code = squashfs(t, codeDir)
	spec.Volumes = []executor.Volume{
		{Kind: executor.VolumeDir, Source: volDir, Mount: "/data"},
		{Kind: executor.VolumeTmpfs, Mount: "/scratch", SizeMiB: 4},
	}
	in, c := h.start(t, spec)

	if code, body := get(t, c, "/"); code != http.StatusOK || body != "ok" {
		t.Fatalf("GET / = %d %q", code, body)
	}
	q := url.QueryEscape
	tests := []struct {
		name, path, want string
	}{
		{"runtime readable", "/read?path=/etc/runtime-marker", "ok:runtime"},
		{"root writable (overlay)", "/write?path=/etc/new", "ok:"},
		{"code readable", "/read?path=/opt/code/main.py", "ok:code"},
		{"code read-only", "/write?path=/opt/code/x", "err:errno=30"}, // EROFS
		{"volume writable", "/write?path=/data/out", "ok:"},
		{"tmpfs volume", "/write?path=/scratch/f", "ok:"},
		{"host file hidden", "/read?path=" + q(secret), "err:errno=2"},
		{"node data dir hidden", "/read?path=" + q(nodeData), "err:errno=2"},
		{"host pids hidden", fmt.Sprintf("/read?path=/proc/%d/environ", os.Getpid()), "err:errno=2"},
		{"only lo", "/ifaces", "ok:lo"},
		{"host tcp unreachable", "/dial?addr=" + q(hostLn.Addr().String()), "err:"},
		{"mount denied", "/mount", "err:errno=1"},                   // EPERM
		{"unshare denied", "/unshare", "err:errno=1"},               // EPERM
		{"timer_list masked", "/read?path=/proc/timer_list", "ok:"}, // /dev/null: empty
		{"proc/sys read-only", "/write?path=/proc/sys/kernel/hostname", "err:errno=30"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, c, tc.path)
			if tc.want == "ok:" && strings.HasPrefix(tc.path, "/read") && body != "ok:" {
				t.Errorf("GET %s = %q, want empty", tc.path, body)
			}
			if code != http.StatusOK || !strings.HasPrefix(body, tc.want) {
				t.Errorf("GET %s = %d %q, want prefix %q", tc.path, code, body, tc.want)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(volDir, "out")); err != nil || string(b) != "x" {
		t.Errorf("volume write not on the host: %q %v", b, err)
	}

	t.Run("limits land in the cgroups", func(t *testing.T) {
		dir, v2 := (cgroupFS{root: h.cfg.CgroupRoot}).memoryDir(in.CgroupPath())
		if v2 {
			t.Skip("cgroup v2 memory: checked files are v1's")
		}
		files := map[string]string{
			filepath.Join(dir, "memory.limit_in_bytes"):                                  strconv.Itoa(128 << 20),
			filepath.Join(h.cfg.CgroupRoot, "cpu", in.CgroupPath(), "cpu.cfs_quota_us"):  "100000",
			filepath.Join(h.cfg.CgroupRoot, "cpu", in.CgroupPath(), "cpu.cfs_period_us"): "100000",
			filepath.Join(h.cfg.CgroupRoot, "pids", in.CgroupPath(), "pids.max"):         "48",
		}
		for f, want := range files {
			b, err := os.ReadFile(f)
			if err != nil || strings.TrimSpace(string(b)) != want {
				t.Errorf("%s = %q (%v), want %s", f, b, err, want)
			}
		}
	})
	t.Run("pids limit", func(t *testing.T) {
		if _, body := get(t, c, "/spawn?n=100"); !strings.HasPrefix(body, "err:") {
			t.Fatalf("spawned 100 processes under a limit of 48: %q", body)
		}
	})
	t.Run("console captured", func(t *testing.T) {
		logs, _ := io.ReadAll(in.Logs())
		if !strings.Contains(string(logs), "sbxprog serving") {
			t.Errorf("console = %q", logs)
		}
	})
}

func TestOOMReported(t *testing.T) {
	h := newHarness(t, nil)
	spec := h.spec(t, runtimeDir(t))
	spec.MemoryMiB = 32
	in, c := h.start(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://guest/hog?mib=200", nil)
	if resp, err := c.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("hog of 200 MiB under 32 MiB answered: %s", b)
	}
	err := waitDone(t, in)
	var ee *executor.ExitError
	if !errors.As(err, &ee) || !ee.OOM || !executor.IsOOM(err) {
		t.Fatalf("Err = %v, want an OOM exit", err)
	}
}

func TestExitStatus(t *testing.T) {
	h := newHarness(t, nil)
	in, c := h.start(t, h.spec(t, runtimeDir(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://guest/exit?code=3", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	err := waitDone(t, in)
	var ee *executor.ExitError
	if !errors.As(err, &ee) || ee.Status != 3 || ee.OOM {
		t.Fatalf("Err = %v, want exit status 3", err)
	}
}

func TestStopLeavesNothing(t *testing.T) {
	h := newHarness(t, nil)
	runtimeImg := squashfs(t, runtimeDir(t))
	spec := h.spec(t, runtimeImg)
	spec.Code = runtimeImg
	in, c := h.start(t, spec)
	if code, _ := get(t, c, "/"); code != http.StatusOK {
		t.Fatalf("GET / = %d", code)
	}
	cg := (cgroupFS{root: h.cfg.CgroupRoot}).controllerDirs(in.CgroupPath())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if !errors.Is(in.Err(), executor.ErrStopped) {
		t.Errorf("Err after Stop = %v", in.Err())
	}
	assertGone(t, h, in.ContainerID(), spec.StateDir, cg)
	// The shared image mount outlives the execution until Close.
	if mps, _ := mountsUnder(h.exec.images.root); len(mps) != 1 {
		t.Errorf("shared image mounts after stop: %v, want the one image", mps)
	}
	if err := h.exec.Close(); err != nil {
		t.Fatal(err)
	}
	if mps, _ := mountsUnder(h.exec.images.root); len(mps) != 0 {
		t.Errorf("image mounts left after Close: %v", mps)
	}
}

// Two executions of one image share a single read-only mount, which stays
// while either runs.
func TestSharedImages(t *testing.T) {
	h := newHarness(t, nil)
	img := squashfs(t, runtimeDir(t))
	sa, sb := h.spec(t, img), h.spec(t, img)
	sb.StateDir = filepath.Join(h.stateRoot, "exec2")
	a, ca := h.start(t, sa)
	b, cb := h.start(t, sb)
	for _, c := range []*http.Client{ca, cb} {
		if code, _ := get(t, c, "/"); code != http.StatusOK {
			t.Fatalf("GET / = %d", code)
		}
	}
	if mps, _ := mountsUnder(h.exec.images.root); len(mps) != 1 {
		t.Fatalf("image mounts: %v, want one shared", mps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if h.exec.Close() != nil || len(mustMounts(t, h.exec.images.root)) != 1 {
		t.Fatal("Close unmounted an image still in use")
	}
	if code, _ := get(t, cb, "/"); code != http.StatusOK {
		t.Fatalf("the other execution lost its root: %d", code)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.exec.Close(); err != nil {
		t.Fatal(err)
	}
	if mps := mustMounts(t, h.exec.images.root); len(mps) != 0 {
		t.Errorf("image mounts left: %v", mps)
	}
}

func mustMounts(t *testing.T, dir string) []string {
	t.Helper()
	mps, err := mountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return mps
}

// assertGone checks that a container left no trace: runtime state, mounts,
// state dir, cgroups.
func assertGone(t *testing.T, h *harness, id, stateDir string, cgroups []string) {
	t.Helper()
	out, err := h.exec.runtimeCmd(context.Background(), "list", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), id) {
		t.Errorf("runc still lists %s", id)
	}
	if mps, _ := mountsUnder(stateDir); len(mps) > 0 {
		t.Errorf("mounts left: %v", mps)
	}
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left: %v", err)
	}
	for _, d := range cgroups {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup left: %s", d)
		}
	}
}

// TestCleanupAfterCrash leaves a running container and its mounts behind, as
// a killed node would, and checks that Cleanup removes them.
func TestCleanupAfterCrash(t *testing.T) {
	h := newHarness(t, nil)
	spec := h.spec(t, squashfs(t, runtimeDir(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inst, err := h.exec.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	in := inst.(*Instance)
	awaitReady(t, ctx, in)
	// The node dies: its runc child goes, the container stays.
	_ = in.cmd.Process.Kill()
	<-in.Done()
	cg := (cgroupFS{root: h.cfg.CgroupRoot}).controllerDirs(in.CgroupPath())
	// The restarted node: a new executor on the same state.
	restarted, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := restarted.Cleanup(ctx, h.stateRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0] != in.ContainerID() {
		t.Errorf("deleted %v, want [%s]", deleted, in.ContainerID())
	}
	assertGone(t, h, in.ContainerID(), spec.StateDir, cg)
	if mps := mustMounts(t, h.exec.images.root); len(mps) != 0 {
		t.Errorf("shared image mounts left: %v", mps)
	}
}

func TestStartRejects(t *testing.T) {
	h := newHarness(t, nil)
	good := func() *executor.Spec { return h.spec(t, runtimeDir(t)) }
	tests := []struct {
		name   string
		mutate func(*executor.Spec)
		want   error
	}{
		{"internet without netns", func(s *executor.Spec) { s.Internet = true }, ErrNoNetNS},
		{"no memory", func(s *executor.Spec) { s.MemoryMiB = 0 }, executor.ErrBadSpec},
		{"relative volume", func(s *executor.Spec) {
			s.Volumes = []executor.Volume{{Kind: executor.VolumeDir, Source: "/tmp", Mount: "data"}}
		}, executor.ErrBadSpec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.mutate(s)
			if _, err := h.exec.Start(context.Background(), s); !errors.Is(err, tc.want) {
				t.Fatalf("Start = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("missing runtime leaves nothing", func(t *testing.T) {
		s := good()
		s.Runtime = filepath.Join(t.TempDir(), "missing.squashfs")
		if _, err := h.exec.Start(context.Background(), s); err == nil {
			t.Fatal("started without a runtime")
		}
		if _, err := os.Stat(s.StateDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state dir left: %v", err)
		}
	})
}

// BenchmarkColdStart measures Start → first HTTP 200 over the socket
// (runc alone: ~28 ms on the lab machine); p50 is reported.
func BenchmarkColdStart(b *testing.B) {
	h := newHarness(b, nil)
	rt := runtimeDir(b)
	var ds []time.Duration
	for i := 0; i < b.N; i++ {
		spec := h.spec(b, rt)
		spec.StateDir = filepath.Join(h.stateRoot, "exec"+strconv.Itoa(i))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t0 := time.Now()
		inst, err := h.exec.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		awaitReady(b, ctx, inst.(*Instance))
		c := clientFor(inst.Transport())
		if code, _ := get(b, c, "/"); code != http.StatusOK {
			b.Fatalf("GET / = %d", code)
		}
		ds = append(ds, time.Since(t0))
		b.StopTimer()
		if err := inst.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.StartTimer()
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
}

// TestUserNamespace runs the program as an unmapped-uid root when UserNS is on.
func TestUserNamespace(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.UserNS = true })
	// The mapped root must traverse to the state dir and read the init binary.
	for d := h.stateRoot; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	for d := testProg(t); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Nor can it create mount points in root-owned directories of the
	// runtime: they must exist (the runtime build makes them).
	rt := runtimeDir(t)
	for _, d := range []string{"run/aleph", "opt/code"} {
		if err := os.MkdirAll(filepath.Join(rt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rt, "sbin/aleph-init"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	_, c := h.start(t, h.spec(t, squashfs(t, rt)))
	if code, body := get(t, c, "/read?path=/proc/self/uid_map"); code != http.StatusOK || !strings.Contains(body, strconv.Itoa(userNSBase)) {
		t.Fatalf("uid_map = %d %q", code, body)
	}
	// Runtime files belong to host root, unmapped here: the guest cannot
	// write to them (why UserNS is off by default), but can to its own dirs.
	if _, body := get(t, c, "/write?path=/etc/x"); !strings.HasPrefix(body, "err:errno=13") {
		t.Errorf("write to a root-owned runtime dir: %q, want EACCES", body)
	}
	if _, body := get(t, c, "/write?path=/run/aleph/x"); body != "ok:" {
		t.Errorf("write to the socket dir: %q", body)
	}
}
