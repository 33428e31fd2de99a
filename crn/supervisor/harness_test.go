package supervisor_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/api"
	"github.com/go-aleph/go-aleph/crn/cache"
	"github.com/go-aleph/go-aleph/crn/executor/sandbox"
	"github.com/go-aleph/go-aleph/crn/guestapi"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/go-aleph/go-aleph/crn/resolve"
	alephrt "github.com/go-aleph/go-aleph/crn/runtime"
	"github.com/go-aleph/go-aleph/crn/supervisor"
	"github.com/go-aleph/go-aleph/message"
)

// Built once per test binary: aleph-init, the runtimes and the test server.
var (
	buildOnce sync.Once
	built     artifactSet
)

type artifactSet struct {
	dir, init, runtime, pyRuntime, goserver string
	err, pyErr                              error
}

func requireSandbox(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandbox tests need root")
	}
	for _, tool := range []string{"runc", "mksquashfs", "mkfs.ext4", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("sandbox tests need %s: %v", tool, err)
		}
	}
	if _, err := os.Stat(alephrt.DefaultBusybox); err != nil {
		t.Skip("sandbox tests need busybox-static")
	}
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func artifacts(t testing.TB) *artifactSet {
	t.Helper()
	requireSandbox(t)
	root := moduleRoot(t)
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir, err := os.MkdirTemp("", "supervisor-test-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		built.init = filepath.Join(dir, "aleph-init")
		if built.err = alephrt.BuildInit(ctx, root, built.init); built.err != nil {
			return
		}
		built.runtime = filepath.Join(dir, "runtime.squashfs")
		if _, built.err = alephrt.Build(ctx, alephrt.Options{Out: built.runtime, Init: built.init}); built.err != nil {
			return
		}
		built.goserver = filepath.Join(dir, "goserver")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", built.goserver, "./crn/supervisor/testdata/goserver")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = &buildError{string(out), err}
			return
		}
		built.pyRuntime = filepath.Join(dir, "runtime-python.squashfs")
		_, built.pyErr = alephrt.Build(ctx, alephrt.Options{Out: built.pyRuntime, Init: built.init, Python: true})
	})
	if built.err != nil {
		t.Fatalf("build test artifacts: %v", built.err)
	}
	return &built
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// harness is a real CCN, a pool on the sandbox executor and the CRN API.
type harness struct {
	t        testing.TB
	ctx      context.Context
	c        *client.Client
	pool     *supervisor.Pool
	api      *httptest.Server
	ccnURL   string
	dataDir  string
	runtime  string // STORE hash of the minimal runtime
	art      *artifactSet
	cfg      supervisor.Config
	stopPool func()
}

type harnessOpt func(*supervisor.Config)

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	art := artifacts(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	acc, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	ccn := nodetest.Start(t)
	h := &harness{t: t, ctx: ctx, c: client.New(ccn, client.WithSigner(acc)),
		ccnURL: ccn, dataDir: t.TempDir(), art: art}
	h.runtime = h.uploadFile(art.runtime, "")
	h.cfg = h.poolConfig()
	for _, o := range opts {
		o(&h.cfg)
	}
	h.startPool()
	return h
}

func (h *harness) poolConfig() supervisor.Config {
	t := h.t
	ex, err := sandbox.New(sandbox.Config{
		StateRoot:    filepath.Join(t.TempDir(), "oci"),
		CgroupParent: "/aleph-supervisor-test",
		Prefix:       "alephsup-",
		NewTransport: func(dir string) (protocol.Transport, error) { return protocol.ListenUnix(dir) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ex.Close(); err != nil {
			t.Errorf("close executor: %v", err)
		}
	})
	fc, err := cache.Open(h.ctx, cache.Config{Dir: filepath.Join(h.dataDir, "cache"), MaxBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	reader := client.New(h.ccnURL)
	gc, err := guestapi.OpenCache(filepath.Join(h.dataDir, "guest-cache.db"), guestapi.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gc.Close() })
	nodeKey, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	return supervisor.Config{
		GuestAPI: func(vm string) (http.Handler, error) {
			return guestapi.New(guestapi.Config{VMHash: vm, Cache: gc, Signer: nodeKey, CCN: h.ccnURL})
		},
		DropVM:   func(vm string) { gc.DropVM(vm) },
		Executor: ex,
		Resolver: resolve.New(reader, resolve.Limits{MemoryMiB: 1024, VCPUs: 2, DiskMiB: 1024}, nil),
		Files:    fc,
		Fetch: func(ctx context.Context, f resolve.File, w io.Writer) error {
			_, err := reader.DownloadFile(ctx, f.FileHash, w, 0)
			return err
		},
		Init:     h.art.init,
		StateDir: filepath.Join(h.dataDir, "executions"),
		DataDir:  h.dataDir,
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

// startPool starts a pool (again) on h.cfg, its event stream and the API.
func (h *harness) startPool() {
	t := h.t
	pool, err := supervisor.New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.pool = pool
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan resolve.Event, 16)
	connected := make(chan struct{}, 1)
	w := resolve.NewWatcher(resolve.WatcherConfig{Client: client.New(h.ccnURL), OnConnect: func() {
		select {
		case connected <- struct{}{}:
		default:
		}
	}})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = w.Run(ctx, events) }()
	go func() { defer wg.Done(); _ = pool.Run(ctx, events) }()
	select {
	case <-connected:
	case <-h.ctx.Done():
		t.Fatal("watcher did not connect")
	}
	if h.api != nil {
		h.api.Close()
	}
	h.api = httptest.NewServer(api.New(api.Deps{Pool: pool, Control: pool, Version: "1.0.0-test", Domain: "example.org"}))
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		pool.Close(sctx)
		cancel()
		wg.Wait()
	}
	h.stopPool = stop
	t.Cleanup(func() {
		stop()
		h.api.Close()
	})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// uploadFile stores a file with a STORE (ref: the STORE it amends, or "").
func (h *harness) uploadFile(path, ref string) string {
	h.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.upload(b, ref)
}

func (h *harness) upload(b []byte, ref string) string {
	h.t.Helper()
	up, err := h.c.UploadFile(h.ctx, bytes.NewReader(b), client.UploadOptions{
		Engine: message.ItemStorage, Ref: ref, WriteOptions: client.WriteOptions{Sync: true}})
	if err != nil {
		h.t.Fatal(err)
	}
	if up.Status != message.StatusProcessed {
		h.t.Fatalf("upload: %s", up.Status)
	}
	return up.ItemHash
}

func (h *harness) submit(typ message.Type, content message.Content) string {
	h.t.Helper()
	w, err := h.c.Submit(h.ctx, typ, content, client.WriteOptions{Sync: true})
	if err != nil {
		h.t.Fatal(err)
	}
	if w.Status != message.StatusProcessed {
		h.t.Fatalf("submit %s: %s", typ, w.Status)
	}
	return w.ItemHash
}

func (h *harness) forget(hashes ...string) {
	h.t.Helper()
	if _, err := h.c.Forget(h.ctx, client.ForgetTargets{Hashes: hashes}, client.WriteOptions{Sync: true}); err != nil {
		h.t.Fatal(err)
	}
}

// goZip packs the Go test server with a version file.
func (h *harness) goZip(version string) []byte {
	h.t.Helper()
	bin, err := os.ReadFile(h.art.goserver)
	if err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, mode os.FileMode, b []byte) {
		fh := &zip.FileHeader{Name: name, Method: zip.Deflate}
		fh.SetMode(mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			h.t.Fatal(err)
		}
		w.Write(b)
	}
	add("server", 0o755, bin)
	add("version.txt", 0o644, []byte(version))
	if err := zw.Close(); err != nil {
		h.t.Fatal(err)
	}
	return buf.Bytes()
}

// squashfsOf makes a squashfs image of files (name → content; names ending
// in "server" are executable).
func (h *harness) squashfsOf(files map[string]string) []byte {
	h.t.Helper()
	dir := h.t.TempDir()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "server") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			h.t.Fatal(err)
		}
	}
	out := filepath.Join(h.t.TempDir(), "image.squashfs")
	if b, err := exec.Command("mksquashfs", dir, out, "-quiet", "-noappend", "-all-root").CombinedOutput(); err != nil {
		h.t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// goSquashfs packs the Go test server as a squashfs image.
func (h *harness) goSquashfs(version string) []byte {
	h.t.Helper()
	bin, err := os.ReadFile(h.art.goserver)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.squashfsOf(map[string]string{"server": string(bin), "version.txt": version})
}

// program is a PROGRAM running code (a STORE hash) on the minimal runtime.
func (h *harness) program(code string, enc string, entrypoint string) *message.ProgramContent {
	f := false
	return &message.ProgramContent{
		Type:           message.ProgramTypeVMFunction,
		ExecutableHead: message.ExecutableHead{AllowAmend: false, Variables: map[string]string{"GREETING": "hi"}},
		Environment:    message.FunctionEnvironment{AlephAPI: true},
		ExecutableTail: message.ExecutableTail{Resources: message.MachineResources{VCPUs: 1, Memory: 128, Seconds: 10}, Volumes: []message.MachineVolume{}},
		Code:           message.CodeContent{Encoding: enc, Entrypoint: entrypoint, Ref: code, UseLatest: true},
		Runtime:        message.FunctionRuntime{Ref: h.runtime, UseLatest: false},
		On:             message.FunctionTriggers{HTTP: true, Persistent: &f},
	}
}

// get requests a program path through the CRN API.
func (h *harness) get(hash, path string) (int, string, http.Header) {
	h.t.Helper()
	return h.do(http.MethodGet, "/vm/"+hash+path, nil, nil)
}

func (h *harness) do(method, path string, body []byte, hdr http.Header) (int, string, http.Header) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.ctx, method, h.api.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// waitFor polls cond until it holds or the harness deadline passes.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-h.ctx.Done():
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
}
