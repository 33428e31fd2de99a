package guest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-aleph/go-aleph/crn/protocol"
)

//go:embed loading.html
var loadingPage []byte

// EventPath is where event ("aleph.message") scopes are POSTed.
const EventPath = "/__aleph_message__"

// ErrProgramExited means the program is no longer running.
var ErrProgramExited = errors.New("program exited")

// app is the running program and the HTTP client that reaches it.
type app struct {
	log    *slog.Logger
	pid    int
	exited chan struct{}
	err    error // valid once exited is closed
	client *http.Client
	host   string // URL host for requests
	retry  RetryPolicy
	reqTO  time.Duration

	stopOnce sync.Once
}

func (a *Agent) newApp(cmd *exec.Cmd, dial func(ctx context.Context) (net.Conn, error), host string) (*app, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done, err := a.o.Processes.Start(cmd)
	if err != nil {
		return nil, err
	}
	p := &app{
		log:    a.log,
		pid:    cmd.Process.Pid,
		exited: make(chan struct{}),
		host:   host,
		retry:  a.o.Retry,
		reqTO:  a.o.RequestTimeout,
	}
	p.client = &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				ctx, cancel := context.WithTimeout(ctx, p.retry.AttemptTimeout)
				defer cancel()
				return dial(ctx)
			},
			DisableCompression:    true, // pass bodies through as the program sent them
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       time.Minute,
			ResponseHeaderTimeout: 0,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	go func() {
		p.err = <-done
		if p.err == nil {
			p.err = errors.New("exit status 0")
		}
		p.log.Warn("program exited", "pid", p.pid, "status", p.err)
		close(p.exited)
	}()
	a.log.Info("program started", "pid", p.pid, "path", cmd.Path)
	return p, nil
}

func (a *Agent) startExecutable(path string, env []string) (*app, error) {
	cmd := &exec.Cmd{Path: path, Args: []string{path}, Dir: a.o.CodeDir, Env: env,
		Stdout: a.o.Console, Stderr: a.o.Console}
	var d net.Dialer
	addr := a.o.AppAddr
	return a.newApp(cmd, func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}, addr)
}

// ErrNoPython means the runtime lacks python3 or uvicorn for an asgi program.
var ErrNoPython = errors.New("asgi needs python3 with uvicorn in the runtime")

func (a *Agent) startASGI(ctx context.Context, module string, env []string) (*app, error) {
	python, err := exec.LookPath(a.o.Python)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPython, err)
	}
	out, err := runCommand(ctx, a.o.Processes, a.o.StartTimeout, env, python, "-c", "import uvicorn")
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %s", ErrNoPython, err, bytes.TrimSpace(out))
	}
	if fi, err := os.Stat(a.o.PackagesDir); err == nil && fi.IsDir() {
		env = append(env, "PYTHONPATH="+a.o.PackagesDir+pythonPathTail(env))
	}
	_ = os.Remove(a.o.AppSocket)
	stderr := &tailWriter{max: 4096}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	cmd := &exec.Cmd{Path: python,
		Args: []string{python, "-m", "uvicorn", "--app-dir", a.o.CodeDir, "--uds", a.o.AppSocket, module},
		Dir:  a.o.CodeDir, Env: env, Stdout: a.o.Console, Stderr: pw}
	sock := a.o.AppSocket
	var d net.Dialer
	p, err := a.newApp(cmd, func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "unix", sock)
	}, "localhost")
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	// Copy uvicorn's stderr to the console, keeping its tail for errors.
	go func() {
		defer pr.Close()
		_, _ = io.Copy(io.MultiWriter(a.o.Console, stderr), pr)
	}()
	if err := p.awaitListening(ctx, a.o.StartTimeout); err != nil {
		p.stop(a.o.StopTimeout)
		return nil, fmt.Errorf("start asgi app %s: %w: %s", module, err, stderr.String())
	}
	return p, nil
}

func pythonPathTail(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PYTHONPATH="); ok && v != "" {
			return ":" + v
		}
	}
	return ""
}

// awaitListening polls until the program accepts a connection: nothing
// signals readiness, and a program that exits first is an error.
func (p *app) awaitListening(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	dial := p.client.Transport.(*http.Transport).DialContext
	for {
		conn, err := dial(ctx, "", "")
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v", ErrProgramExited, p.err)
		case <-ctx.Done():
			return fmt.Errorf("not listening after %s", timeout)
		case <-tick.C:
		}
	}
}

// exitGrace is how long a failed proxy waits for the program's exit to be
// seen, to tell a dead program (502 and restart) from a bad answer.
const exitGrace = 300 * time.Millisecond

// handle proxies one scope. An error means the program has exited (no
// result: the host answers 502); proxy failures are error results.
func (p *app) handle(ctx context.Context, s *protocol.Scope) (*protocol.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, p.reqTO)
	defer cancel()
	for attempt := range p.retry.Attempts {
		if err := p.exitErr(); err != nil {
			return nil, err
		}
		req, err := p.request(ctx, s)
		if err != nil {
			return errorResult(err), nil
		}
		resp, err := p.client.Do(req)
		if err == nil {
			defer resp.Body.Close()
			return responseResult(resp)
		}
		if !isDialError(err) {
			// A program killed mid-request (OOM, crash) breaks the
			// connection a moment before the reaper sees it exit.
			t := time.NewTimer(exitGrace)
			select {
			case <-p.exited:
			case <-t.C:
			}
			t.Stop()
			if xerr := p.exitErr(); xerr != nil {
				return nil, xerr
			}
			return errorResult(fmt.Errorf("proxy to program: %w", err)), nil
		}
		// Programs usually listen within milliseconds: poll fast first,
		// then back off linearly as aleph-vm does.
		wait := min(5*time.Millisecond<<min(attempt, 10), time.Duration(attempt+1)*p.retry.Backoff)
		select {
		case <-p.exited:
		case <-ctx.Done():
			return errorResult(fmt.Errorf("program not listening: %w", ctx.Err())), nil
		case <-time.After(wait):
		}
	}
	if err := p.exitErr(); err != nil {
		return nil, err
	}
	return &protocol.Result{
		Status:  http.StatusServiceUnavailable,
		Headers: [][2][]byte{{[]byte("content-type"), []byte("text/html; charset=utf-8")}},
		Body:    loadingPage,
	}, nil
}

func (p *app) exitErr() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%w: %v", ErrProgramExited, p.err)
	default:
		return nil
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (p *app) request(ctx context.Context, s *protocol.Scope) (*http.Request, error) {
	method, path, body := s.Method, s.Path, s.Body
	if s.Type == protocol.ScopeMessage {
		method, path = http.MethodPost, EventPath
	}
	u := &url.URL{Scheme: "http", Host: p.host, Path: path, RawQuery: s.QueryString}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request %s %q: %w", method, path, err)
	}
	req.ContentLength = int64(len(body))
	if len(body) == 0 && method != http.MethodPost && method != http.MethodPut && method != http.MethodPatch {
		req.Body = http.NoBody
	}
	for _, h := range s.Headers {
		name := string(h[0])
		switch strings.ToLower(name) {
		case "host":
			req.Host = string(h[1])
		case "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer":
		default:
			req.Header.Add(name, string(h[1]))
		}
	}
	if s.Type == protocol.ScopeMessage {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Aleph-Event", "message")
	}
	return req, nil
}

// maxBody leaves room in protocol.MaxResult for headers and framing.
const maxBody = protocol.MaxResult - 1<<20

func responseResult(resp *http.Response) (*protocol.Result, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return errorResult(fmt.Errorf("read program response: %w", err)), nil
	}
	if len(body) > maxBody {
		return errorResult(fmt.Errorf("program response over %d bytes", maxBody)), nil
	}
	res := &protocol.Result{Status: resp.StatusCode, Body: body}
	for name, values := range resp.Header {
		lname := []byte(strings.ToLower(name))
		for _, v := range values {
			res.Headers = append(res.Headers, [2][]byte{lname, []byte(v)})
		}
	}
	return res, nil
}

// stop sends SIGTERM to the program's process group, then SIGKILL after
// grace, and waits for the exit.
func (p *app) stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		p.client.CloseIdleConnections()
		select {
		case <-p.exited:
			return
		default:
		}
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			p.log.Warn("program ignored SIGTERM; killing", "pid", p.pid)
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			<-p.exited
		}
		// Stragglers of the group that outlived their leader.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	})
}

// runCommand runs argv to completion through procs and returns its
// combined output (bounded).
func runCommand(ctx context.Context, procs Processes, timeout time.Duration, env []string, path string, args ...string) ([]byte, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: append([]string{path}, args...), Env: env, Stdout: pw, Stderr: pw,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	done, err := procs.Start(cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	pid := cmd.Process.Pid
	out := make(chan []byte, 1)
	go func() {
		defer pr.Close()
		b, _ := io.ReadAll(io.LimitReader(pr, 1<<20))
		_, _ = io.Copy(io.Discard, pr)
		out <- b
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		err = ctx.Err()
	case <-t.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("%s timed out after %s", path, timeout)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // grandchildren holding the pipe
	return <-out, err
}

func runShell(ctx context.Context, procs Processes, command string, timeout time.Duration) ([]byte, error) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, fmt.Errorf("debug shell: %w", err)
	}
	return runCommand(ctx, procs, timeout, os.Environ(), sh, "-c", command)
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append([]byte(nil), w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.TrimSpace(w.b))
}
