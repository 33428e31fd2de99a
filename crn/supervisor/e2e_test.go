package supervisor_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/api"
	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/guest"
	"github.com/go-aleph/go-aleph/crn/supervisor"
	"github.com/go-aleph/go-aleph/message"
)

// A static Go HTTP server stored as a program answers, for zip and for
// squashfs code, on /vm/{hash}/ and on its host name.
func TestGoServer(t *testing.T) { forEachBackend(t, testGoServer) }

func testGoServer(t *testing.T, backend string) {
	h := newHarness(t, onBackend(t, backend))
	for _, tc := range []struct {
		enc  string
		code []byte
	}{
		{message.EncodingZip, h.goZip("v1-zip")},
		{message.EncodingSquashfs, h.goSquashfs("v1-squashfs")},
	} {
		t.Run(tc.enc, func(t *testing.T) {
			code := h.upload(tc.code, "")
			prog := h.submit(message.TypeProgram, h.program(code, tc.enc, "server"))
			status, body, hdr := h.get(prog, "/hello?x=1")
			if status != 200 || body != "hello from go GET /hello?x=1" {
				t.Fatalf("GET /hello: %d %q", status, body)
			}
			if got := hdr.Get("X-Test"); got != "goserver" {
				t.Errorf("program header X-Test = %q", got)
			}
			if got := hdr.Get("Aleph-Program-ItemHash"); got != prog {
				t.Errorf("Aleph-Program-ItemHash = %q", got)
			}
			if got := hdr.Get("Aleph-Program-Code-Ref"); got != code {
				t.Errorf("Aleph-Program-Code-Ref = %q", got)
			}
			if !strings.HasPrefix(hdr.Get("Server"), "aleph-vm/") {
				t.Errorf("Server = %q", hdr.Get("Server"))
			}
			if _, body, _ := h.get(prog, "/version"); body != "v1-"+tc.enc {
				t.Errorf("version = %q", body)
			}
			// Body, method and headers reach the program; its status comes back.
			status, body, hdr = h.do(http.MethodPost, "/vm/"+prog+"/echo", []byte("payload"), http.Header{"X-Custom": {"abc"}})
			if status != 201 || body != "payload" || hdr.Get("X-Method") != "POST" || hdr.Get("X-Custom") != "abc" {
				t.Errorf("POST /echo: %d %q %v", status, body, hdr)
			}
			// The environment: message variables and aleph-vm's ALEPH_* ones.
			_, env, _ := h.get(prog, "/env")
			for _, want := range []string{"GREETING=hi", "ALEPH_API_HOST=http://localhost", "ALEPH_API_UNIX_SOCKET=/run/aleph/api.sock"} {
				if !strings.Contains(env, want) {
					t.Errorf("environment lacks %s:\n%s", want, env)
				}
			}
			// Host-based routing: {base32(hash)}.{domain}.
			host, err := api.HostName(prog, "example.org")
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(h.ctx, http.MethodGet, h.api.URL+"/by-host", nil)
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Aleph-Program-ItemHash") != prog {
				t.Errorf("host routing: %d %q", resp.StatusCode, resp.Header.Get("Aleph-Program-ItemHash"))
			}
			if !h.pool.Running(prog) {
				t.Error("the program is not kept warm")
			}
		})
	}
}

// Concurrent first requests share one execution, and all get answers.
func TestConcurrentRequests(t *testing.T) {
	h := newHarness(t)
	prog := h.submit(message.TypeProgram, h.program(h.upload(h.goZip("c"), ""), message.EncodingZip, "server"))
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body, _ := h.get(prog, fmt.Sprintf("/sleep?d=%dms", 50+i))
			if status != 200 || body != "slept" {
				errs <- fmt.Sprintf("%d %q", status, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	n := 0
	for _, e := range h.pool.Executions() {
		if e.Hash == prog {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d executions of one program", n)
	}
}

// A crash gives 502 and the next request boots the program again; a
// request over resources.seconds gives 504.
func TestCrashAndTimeout(t *testing.T) { forEachBackend(t, testCrashAndTimeout) }

func testCrashAndTimeout(t *testing.T, backend string) {
	h := newHarness(t, onBackend(t, backend))
	pc := h.program(h.upload(h.goZip("c"), ""), message.EncodingZip, "server")
	pc.Resources.Seconds = 1
	prog := h.submit(message.TypeProgram, pc)
	if status, _, _ := h.get(prog, "/"); status != 200 {
		t.Fatalf("first request: %d", status)
	}
	status, body, _ := h.get(prog, "/crash")
	if status != http.StatusBadGateway {
		t.Fatalf("crash: %d %s", status, body)
	}
	if status, body, _ := h.get(prog, "/"); status != 200 {
		t.Fatalf("after the crash: %d %s", status, body)
	}
	status, body, _ = h.get(prog, "/sleep?d=3s")
	if status != http.StatusGatewayTimeout || !strings.Contains(body, "1 seconds") {
		t.Fatalf("timeout: %d %s", status, body)
	}
	if status, _, _ := h.get(prog, "/"); status != 200 {
		t.Fatalf("after the timeout: %d", status)
	}
	logs, err := h.pool.Logs(prog)
	if err != nil {
		t.Fatal(err)
	}
	if !containsLog(logs, "goserver listening") || !containsLog(logs, "program exited") {
		t.Errorf("logs lack the program's output or the exit: %v", logs)
	}
}

func containsLog(logs []api.LogEntry, s string) bool {
	for _, l := range logs {
		if strings.Contains(l.Message, s) {
			return true
		}
	}
	return false
}

// A new version of the code (a STORE amending the code STORE) stops the
// program and the next request runs it; a FORGET stops it for good.
func TestUpdateAndForget(t *testing.T) {
	h := newHarness(t)
	code := h.upload(h.goZip("v1"), "")
	prog := h.submit(message.TypeProgram, h.program(code, message.EncodingZip, "server"))
	if _, body, _ := h.get(prog, "/version"); body != "v1" {
		t.Fatalf("version %q", body)
	}
	h.upload(h.goZip("v2"), code)
	h.waitFor("the update to stop the program", func() bool { return !h.pool.Running(prog) })
	if _, body, _ := h.get(prog, "/version"); body != "v2" {
		t.Fatalf("after the update: version %q", body)
	}
	h.forget(prog)
	h.waitFor("the forget to stop the program", func() bool { return !h.pool.Running(prog) })
	status, body, _ := h.get(prog, "/version")
	if status != http.StatusNotFound {
		t.Fatalf("forgotten program: %d %s", status, body)
	}
}

// A persistent volume keeps a counter across restarts of the program and of
// the node; an ephemeral one is empty each time.
func TestPersistentVolume(t *testing.T) { forEachBackend(t, testPersistentVolume) }

func testPersistentVolume(t *testing.T, backend string) {
	h := newHarness(t, onBackend(t, backend))
	pc := h.program(h.upload(h.goZip("p"), ""), message.EncodingZip, "server")
	pc.Volumes = []message.MachineVolume{
		{Persistent: &message.PersistentVolume{Mount: "/var/lib/counter", Name: "counter", Persistence: "host", SizeMiB: 8}},
		{Ephemeral: &message.EphemeralVolume{Mount: "/scratch", Ephemeral: true, SizeMiB: 4}},
		{Immutable: &message.ImmutableVolume{Mount: "/opt/assets", Ref: h.upload(h.squashfsOf(map[string]string{"asset.txt": "immutable"}), "")}},
	}
	prog := h.submit(message.TypeProgram, pc)
	if _, body, _ := h.get(prog, "/read?path=/opt/assets/asset.txt"); body != "immutable" {
		t.Fatalf("immutable volume: %q", body)
	}
	if status, body, _ := h.get(prog, "/write?path=/opt/assets/x"); status == 200 {
		t.Fatalf("wrote to an immutable volume: %s", body)
	}
	count := func() string {
		t.Helper()
		status, body, _ := h.get(prog, "/counter?path=/var/lib/counter/n")
		if status != 200 {
			t.Fatalf("counter: %d %s", status, body)
		}
		return body
	}
	scratch := func() string {
		_, body, _ := h.get(prog, "/counter?path=/scratch/n")
		return body
	}
	if a, b := count(), count(); a != "1" || b != "2" {
		t.Fatalf("counter %s, %s", a, b)
	}
	if s := scratch(); s != "1" {
		t.Fatalf("scratch %s", s)
	}
	if ok, err := h.pool.Stop(h.ctx, prog); err != nil || !ok {
		t.Fatalf("stop: %v %v", ok, err)
	}
	if c := count(); c != "3" {
		t.Fatalf("after a restart: counter %s", c)
	}
	if s := scratch(); s != "1" {
		t.Fatalf("ephemeral volume kept data: %s", s)
	}
	// A new pool (a node restart) finds the same disk.
	h.stopPool()
	h.startPool()
	if c := count(); c != "4" {
		t.Fatalf("after a node restart: counter %s", c)
	}
}

// Going over the memory limit kills the program: the request gets 502 with
// the reason, the logs say so, and the next request boots it again.
func TestMemoryLimit(t *testing.T) { forEachBackend(t, testMemoryLimit) }

func testMemoryLimit(t *testing.T, backend string) {
	h := newHarness(t, onBackend(t, backend))
	pc := h.program(h.upload(h.goZip("m"), ""), message.EncodingZip, "server")
	pc.Resources.Memory = 64
	prog := h.submit(message.TypeProgram, pc)
	status, body, _ := h.get(prog, "/alloc?mb=256")
	if status != http.StatusBadGateway || !strings.Contains(body, "out of memory") {
		t.Fatalf("alloc over the limit: %d %s", status, body)
	}
	logs, _ := h.pool.Logs(prog)
	if !containsLog(logs, "out of memory") {
		t.Errorf("logs do not report the OOM kill: %v", logs)
	}
	if status, body, _ := h.get(prog, "/alloc?mb=8"); status != 200 {
		t.Fatalf("after the OOM kill: %d %s", status, body)
	}
}

// A program sees only its runtime: no host file, not the node's data dir,
// no host port; the guest API is its only way out.
func TestIsolation(t *testing.T) { forEachBackend(t, testIsolation) }

func testIsolation(t *testing.T, backend string) {
	h := newHarness(t, onBackend(t, backend))
	secret := filepath.Join(h.dataDir, "secret.txt")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	prog := h.submit(message.TypeProgram, h.program(h.upload(h.goZip("i"), ""), message.EncodingZip, "server"))
	for _, p := range []string{secret, "/etc/shadow", h.art.init, filepath.Join(h.dataDir, "cache")} {
		status, body, _ := h.get(prog, "/read?path="+p)
		if status == 200 && (strings.Contains(body, "host secret") || p != "/etc/shadow") {
			t.Errorf("program read host path %s: %q", p, clip(body))
		}
	}
	hostAddrs := []string{ln.Addr().String(), strings.TrimPrefix(h.ccnURL, "http://")}
	if ip := outboundIP(); ip != "" {
		hostAddrs = append(hostAddrs, net.JoinHostPort(ip, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)))
	}
	for _, a := range hostAddrs {
		if status, body, _ := h.get(prog, "/dial?net=tcp&addr="+a); status == 200 {
			t.Errorf("program reached host port %s: %s", a, body)
		}
	}
	// The guest API is reachable, and proxies reads to the CCN.
	status, body, _ := h.get(prog, "/guestapi?path=/api/v0/messages/"+prog)
	if status != 200 || !strings.Contains(body, prog) {
		t.Errorf("guest api proxy: %d %s", status, clip(body))
	}
	// But not writes.
	if status, _, _ := h.get(prog, "/guestapi?path=/about/config"); status == 200 {
		t.Error("guest api served a non-allowed path")
	}
}

func outboundIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Programs that cannot run are refused with a clear error naming why.
func TestBadPrograms(t *testing.T) { forEachBackend(t, testBadPrograms) }

func testBadPrograms(t *testing.T, backend string) {
	h := newHarness(t, onBackend(t, backend))
	code := h.upload(h.goZip("b"), "")
	missing := h.program(code, message.EncodingZip, "no-such-binary")
	// The CCN refuses refs to unknown STOREs, so an unknown runtime is a
	// STORE that holds no runtime image.
	unknownRuntime := h.program(code, message.EncodingZip, "server")
	unknownRuntime.Runtime.Ref = code
	huge := h.program(code, message.EncodingZip, "server")
	huge.Volumes = []message.MachineVolume{{Persistent: &message.PersistentVolume{Mount: "/big", Name: "big", Persistence: "host", SizeMiB: 1 << 20}}}
	bigMem := h.program(code, message.EncodingZip, "server")
	bigMem.Resources.Memory = 64 << 10
	for _, tc := range []struct {
		name   string
		pc     *message.ProgramContent
		status int
		want   string
	}{
		{"missing entrypoint", missing, http.StatusInternalServerError, "no-such-binary"},
		{"unknown runtime", unknownRuntime, http.StatusBadRequest, "runtime"},
		{"oversized volume", huge, http.StatusBadRequest, "limit"},
		{"too much memory", bigMem, http.StatusBadRequest, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := h.submit(message.TypeProgram, tc.pc)
			status, body, _ := h.get(prog, "/")
			var e struct{ Error string }
			_ = json.Unmarshal([]byte(body), &e)
			if status != tc.status || !strings.Contains(strings.ToLower(e.Error), tc.want) {
				t.Fatalf("%d %s; want %d mentioning %q", status, body, tc.status, tc.want)
			}
			if h.pool.Running(prog) {
				t.Error("a refused program is running")
			}
		})
	}
	// Not a program at all.
	if status, body, _ := h.get(code, "/"); status != http.StatusBadRequest && status != http.StatusNotFound {
		t.Errorf("a STORE as a program: %d %s", status, body)
	}
}

// on.message subscribers get matching messages; persistent programs start
// without a request.
func TestTriggers(t *testing.T) {
	h := newHarness(t)
	code := h.upload(h.goZip("t"), "")
	sub := h.program(code, message.EncodingZip, "server")
	sub.On.Message = []message.Subscription{{"channel": json.RawMessage(`"TRIGGER"`)}}
	subHash := h.submit(message.TypeProgram, sub)
	pers := h.program(code, message.EncodingZip, "server")
	yes := true
	pers.On.Persistent = &yes
	persHash := h.submit(message.TypeProgram, pers)
	h.waitFor("the persistent program to start", func() bool { return h.pool.Running(persHash) })

	post := h.postOn("TRIGGER", `{"hello":"event"}`)
	h.waitFor("the event to reach the subscriber", func() bool {
		status, body, _ := h.get(subHash, "/last-event")
		return status == 200 && strings.Contains(body, post)
	})
	// A persistent program that crashes comes back by itself.
	h.get(persHash, "/crash")
	h.waitFor("the persistent program to restart", func() bool { return h.pool.Running(persHash) })
	for _, e := range h.pool.Executions() {
		if e.Hash == persHash && e.VMType != "persistent_program" {
			t.Errorf("vm_type %q", e.VMType)
		}
	}
}

func (h *harness) postOn(channel, content string) string {
	h.t.Helper()
	w, err := h.c.Submit(h.ctx, message.TypePost, &message.PostContent{Type: "test", Content: json.RawMessage(content)},
		client.WriteOptions{Channel: channel, Sync: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return w.ItemHash
}

// A Python ASGI app answers, run by uvicorn from the Python runtime.
func TestASGI(t *testing.T) { forEachBackend(t, testASGI) }

func testASGI(t *testing.T, backend string) {
	h := newHarness(t, onBackend(t, backend))
	if h.art.pyErr != nil {
		t.Skipf("python runtime: %v", h.art.pyErr)
	}
	py, err := os.ReadFile("testdata/asgi/main.py")
	if err != nil {
		t.Fatal(err)
	}
	pc := h.program(h.upload(zipOf(t, map[string][]byte{"main.py": py}), ""), message.EncodingZip, "main:app")
	pc.Runtime.Ref = h.uploadFile(h.art.pyRuntime, "")
	prog := h.submit(message.TypeProgram, pc)
	status, body, hdr := h.do(http.MethodPost, "/vm/"+prog+"/py", []byte("data"), nil)
	want := fmt.Sprintf("hello from asgi POST /py vm=%s body=data", mustHostname(t, prog))
	if status != 200 || body != want || hdr.Get("X-Test") != "asgi" {
		t.Fatalf("asgi: %d %q %v; want %q", status, body, hdr, want)
	}
}

// Programs with environment.internet reach a server in a namespace the
// test created, through the node's NAT and with its resolvers; programs
// without cannot; nothing of the network is left once they stop.
func TestInternet(t *testing.T) { forEachBackend(t, testInternet) }

func testInternet(t *testing.T, backend string) {
	netOpt, inet := withInternet(t)
	h := newHarness(t, onBackend(t, backend), netOpt)
	code := h.upload(h.goZip("n"), "")
	online := h.program(code, message.EncodingZip, "server")
	online.Environment.Internet = true
	on := h.submit(message.TypeProgram, online)
	status, body, _ := h.get(on, "/fetch?url="+inet.url)
	if status != 200 || !strings.HasPrefix(body, "fake internet saw "+inetHostIP+":") {
		logs, _ := h.pool.Logs(on)
		t.Fatalf("online program: %d %q (want the request NATed from %s); logs: %v", status, body, inetHostIP, logs)
	}
	if _, resolv, _ := h.get(on, "/resolv"); !strings.Contains(resolv, "nameserver "+inetIP) {
		t.Errorf("resolv.conf lacks the node's resolver: %q", resolv)
	}
	offline := h.program(code, message.EncodingZip, "server")
	offline.Variables = map[string]string{"OFFLINE": "1"}
	off := h.submit(message.TypeProgram, offline)
	if status, body, _ := h.get(off, "/fetch?url="+inet.url); status == 200 {
		t.Errorf("a program without internet reached it: %q", body)
	}
	if len(ourLinks(t)) != 1 {
		t.Errorf("links while one online program runs: %v", ourLinks(t))
	}
	for _, p := range []string{on, off} {
		if _, err := h.pool.Stop(h.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if links := ourLinks(t); len(links) != 0 {
		t.Errorf("left behind after stop: %v", links)
	}
}

// A program can require a backend (content.metadata.executor): it runs in
// it on a node that offers it; a node that does not says so (503), and an
// unknown backend is the program's mistake (400).
func TestExecutorChoice(t *testing.T) {
	vm := qemuExecutor(t)
	h := newHarness(t, func(c *supervisor.Config) {
		c.Executors = map[string]executor.Executor{"qemu": vm}
		c.ReadyTimeout = 60e9
	})
	code := h.upload(h.goZip("x"), "")
	with := func(meta string) string {
		pc := h.program(code, message.EncodingZip, "server")
		pc.Metadata = json.RawMessage(meta)
		return h.submit(message.TypeProgram, pc)
	}
	inVM := func(prog string) bool {
		status, body, _ := h.get(prog, "/read?path=/proc/cmdline")
		if status != 200 {
			t.Fatalf("read /proc/cmdline: %d %s", status, body)
		}
		return strings.Contains(body, "aleph.link=")
	}
	if inVM(with(`{"name":"default"}`)) {
		t.Error("a program without a requirement ran in a vm on a sandbox node")
	}
	for _, meta := range []string{`{"executor":"qemu"}`, `{"executor":"vm"}`, `{"executor":"firecracker"}`} {
		if !inVM(with(meta)) {
			t.Errorf("%s did not run in a vm", meta)
		}
	}
	if inVM(with(`{"executor":"sandbox"}`)) {
		t.Error(`{"executor":"sandbox"} ran in a vm`)
	}
	status, body, _ := h.get(with(`{"executor":"xen"}`), "/")
	if status != http.StatusBadRequest || !strings.Contains(body, "xen") {
		t.Errorf("unknown executor: %d %s", status, body)
	}

	plain := newHarness(t) // sandbox only
	pc := plain.program(plain.upload(plain.goZip("y"), ""), message.EncodingZip, "server")
	pc.Metadata = json.RawMessage(`{"executor":"vm"}`)
	status, body, _ = plain.get(plain.submit(message.TypeProgram, pc), "/")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "offers sandbox") {
		t.Errorf("vm on a sandbox-only node: %d %s", status, body)
	}
}

func mustHostname(t *testing.T, hash string) string {
	t.Helper()
	n, err := guest.Hostname(hash)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
