package guest_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/guest"
	"github.com/go-aleph/go-aleph/crn/protocol"
)

const testHash = "d2b74aa29898457bde0560e47f7cdd4e77287e9f1f7a1456161d2fd7d5c855d7"

var (
	appOnce sync.Once
	appBin  []byte
	appErr  error
)

// testApp builds testdata/app once per test binary.
func testApp(t *testing.T) []byte {
	t.Helper()
	appOnce.Do(func() {
		dir, err := os.MkdirTemp("", "aleph-init-app")
		if err != nil {
			appErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "app")
		cmd := exec.Command("go", "build", "-o", out, "./testdata/app")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			appErr = errors.New(string(b))
			return
		}
		appBin, appErr = os.ReadFile(out)
	})
	if appErr != nil {
		t.Fatalf("build test app: %v", appErr)
	}
	return appBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type harness struct {
	host    *protocol.UnixTransport
	addr    string
	dir     string
	console *os.File
	done    chan error
}

// start runs an agent in-process over UnixTransport and waits for ready.
func start(t *testing.T, tweak func(*guest.Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	host, err := protocol.ListenUnix(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { console.Close() })
	h := &harness{host: host, addr: freeAddr(t), dir: dir, console: console, done: make(chan error, 1)}
	o := guest.Options{
		Transport:   protocol.UnixGuestTransport{Dir: host.Dir()},
		Console:     console,
		CodeDir:     filepath.Join(dir, "code"),
		DataDir:     filepath.Join(dir, "data"),
		AppSocket:   filepath.Join(dir, "app.sock"),
		APISocket:   "/run/aleph/api.sock",
		AppAddr:     h.addr,
		StopTimeout: 5 * time.Second,
		Retry:       guest.RetryPolicy{AttemptTimeout: time.Second, Attempts: 40, Backoff: 10 * time.Millisecond},
	}
	if tweak != nil {
		tweak(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- guest.New(o).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(20 * time.Second):
			t.Error("agent did not stop")
		}
	})
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	v, err := host.AwaitReady(rctx)
	if err != nil || v != protocol.Version {
		t.Fatalf("AwaitReady = %q, %v", v, err)
	}
	return h
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (h *harness) configure(t *testing.T, cfg *protocol.Configuration) error {
	t.Helper()
	if cfg.VMHash == "" {
		cfg.VMHash = testHash
	}
	if cfg.Variables == nil {
		cfg.Variables = map[string]string{}
	}
	cfg.Variables["APP_ADDR"] = h.addr
	return protocol.Configure(ctxT(t), h.host, cfg)
}

func (h *harness) get(t *testing.T, path, query string) *protocol.Result {
	t.Helper()
	res, err := protocol.Run(ctxT(t), h.host, &protocol.Scope{Type: protocol.ScopeHTTP, Method: "GET", Path: path, QueryString: query})
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return res
}

func header(r *protocol.Result, name string) []string {
	var vs []string
	for _, h := range r.Headers {
		if string(h[0]) == name {
			vs = append(vs, string(h[1]))
		}
	}
	return vs
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		fh := &zip.FileHeader{Name: name, Method: zip.Deflate}
		fh.SetMode(0o755)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExecutableEndToEnd(t *testing.T) {
	h := start(t, nil)
	ctx := ctxT(t)
	// A request before the configuration is an error result, not a hang.
	res := h.get(t, "/echo", "")
	if !res.Failed() || !strings.Contains(res.Error, "not configured") {
		t.Fatalf("before configure: %+v", res)
	}
	err := h.configure(t, &protocol.Configuration{
		Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingZip, Entrypoint: "bin/app",
		Code:      zipOf(t, map[string][]byte{"bin/app": testApp(t)}),
		InputData: zipOf(t, map[string][]byte{"in.txt": []byte("data")}),
		Variables: map[string]string{"VM_CUSTOM_NUMBER": "32"},
	})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(h.dir, "data", "in.txt")); err != nil || string(b) != "data" {
		t.Errorf("input data: %q, %v", b, err)
	}
	if err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable}); !errors.Is(err, protocol.ErrConfigRejected) {
		t.Errorf("second Configure = %v, want rejection", err)
	}

	res = h.get(t, "/echo", "x=1&y=%20")
	if res.Failed() || res.Status != 201 {
		t.Fatalf("GET: %+v", res)
	}
	if got, want := string(res.Body), "GET /echo?x=1&y=%20 host=localhost test= body="; !strings.HasPrefix(got, "GET /echo?x=1&y=%20 host=") {
		t.Errorf("GET body %q, want like %q", got, want)
	}
	if got := header(res, "x-multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("x-multi = %q", got)
	}

	res, err = protocol.Run(ctx, h.host, &protocol.Scope{Type: protocol.ScopeHTTP, Method: "POST", Path: "/echo",
		Headers: [][2][]byte{{[]byte("host"), []byte("vm.example.org")}, {[]byte("x-test"), []byte("yes")}, {[]byte("content-length"), []byte("999")}},
		Body:    []byte("hello body")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Body), "POST /echo? host=vm.example.org test=yes body=hello body"; got != want {
		t.Errorf("POST body %q, want %q", got, want)
	}
	if got := header(res, "x-method"); len(got) != 1 || got[0] != "POST" {
		t.Errorf("x-method = %q", got)
	}

	for k, want := range map[string]string{
		"VM_CUSTOM_NUMBER": "32", "ALEPH_INIT_VERSION": "2.0.0", "ALEPH_API_HOST": "http://localhost",
		"ALEPH_API_UNIX_SOCKET": "/run/aleph/api.sock", "ALEPH_REMOTE_CRYPTO_HOST": "http://localhost",
		"ALEPH_REMOTE_CRYPTO_UNIX_SOCKET": "/run/aleph/api.sock", "ALEPH_ADDRESS_TO_USE": "2k3uviuytbcxxxqfmdsh67g5jz3sq7u7d55bivqwdux5pvoikxlq",
	} {
		if got := string(h.get(t, "/env", "k="+k).Body); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	res, err = protocol.Run(ctx, h.host, &protocol.Scope{Type: protocol.ScopeMessage, Body: []byte(`{"item_hash":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Body), `event message application/json {"item_hash":"x"}`; got != want {
		t.Errorf("event: %q, want %q", got, want)
	}

	if err := protocol.Halt(ctx, h.host); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Run after halt = %v", err)
		}
		h.done <- nil
	case <-ctx.Done():
		t.Fatal("agent still running after halt")
	}
	if _, err := net.Dial("tcp", h.addr); err == nil {
		t.Error("program still listening after halt")
	}
}

func TestHaltWire(t *testing.T) {
	h := start(t, nil)
	conn, err := h.host.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "halt"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || string(b) != "STOP\nSTOPZ\n" {
		t.Fatalf("halt answer %q, %v", b, err)
	}
}

func TestRetryUntilListening(t *testing.T) {
	h := start(t, nil)
	if err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingPlain,
		Entrypoint: "app", Code: testApp(t), Variables: map[string]string{"DELAY_MS": "300"}}); err != nil {
		t.Fatal(err)
	}
	if res := h.get(t, "/env", "k=DELAY_MS"); res.Status != 200 || string(res.Body) != "300" {
		t.Fatalf("late listener: %+v", res)
	}
}

func TestLoadingWhenNeverListening(t *testing.T) {
	h := start(t, func(o *guest.Options) {
		o.Retry = guest.RetryPolicy{AttemptTimeout: 100 * time.Millisecond, Attempts: 3, Backoff: 5 * time.Millisecond}
	})
	if err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingPlain,
		Entrypoint: "app", Code: testApp(t), Variables: map[string]string{"NEVER_LISTEN": "1"}}); err != nil {
		t.Fatal(err)
	}
	res := h.get(t, "/", "")
	if res.Status != 503 || !bytes.Contains(res.Body, []byte("starting")) {
		t.Fatalf("never listening: status %d body %q", res.Status, res.Body)
	}
}

func TestCrashDropsRequests(t *testing.T) {
	h := start(t, nil)
	if err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingPlain,
		Entrypoint: "app", Code: testApp(t)}); err != nil {
		t.Fatal(err)
	}
	if res := h.get(t, "/env", "k=APP_ADDR"); res.Status != 200 {
		t.Fatalf("before crash: %+v", res)
	}
	ctx := ctxT(t)
	// The crashing request itself may race the exit; afterwards every
	// request gets no result (the host's 502) and the agent keeps serving.
	_, _ = protocol.Run(ctx, h.host, &protocol.Scope{Type: protocol.ScopeHTTP, Method: "GET", Path: "/crash"})
	for {
		_, err := protocol.Run(ctx, h.host, &protocol.Scope{Type: protocol.ScopeHTTP, Method: "GET", Path: "/env"})
		if errors.Is(err, protocol.ErrNoResponse) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no ErrNoResponse after crash: %v", err)
		}
	}
	if err := protocol.Halt(ctx, h.host); err != nil {
		t.Fatalf("halt after crash: %v", err)
	}
}

func TestConfigurationRejected(t *testing.T) {
	tests := []struct {
		name string
		cfg  protocol.Configuration
		want string
	}{
		{"zip slip", protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingZip, Entrypoint: "app",
			Code: zipOf(t, map[string][]byte{"../../evil": []byte("x")})}, "escapes"},
		{"entrypoint escapes", protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingPlain,
			Entrypoint: "../app", Code: []byte("x")}, "not a relative path"},
		{"missing entrypoint", protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingZip,
			Entrypoint: "nope", Code: zipOf(t, map[string][]byte{"app": []byte("x")})}, "entrypoint"},
		{"missing volume", protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingPlain,
			Entrypoint: "app", Code: []byte("x"), Volumes: []protocol.Volume{{Mount: "/nonexistent/vol", ReadOnly: true}}}, "not mounted"},
		{"bad hash", protocol.Configuration{VMHash: "zz", Interface: protocol.InterfaceExecutable}, "vm_hash"},
		{"unknown interface", protocol.Configuration{Interface: "wasm", Encoding: protocol.EncodingPlain}, "interface"},
		{"asgi without python", protocol.Configuration{Interface: protocol.InterfaceASGI, Encoding: protocol.EncodingPlain,
			Entrypoint: "app", Code: []byte("app = None")}, "python3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, func(o *guest.Options) { o.Python = "/nonexistent/python3" })
			err := h.configure(t, &tt.cfg)
			var ce *protocol.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(ce.Message, tt.want) {
				t.Fatalf("Configure = %v, want a rejection mentioning %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(h.dir, "evil")); err == nil {
				t.Fatal("zip slip wrote outside the code dir")
			}
		})
	}
}

func TestDebugShell(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		h := start(t, func(o *guest.Options) { o.DebugShell = enabled })
		conn, err := h.host.Dial(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, "!echo shell-ran"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ran := strings.Contains(string(b), "shell-ran"); ran != enabled {
			t.Errorf("debug shell enabled=%v: answer %q", enabled, b)
		}
	}
}

const fastAPIApp = `from fastapi import FastAPI, Request

app = FastAPI()

@app.get("/")
async def index(x: str = ""):
    return {"hello": "world", "x": x}

@app.post("/__aleph_message__")
async def event(request: Request):
    return {"event": (await request.body()).decode(), "kind": request.headers.get("x-aleph-event")}
`

func TestASGI(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import uvicorn, fastapi").Run(); err != nil {
		t.Skipf("%s has no uvicorn/fastapi: %v", python, err)
	}
	h := start(t, func(o *guest.Options) { o.Python = python })
	if err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceASGI, Encoding: protocol.EncodingZip,
		Entrypoint: "main:app", Code: zipOf(t, map[string][]byte{"main.py": []byte(fastAPIApp)})}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	res := h.get(t, "/", "x=1")
	if res.Status != 200 || string(res.Body) != `{"hello":"world","x":"1"}` {
		t.Fatalf("GET /: %d %q", res.Status, res.Body)
	}
	if got := header(res, "content-type"); len(got) != 1 || got[0] != "application/json" {
		t.Errorf("content-type %q", got)
	}
	res, err := protocol.Run(ctxT(t), h.host, &protocol.Scope{Type: protocol.ScopeMessage, Body: []byte(`{"a":1}`)})
	if err != nil || string(res.Body) != `{"event":"{\"a\":1}","kind":"message"}` {
		t.Fatalf("event: %+v, %v", res, err)
	}
	if err := protocol.Halt(ctxT(t), h.host); err != nil {
		t.Fatal(err)
	}
}

func TestASGIImportError(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import uvicorn").Run(); err != nil {
		t.Skipf("%s has no uvicorn: %v", python, err)
	}
	h := start(t, func(o *guest.Options) { o.Python = python })
	err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceASGI, Encoding: protocol.EncodingZip,
		Entrypoint: "main:app", Code: zipOf(t, map[string][]byte{"main.py": []byte("import nonexistent_module_x\n")})})
	var ce *protocol.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "nonexistent_module_x") {
		t.Fatalf("Configure = %v, want the import error", err)
	}
}
