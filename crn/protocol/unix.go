package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// Socket names inside the directory shared by host and sandbox.
const (
	ReadySocket   = "ready.sock"
	ControlSocket = "control.sock"
)

// UnixTransport is the host side over two Unix sockets in one directory that
// the host creates and bind-mounts into the sandbox: the host listens on
// ready.sock, the guest listens on control.sock.
type UnixTransport struct {
	dir   string
	ln    *net.UnixListener
	once  sync.Once
	dialr net.Dialer
}

var _ Transport = (*UnixTransport)(nil)

// ListenUnix creates dir (0700) if needed and listens on dir/ready.sock.
func ListenUnix(dir string) (*UnixTransport, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create socket dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, ReadySocket)
	_ = os.Remove(path) // a stale socket from a previous run
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return &UnixTransport{dir: dir, ln: ln}, nil
}

// Dir is the directory holding the sockets.
func (t *UnixTransport) Dir() string { return t.dir }

// AwaitReady accepts the guest's ready connection and decodes its payload.
// Connections carrying garbage are an error, not skipped: the sandbox is ours.
func (t *UnixTransport) AwaitReady(ctx context.Context) (string, error) {
	stop := context.AfterFunc(ctx, func() { _ = t.ln.SetDeadline(aLongTimeAgo) })
	defer stop()
	conn, err := t.ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("await ready: %w", ctx.Err())
		}
		return "", fmt.Errorf("await ready: %w", err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stopConn()
	b, err := io.ReadAll(io.LimitReader(conn, MaxReady))
	if err != nil {
		return "", fmt.Errorf("read ready: %w", err)
	}
	return DecodeReady(b)
}

// Dial connects to the guest's control socket.
func (t *UnixTransport) Dial(ctx context.Context) (net.Conn, error) {
	return t.dialr.DialContext(ctx, "unix", filepath.Join(t.dir, ControlSocket))
}

// Close stops listening for the ready signal.
func (t *UnixTransport) Close() error {
	var err error
	t.once.Do(func() {
		err = t.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

// UnixGuestTransport is the guest side of UnixTransport: Dir is where the
// host's directory is mounted in the sandbox (default /run/aleph).
type UnixGuestTransport struct {
	Dir string
}

var _ GuestTransport = UnixGuestTransport{}

// DialReady connects to dir/ready.sock.
func (g UnixGuestTransport) DialReady(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", filepath.Join(g.Dir, ReadySocket))
}

// Listen listens on dir/control.sock, replacing a stale socket file.
func (g UnixGuestTransport) Listen() (net.Listener, error) {
	path := filepath.Join(g.Dir, ControlSocket)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return ln, nil
}
