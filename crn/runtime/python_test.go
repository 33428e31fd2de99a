package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Python runtime is built once for the package, with the shared cache
// (DefaultCacheDir): on a machine that built it before, no debootstrap runs.
var python struct {
	once sync.Once
	dir  string // removed by TestMain
	init string
	res  *Result
	root string // the image, extracted
	skip string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if python.dir != "" {
		os.RemoveAll(python.dir)
	}
	os.Exit(code)
}

// pythonSkip says why the Python runtime cannot be built here, or "".
func pythonSkip(ctx context.Context) string {
	if os.Geteuid() != 0 {
		return "the python runtime needs root (debootstrap, chroot)"
	}
	for _, tool := range []string{"debootstrap", "mksquashfs", "unsquashfs", "go"} {
		if _, err := lookSbin(tool); err != nil {
			return fmt.Sprintf("%s not installed: %v", tool, err)
		}
	}
	if _, err := fetchRelease(ctx, DefaultMirror, DefaultSuite); err != nil {
		return fmt.Sprintf("debian mirror unreachable: %v", err)
	}
	return ""
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// pythonRuntime builds (once) and returns the Python runtime and its
// extracted tree.
func pythonRuntime(t *testing.T) (*Result, string) {
	t.Helper()
	python.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if python.skip = pythonSkip(ctx); python.skip != "" {
			return
		}
		if python.dir, python.err = os.MkdirTemp("", "runtime-python-test-"); python.err != nil {
			return
		}
		python.init = filepath.Join(python.dir, InitName)
		if python.err = BuildInit(ctx, moduleDir, python.init); python.err != nil {
			return
		}
		start := time.Now()
		python.res, python.err = Build(ctx, Options{Out: filepath.Join(python.dir, "python.squashfs"), Init: python.init,
			Python: true, Logger: testLogger()})
		if python.err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "python runtime built in %v (tree cached: %v): %d bytes, %d entries, sha256 %s\n",
			time.Since(start).Round(time.Millisecond), python.res.Cached, python.res.Size, python.res.Files, python.res.SHA256)
		python.root = filepath.Join(python.dir, "root")
		if out, err := exec.CommandContext(ctx, "unsquashfs", "-q", "-n", "-d", python.root, python.res.Path).CombinedOutput(); err != nil {
			python.err = fmt.Errorf("unsquashfs: %w: %s", err, out)
		}
	})
	if python.skip != "" {
		t.Skip(python.skip)
	}
	if python.err != nil {
		t.Fatalf("python runtime: %v", python.err)
	}
	return python.res, python.root
}

func TestPythonRuntimeContents(t *testing.T) {
	res, _ := pythonRuntime(t)
	if !res.Python || res.Files < 1000 {
		t.Errorf("result %+v", res)
	}
	entries := listImage(t, res.Path)
	if res.Files != len(entries) {
		t.Errorf("Files = %d, image has %d entries", res.Files, len(entries))
	}
	want := map[string]string{ // path → mode or "-> target"
		"/bin": "-> usr/bin", "/sbin": "-> usr/sbin", "/lib": "-> usr/lib", "/lib64": "-> usr/lib64",
		"/usr/sbin/aleph-init": "-rwxr-xr-x", "/usr/bin/python3": "-> python3.11",
		"/usr/lib/python3/dist-packages/uvicorn/__init__.py": "-rw-r--r--",
		"/usr/lib/python3/dist-packages/fastapi/__init__.py": "-rw-r--r--",
		"/etc/ssl/certs/ca-certificates.crt":                 "-rw-r--r--",
		"/usr/lib/ssl/cert.pem":                              "-> /etc/ssl/certs/ca-certificates.crt",
		"/etc/resolv.conf":                                   "-rw-r--r--", "/etc/hosts": "-rw-r--r--", "/etc/hostname": "-rw-r--r--",
		"/etc/shadow": "-rw-r-----",
		"/proc":       "dr-xr-xr-x", "/sys": "dr-xr-xr-x", "/dev": "drwxr-xr-x", "/tmp": "drwxrwxrwt",
		"/run": "drwxr-xr-x", "/run/aleph": "drwxr-xr-x", "/opt/code": "drwxr-xr-x", "/data": "drwxr-xr-x",
		"/mnt": "drwxr-xr-x", "/root": "drwx------", "/var/tmp": "drwxrwxrwt",
	}
	for p, w := range want {
		e, ok := entries[p]
		switch {
		case !ok:
			t.Errorf("%s missing", p)
		case strings.HasPrefix(w, "-> "):
			if e.mode[0] != 'l' || e.target != w[3:] {
				t.Errorf("%s = %s -> %q, want a link %s", p, e.mode, e.target, w)
			}
		case e.mode != w:
			t.Errorf("%s mode = %s, want %s", p, e.mode, w)
		}
	}
	if e := entries["/etc/shadow"]; e.owner != "0/42" {
		t.Errorf("/etc/shadow owner %s, want root:shadow (0/42)", e.owner)
	}
	for p, e := range entries {
		if e.date != "1970-01-01 00:00" {
			t.Errorf("%s: time %s, want the epoch", p, e.date)
		}
		dir := p[:strings.LastIndex(p, "/")+1]
		switch {
		case strings.HasPrefix(p, "/debootstrap"), strings.HasSuffix(p, "-old"), strings.HasSuffix(p, ".deb"),
			p == "/var/cache/ldconfig/aux-cache", p == "/etc/machine-id" && e.mode[0] != '-':
			t.Errorf("%s: build state left in the image", p)
		case e.mode[0] != 'd' && (dir == "/dev/" || dir == "/tmp/" || dir == "/var/tmp/" ||
			strings.HasPrefix(p, "/var/log/") || strings.HasPrefix(p, "/var/lib/apt/lists/") || strings.HasPrefix(p, "/run/")):
			t.Errorf("%s: should have been emptied", p)
		case strings.HasPrefix(p, "/usr/share/doc/") && e.mode[0] != 'd' && !strings.HasSuffix(p, "/copyright"):
			t.Errorf("%s: only copyright files stay in /usr/share/doc", p)
		case strings.Contains(p, "runtime-stage") || strings.Contains(e.target, "runtime-stage"):
			t.Errorf("staging path leaked: %s -> %s", p, e.target)
		}
	}
}

func TestPythonRuntimeManifest(t *testing.T) {
	res, _ := pythonRuntime(t)
	if res.Manifest != res.Path+".json" {
		t.Fatalf("Manifest = %q", res.Manifest)
	}
	m, err := ReadManifest(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	initSum, _ := fileHash(t, python.init)
	if m.SHA256 != res.SHA256 || m.Size != res.Size || m.Variant != "python" || m.Suite != DefaultSuite ||
		m.Mirror != DefaultMirror || m.Architecture != "amd64" && m.Architecture != "arm64" ||
		len(m.ReleaseSHA256) != 64 || m.AlephInitSHA256 != initSum || m.BusyboxSHA256 != "" {
		t.Errorf("manifest = %+v", m)
	}
	if !strings.HasPrefix(m.BuiltWith["debootstrap"], "debootstrap ") || !strings.HasPrefix(m.BuiltWith["mksquashfs"], "mksquashfs version") {
		t.Errorf("built_with = %v", m.BuiltWith)
	}
	if !maps.Equal(m.Packages, res.Packages) {
		t.Error("manifest and result list different packages")
	}
	for _, p := range append([]string{"libc6", "dpkg", "apt"}, pythonPackages...) {
		if m.Packages[p] == "" {
			t.Errorf("package %s not recorded", p)
		}
	}
	if len(m.Packages) < 50 || len(m.Packages) > 400 {
		t.Errorf("%d packages: not a minbase + python tree", len(m.Packages))
	}
	// The manifest is plain JSON with the documented keys.
	b, err := os.ReadFile(res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sha256", "size", "suite", "mirror", "packages", "aleph_init_sha256", "built_with"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("manifest has no %q", k)
		}
	}
}

func TestPythonRuntimeImports(t *testing.T) {
	_, root := pythonRuntime(t)
	out := inChroot(t, root, "/usr/bin/python3", "-c",
		"import fastapi, uvicorn, msgpack, ssl; print(msgpack.unpackb(msgpack.packb([1, 'a'])), "+
			"ssl.create_default_context().cert_store_stats()['x509_ca'] > 0)")
	if out != "[1, 'a'] True\n" {
		t.Fatalf("imports in the runtime: %q", out)
	}
	if out := inChroot(t, root, "/usr/bin/python3", "-m", "uvicorn", "--version"); !strings.HasPrefix(out, "Running uvicorn ") {
		t.Fatalf("uvicorn --version: %q", out)
	}
	// Everything imported was byte-compiled: nothing new was written.
	before := countPyc(t, root)
	inChroot(t, root, "/usr/bin/python3", "-c", "import fastapi, uvicorn.main, uvicorn.protocols.http.h11_impl, msgpack")
	if after := countPyc(t, root); after != before {
		t.Errorf("importing fastapi and uvicorn wrote %d .pyc files: the bytecode cache was not used", after-before)
	}
	// The cache is unchecked-hash (PEP 552 flags = 1): sources are not
	// re-hashed at import.
	pycs, err := filepath.Glob(filepath.Join(root, "usr/lib/python3/dist-packages/fastapi/__pycache__/__init__.*.pyc"))
	if err != nil || len(pycs) != 1 {
		t.Fatalf("fastapi's __init__ pyc: %v %v", pycs, err)
	}
	b, err := os.ReadFile(pycs[0])
	if err != nil || len(b) < 16 || b[4] != 1 {
		t.Fatalf("%s: flags %v, want unchecked-hash (1)", pycs[0], b[4:8])
	}
}

func countPyc(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pyc") {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const fastapiApp = `from fastapi import FastAPI, Request
import msgpack

app = FastAPI()


@app.get("/")
async def index(request: Request):
    return {"msgpack": msgpack.unpackb(msgpack.packb([1, "a"])), "path": request.url.path}
`

// A FastAPI main:app answers through uvicorn on a Unix socket, launched as
// aleph-init launches asgi programs.
func TestPythonRuntimeFastAPI(t *testing.T) {
	_, root := pythonRuntime(t)
	code := filepath.Join(root, "opt", "code")
	if err := os.WriteFile(filepath.Join(code, "main.py"), []byte(fastapiApp), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(code, "main.py")); os.RemoveAll(filepath.Join(code, "__pycache__")) })
	const sock = "/run/aleph/app.sock"
	os.Remove(filepath.Join(root, sock))
	ctx := testContext(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-m", "uvicorn", "--app-dir", "/opt/code", "--uds", sock, "main:app")
	cmd.Path, cmd.Err = "/usr/bin/python3", nil
	cmd.Dir = "/opt/code"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// uvicorn says when it listens; its exit closes the pipe.
	ready := make(chan error, 1)
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Uvicorn running on unix socket") {
				ready <- nil
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
		}
		ready <- errors.New("uvicorn exited before listening")
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	select {
	case err := <-ready:
		if err != nil {
			stop()
			t.Fatalf("%v:\n%s", err, logs.String())
		}
	case <-ctx.Done():
		t.Fatalf("uvicorn not listening: %v", ctx.Err())
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(root, sock))
	}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"msgpack":[1,"a"],"path":"/"}`; resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET /: %d %s; want 200 %s", resp.StatusCode, body, want)
	}
	stop()
}

// Two builds from the same inputs give the same image: from the cached tree,
// and (not in -short mode) from a fresh debootstrap with the same packages.
func TestPythonRuntimeReproducible(t *testing.T) {
	res, _ := pythonRuntime(t)
	ctx := testContext(t, 10*time.Minute)
	o := Options{Out: filepath.Join(t.TempDir(), "again.squashfs"), Init: python.init, Python: true, Logger: testLogger()}
	start := time.Now()
	again, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm build (cached tree) in %v", time.Since(start).Round(time.Millisecond))
	if !again.Cached {
		t.Error("the second build did not use the cached tree")
	}
	if again.SHA256 != res.SHA256 {
		t.Fatalf("two python builds differ: %s and %s", res.SHA256, again.SHA256)
	}
	// Builds link the cached tree: what they add must not reach it.
	for _, p := range []string{"usr/sbin/aleph-init", "etc/hostname", "etc/resolv.conf", "run/aleph", "opt/code"} {
		if found, _ := filepath.Glob(filepath.Join(DefaultCacheDir(), "trees", "*", p)); len(found) > 0 {
			t.Errorf("the cached tree was changed by a build: %v", found)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(DefaultCacheDir(), "work")); len(left) > 0 {
		t.Errorf("builds left %d entries in the cache's work dir", len(left))
	}
	if testing.Short() {
		t.Skip("-short: no fresh debootstrap")
	}
	// A fresh cache with a copy of the downloaded packages: debootstrap runs
	// again (no download) and must give the same bytes.
	cache := t.TempDir()
	if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(DefaultCacheDir(), "debs"), cache).CombinedOutput(); err != nil {
		t.Fatalf("copy the .deb cache: %v: %s", err, out)
	}
	o.Out, o.CacheDir = filepath.Join(t.TempDir(), "fresh.squashfs"), cache
	start = time.Now()
	fresh, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fresh build (debootstrap from cached .debs) in %v", time.Since(start).Round(time.Millisecond))
	if fresh.Cached {
		t.Error("the fresh build used a cached tree")
	}
	if fresh.SHA256 != res.SHA256 {
		diffImages(t, res.Path, fresh.Path)
		t.Fatalf("a fresh debootstrap gives another image: %s and %s", res.SHA256, fresh.SHA256)
	}
	a, _ := os.ReadFile(res.Manifest)
	b, _ := os.ReadFile(fresh.Manifest)
	if string(a) != string(b) {
		t.Errorf("manifests differ:\n%s\n%s", a, b)
	}
}

// diffImages logs which files differ between two images.
func diffImages(t *testing.T, a, b string) {
	t.Helper()
	da, db := extract(t, a), extract(t, b)
	out, _ := exec.Command("diff", "-rq", "--no-dereference", da, db).CombinedOutput()
	t.Logf("diff -rq:\n%s", tail(string(out), 4000))
	la, lb := listImage(t, a), listImage(t, b)
	n := 0
	for p, e := range la {
		if lb[p] != e && n < 20 {
			t.Logf("%s: %+v vs %+v", p, e, lb[p])
			n++
		}
	}
}

// A mirror without the suite fails the build with ErrMirror before
// debootstrap runs, and leaves nothing behind.
func TestPythonMirrorWithoutSuite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the python runtime needs root")
	}
	if _, err := lookSbin("debootstrap"); err != nil {
		t.Skipf("debootstrap not installed: %v", err)
	}
	needTools(t, "mksquashfs")
	dir := t.TempDir()
	o := Options{Out: filepath.Join(dir, "out", "python.squashfs"), Init: buildInit(t), Python: true,
		Mirror: "file://" + dir, CacheDir: filepath.Join(dir, "cache"), Logger: testLogger()}
	res, err := Build(testContext(t, time.Minute), o)
	if !errors.Is(err, ErrMirror) || !strings.Contains(err.Error(), "dists/bookworm/InRelease") {
		t.Fatalf("Build = %+v, %v; want ErrMirror naming the missing InRelease", res, err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "out")); len(left) > 0 {
		t.Errorf("a failed build left %v", left)
	}
}
