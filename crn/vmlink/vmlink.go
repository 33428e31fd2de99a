// Package vmlink carries the streams between the compute node and a
// microVM's aleph-init over one byte stream: a virtio-serial port (QEMU
// without vhost-vsock, as on our build machines) or a single vsock
// connection. Streams are multiplexed with yamux and addressed by aleph-vm's
// vsock port numbers, so the protocol above (package protocol) sees the
// same connections Firecracker's vsock would give it:
//
//   - host → guest port 52: aleph-init's control listener (configure, run, halt);
//   - guest → host port 52: the ready signal;
//   - guest → host port 53: the guest API.
//
// The opener of a stream writes "CONNECT <port>\n" first, as Firecracker's
// host side does; nothing is written back.
package vmlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// aleph-vm's vsock ports.
const (
	PortControl uint32 = 52
	PortAPI     uint32 = 53
)

// Errors.
var (
	ErrClosed    = errors.New("vm link closed")
	ErrBadHeader = errors.New("bad stream header")
	ErrNoPort    = errors.New("nobody listens on that port")
)

// headerTimeout bounds how long an accepted stream may take to name its port.
const headerTimeout = 10 * time.Second

// maxHeader is the longest valid header: "CONNECT 4294967295\n".
const maxHeader = 19

// Session multiplexes port-addressed streams over one connection.
type Session struct {
	ys  *yamux.Session
	log *slog.Logger

	mu        sync.Mutex
	listeners map[uint32]*listener
	done      chan struct{}
	closeOnce sync.Once
}

// Host starts the host end of a link over conn (the yamux client).
func Host(conn io.ReadWriteCloser, log *slog.Logger) (*Session, error) {
	return start(conn, log, true)
}

// Guest starts the guest end of a link over conn (the yamux server).
func Guest(conn io.ReadWriteCloser, log *slog.Logger) (*Session, error) {
	return start(conn, log, false)
}

func start(conn io.ReadWriteCloser, log *slog.Logger, client bool) (*Session, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := yamux.DefaultConfig()
	// The VM's death is seen by its process ending; a guest under TCG can be
	// slow enough to miss keepalives for no reason.
	cfg.EnableKeepAlive = false
	cfg.LogOutput = io.Discard
	cfg.StreamOpenTimeout = 30 * time.Second
	var ys *yamux.Session
	var err error
	if client {
		ys, err = yamux.Client(conn, cfg)
	} else {
		ys, err = yamux.Server(conn, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("start vm link: %w", err)
	}
	s := &Session{ys: ys, log: log, listeners: map[uint32]*listener{}, done: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

// Done is closed when the link is down.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close tears the link down; every stream and listener fails.
func (s *Session) Close() error {
	err := s.ys.Close()
	s.shutdown()
	return err
}

func (s *Session) shutdown() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		for _, l := range s.listeners {
			l.closeLocked()
		}
		s.mu.Unlock()
		close(s.done)
	})
}

// Dial opens a stream to the peer's port.
func (s *Session) Dial(ctx context.Context, port uint32) (net.Conn, error) {
	type res struct {
		st  *yamux.Stream
		err error
	}
	ch := make(chan res, 1)
	go func() {
		st, err := s.ys.OpenStream()
		ch <- res{st, err}
	}()
	var r res
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.st != nil {
				r.st.Close()
			}
		}()
		return nil, fmt.Errorf("dial port %d: %w", port, ctx.Err())
	}
	if r.err != nil {
		if errors.Is(r.err, yamux.ErrSessionShutdown) {
			return nil, fmt.Errorf("dial port %d: %w", port, ErrClosed)
		}
		return nil, fmt.Errorf("dial port %d: %w", port, r.err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = r.st.SetWriteDeadline(d)
	}
	if _, err := io.WriteString(r.st, "CONNECT "+strconv.FormatUint(uint64(port), 10)+"\n"); err != nil {
		r.st.Close()
		return nil, fmt.Errorf("dial port %d: %w", port, err)
	}
	_ = r.st.SetWriteDeadline(time.Time{})
	return r.st, nil
}

// Listen returns the listener of streams the peer opens to port.
func (s *Session) Listen(port uint32) (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return nil, ErrClosed
	default:
	}
	if _, dup := s.listeners[port]; dup {
		return nil, fmt.Errorf("listen port %d: already listening", port)
	}
	l := &listener{s: s, port: port, ch: make(chan net.Conn, 16), closed: make(chan struct{})}
	s.listeners[port] = l
	return l, nil
}

func (s *Session) acceptLoop() {
	defer s.shutdown()
	for {
		st, err := s.ys.AcceptStream()
		if err != nil {
			s.log.Debug("vm link down", "err", err)
			return
		}
		go s.route(st)
	}
}

// route reads the stream's header and hands it to the port's listener.
func (s *Session) route(st *yamux.Stream) {
	_ = st.SetReadDeadline(time.Now().Add(headerTimeout))
	port, err := readHeader(st)
	_ = st.SetReadDeadline(time.Time{})
	if err != nil {
		s.log.Warn("vm link: dropped stream", "err", err)
		st.Close()
		return
	}
	s.mu.Lock()
	l := s.listeners[port]
	s.mu.Unlock()
	if l == nil || !l.deliver(st) {
		s.log.Debug("vm link: no listener", "port", port)
		st.Close()
	}
}

// readHeader reads "CONNECT <port>\n" byte by byte, so that nothing after
// it is consumed.
func readHeader(r io.Reader) (uint32, error) {
	var buf [maxHeader]byte
	n := 0
	for {
		if n == len(buf) {
			return 0, fmt.Errorf("%w: longer than %d bytes", ErrBadHeader, maxHeader)
		}
		if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
		if buf[n] == '\n' {
			break
		}
		n++
	}
	return ParseHeader(string(buf[:n]))
}

// ParseHeader parses "CONNECT <port>" (without the newline).
func ParseHeader(line string) (uint32, error) {
	rest, ok := cutPrefix(line, "CONNECT ")
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrBadHeader, line)
	}
	p, err := strconv.ParseUint(rest, 10, 32)
	if err != nil || (len(rest) > 1 && rest[0] == '0') {
		return 0, fmt.Errorf("%w: port %q", ErrBadHeader, rest)
	}
	return uint32(p), nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return s, false
	}
	return s[len(p):], true
}

type listener struct {
	s      *Session
	port   uint32
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *listener) deliver(c net.Conn) bool {
	select {
	case <-l.closed:
		return false
	default:
	}
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops the listener; streams to its port are refused afterwards.
func (l *listener) Close() error {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	l.closeLocked()
	return nil
}

func (l *listener) closeLocked() {
	l.once.Do(func() {
		close(l.closed)
		if l.s.listeners[l.port] == l {
			delete(l.s.listeners, l.port)
		}
		// Streams queued but never accepted.
		for {
			select {
			case c := <-l.ch:
				c.Close()
			default:
				return
			}
		}
	})
}

func (l *listener) Addr() net.Addr { return Addr(l.port) }

// Addr is a link port as a net.Addr.
type Addr uint32

// Network implements net.Addr.
func (Addr) Network() string { return "vmlink" }

func (a Addr) String() string { return "port " + strconv.FormatUint(uint64(a), 10) }
