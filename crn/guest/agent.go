// Package guest is aleph-init's logic: the guest side of aleph-vm's v2
// protocol (crn-compute.md §2.3) inside a sandbox or VM.
//
// aleph-init listens on its GuestTransport, sends the ready signal, and then
// serves one connection at a time per payload, dispatching on the first byte:
// a decimal digit starts the configuration ("<len>\n" + msgpack), "halt" stops
// the program and answers "STOP\n" then "STOPZ\n", "!" is the debug shell
// (refused unless Options.DebugShell), anything else is a msgpack
// {"scope": …} request decoded from the stream (EOF is never awaited).
//
// Choices where a sandbox differs from aleph-vm's init1.py:
//   - In a sandbox, volumes, the squashfs code and the network are set up by
//     the host: SandboxMounter only checks the mount points and ip/route are
//     ignored. In a VM, the Mounter mounts /dev/<device> and
//     Options.ConfigureNetwork sets up eth0 (package vmboot).
//     authorized_keys is ignored.
//   - asgi runs the app with uvicorn on a Unix socket and proxies to it like
//     executable. uvicorn cannot deliver an "aleph.message" scope, so event
//     scopes reach both interfaces as POST /__aleph_message__ with the
//     message JSON as body, content-type application/json and
//     x-aleph-event: message.
//   - If the program has exited when a request arrives, the connection is
//     closed without a result: the host sees protocol.ErrNoResponse (502)
//     and restarts the execution. Other proxy failures are error results.
//   - output_data is always empty (aleph-vm's host ignores it).
//   - "--uds" plus SIGTERM replaces ASGI lifespan shutdown: uvicorn runs the
//     app's lifespan itself.
package guest

import (
	"bufio"
	"context"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// Defaults for Options.
const (
	DefaultDir       = "/run/aleph"
	DefaultAPISocket = "/run/aleph/api.sock"
	DefaultAppSocket = "/run/aleph/app.sock"
	DefaultCodeDir   = "/opt/code"
	DefaultDataDir   = "/data"
	DefaultPackages  = "/opt/packages"
	DefaultAppAddr   = "127.0.0.1:8080"
)

// RetryPolicy is the executable proxy's wait for the program to listen
// (aleph-vm: 5 s per attempt, 60 attempts, attempt × 50 ms back-off).
type RetryPolicy struct {
	AttemptTimeout time.Duration
	Attempts       int
	Backoff        time.Duration
}

// Options configure an Agent. Zero values take the defaults above.
type Options struct {
	Transport protocol.GuestTransport
	Logger    *slog.Logger
	// Console receives the program's stdout and stderr; default os.Stdout.
	Console *os.File
	// Processes starts children; default DirectProcesses (a Reaper as PID 1).
	Processes Processes
	// Mounter prepares volumes and squashfs code; default SandboxMounter{}.
	Mounter Mounter
	// ConfigureNetwork, if set, applies the configuration's ip, route and
	// ipv6 (a VM); nil leaves the network to the host (a sandbox). Its
	// error fails the configuration.
	ConfigureNetwork func(ctx context.Context, cfg *protocol.Configuration) error
	// SetHostname sets the hostname; nil skips it (not permitted here).
	SetHostname func(name string) error
	// ResolvConf, if set, is where the configuration's DNS servers are
	// written (the host sets up the network, not the resolver).
	ResolvConf string
	// Sync flushes filesystems on halt; nil skips it.
	Sync func()
	// Env is the base environment of the program; default os.Environ().
	Env []string

	CodeDir     string
	DataDir     string
	PackagesDir string
	APISocket   string // the guest API socket announced in ALEPH_API_UNIX_SOCKET
	AppSocket   string // where uvicorn listens (asgi)
	AppAddr     string // where an executable listens
	Python      string // default "python3" from PATH

	Retry RetryPolicy
	// StartTimeout bounds the asgi server's startup; default 30 s.
	StartTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL; default 10 s.
	StopTimeout time.Duration
	// ReadTimeout bounds reading one payload from the host; default 60 s.
	ReadTimeout time.Duration
	// RequestTimeout bounds one proxied request; default 10 min (the host
	// enforces resources.seconds and closes the connection first).
	RequestTimeout time.Duration
	Zip            ZipLimits
	DebugShell     bool
}

func (o Options) withDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defd := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Transport == nil {
		o.Transport = protocol.UnixGuestTransport{Dir: DefaultDir}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Console == nil {
		o.Console = os.Stdout
	}
	if o.Processes == nil {
		o.Processes = DirectProcesses{}
	}
	if o.Mounter == nil {
		o.Mounter = SandboxMounter{}
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	def(&o.CodeDir, DefaultCodeDir)
	def(&o.DataDir, DefaultDataDir)
	def(&o.PackagesDir, DefaultPackages)
	def(&o.APISocket, DefaultAPISocket)
	def(&o.AppSocket, DefaultAppSocket)
	def(&o.AppAddr, DefaultAppAddr)
	def(&o.Python, "python3")
	defd(&o.Retry.AttemptTimeout, 5*time.Second)
	defd(&o.Retry.Backoff, 50*time.Millisecond)
	if o.Retry.Attempts <= 0 {
		o.Retry.Attempts = 60
	}
	defd(&o.StartTimeout, 30*time.Second)
	defd(&o.StopTimeout, 10*time.Second)
	defd(&o.ReadTimeout, 60*time.Second)
	defd(&o.RequestTimeout, 10*time.Minute)
	return o
}

// Agent is one aleph-init: configured once, then serving requests until halt.
type Agent struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	cfg    *protocol.Configuration
	app    *app
	halted bool
}

// New returns an agent.
func New(o Options) *Agent {
	o = o.withDefaults()
	return &Agent{o: o, log: o.Logger}
}

// errHalt is the cause Run cancels with when a halt was served.
var errHalt = errors.New("halt")

// Run listens, sends the ready signal and serves connections until a halt
// (nil) or ctx ends (the program is stopped either way).
func (a *Agent) Run(ctx context.Context) error {
	ln, err := a.o.Transport.Listen()
	if err != nil {
		return fmt.Errorf("listen for host: %w", err)
	}
	defer ln.Close()
	if err := a.sendReady(ctx); err != nil {
		return err
	}
	a.log.Info("ready", "version", protocol.Version)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if a.serve(ctx, conn) {
				cancel(errHalt)
			}
		}()
	}
	if errors.Is(context.Cause(ctx), errHalt) {
		return nil
	}
	a.stopApp()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("control listener closed")
}

func (a *Agent) sendReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.o.ReadTimeout)
	defer cancel()
	conn, err := a.o.Transport.DialReady(ctx)
	if err != nil {
		return fmt.Errorf("dial host ready: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write(protocol.EncodeReady(protocol.Version)); err != nil {
		return fmt.Errorf("send ready: %w", err)
	}
	return nil
}

// serve handles one connection and reports whether it was a halt.
func (a *Agent) serve(ctx context.Context, conn net.Conn) (halt bool) {
	_ = conn.SetReadDeadline(time.Now().Add(a.o.ReadTimeout))
	br := bufio.NewReader(conn)
	first, err := br.Peek(1)
	if err != nil {
		a.log.Debug("empty connection", "err", err)
		return false
	}
	switch c := first[0]; {
	case c >= '0' && c <= '9':
		a.serveConfiguration(ctx, conn, br)
	case c == protocol.ShellPrefix:
		a.serveShell(ctx, conn, br)
	case c == protocol.HaltCommand[0]:
		word, err := br.Peek(len(protocol.HaltCommand))
		if err != nil || string(word) != protocol.HaltCommand {
			a.log.Warn("bad payload", "start", fmt.Sprintf("%q", word))
			return false
		}
		a.serveHalt(conn)
		return true
	default:
		a.serveRequest(ctx, conn, br)
	}
	return false
}

func (a *Agent) serveConfiguration(ctx context.Context, conn net.Conn, br *bufio.Reader) {
	ack := protocol.ConfigAck{Success: true}
	if err := a.readAndConfigure(ctx, br); err != nil {
		a.log.Error("configuration failed", "err", err)
		ack = protocol.ConfigAck{Error: err.Error(), Traceback: "aleph-init: " + err.Error()}
	} else {
		a.log.Info("configured")
	}
	_ = conn.SetWriteDeadline(time.Now().Add(a.o.ReadTimeout))
	if _, err := conn.Write(protocol.EncodeConfigAck(ack)); err != nil {
		a.log.Warn("send configuration ack", "err", err)
	}
}

func (a *Agent) readAndConfigure(ctx context.Context, br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("read configuration length: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil || n <= 0 || n > protocol.MaxConfiguration {
		return fmt.Errorf("bad configuration length %q", strings.TrimSpace(string(line)))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return fmt.Errorf("read configuration (%d bytes): %w", n, err)
	}
	cfg, err := protocol.DecodeConfiguration(body)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg != nil {
		return errors.New("already configured")
	}
	if a.halted {
		return errors.New("halted")
	}
	app, err := a.configure(ctx, cfg)
	if err != nil {
		return err
	}
	a.cfg, a.app = cfg, app
	return nil
}

func (a *Agent) serveRequest(ctx context.Context, conn net.Conn, br *bufio.Reader) {
	scope, err := protocol.DecodeRequest(msgpack.NewDecoder(io.LimitReader(br, protocol.MaxRequest)))
	var res *protocol.Result
	if err != nil {
		res = errorResult(fmt.Errorf("read request: %w", err))
	} else {
		_ = conn.SetReadDeadline(time.Time{})
		a.mu.Lock()
		app := a.app
		a.mu.Unlock()
		if app == nil {
			res = errorResult(errors.New("not configured"))
		} else {
			res, err = app.handle(ctx, scope)
			if err != nil {
				// The program is gone: no result, so the host answers 502.
				a.log.Error("request dropped", "path", scope.Path, "err", err)
				return
			}
		}
	}
	b, err := protocol.EncodeResult(res)
	if err != nil {
		b, _ = protocol.EncodeResult(errorResult(err))
	}
	_ = conn.SetWriteDeadline(time.Now().Add(a.o.ReadTimeout))
	if _, err := conn.Write(b); err != nil {
		a.log.Warn("send result", "err", err)
	}
}

func errorResult(err error) *protocol.Result {
	return &protocol.Result{Error: err.Error(), Traceback: "aleph-init: " + err.Error()}
}

func (a *Agent) serveHalt(conn net.Conn) {
	a.log.Info("halt")
	a.stopApp()
	if a.o.Sync != nil {
		a.o.Sync()
	}
	_ = conn.SetWriteDeadline(time.Now().Add(a.o.ReadTimeout))
	_, _ = io.WriteString(conn, protocol.StopLine)
	_, _ = io.WriteString(conn, protocol.StopzLine)
}

func (a *Agent) stopApp() {
	a.mu.Lock()
	app := a.app
	a.halted = true
	a.mu.Unlock()
	if app != nil {
		app.stop(a.o.StopTimeout)
	}
}

func (a *Agent) serveShell(ctx context.Context, conn net.Conn, br *bufio.Reader) {
	_ = conn.SetWriteDeadline(time.Now().Add(a.o.ReadTimeout))
	if !a.o.DebugShell {
		a.log.Warn("debug shell refused")
		_, _ = io.WriteString(conn, "debug shell disabled\n")
		return
	}
	// Like init1.py, one read: whatever arrived with the first bytes.
	cmdline := make([]byte, br.Buffered())
	_, _ = io.ReadFull(br, cmdline)
	out, err := runShell(ctx, a.o.Processes, string(cmdline[1:]), a.o.RequestTimeout)
	if err != nil {
		out = append(out, []byte("\n"+err.Error()+"\n")...)
	}
	_, _ = conn.Write(out)
}

// Hostname is aleph-vm's guest hostname: the lower-case, unpadded base32 of
// the 32 bytes of the item hash (52 characters).
func Hostname(vmHash string) (string, error) {
	raw, err := hex.DecodeString(vmHash)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("vm_hash %q is not 32 hex bytes", vmHash)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)), nil
}
