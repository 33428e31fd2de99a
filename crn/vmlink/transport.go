package vmlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/go-aleph/go-aleph/crn/protocol"
)

// HostTransport is protocol.Transport over a link: the ready signal arrives
// on a guest stream to port 52, and each request opens a stream to the
// guest's port 52.
type HostTransport struct {
	s     *Session
	ready net.Listener
	once  sync.Once
}

var _ protocol.Transport = (*HostTransport)(nil)

// NewHostTransport listens for the ready signal on s.
func NewHostTransport(s *Session) (*HostTransport, error) {
	ln, err := s.Listen(PortControl)
	if err != nil {
		return nil, err
	}
	return &HostTransport{s: s, ready: ln}, nil
}

// AwaitReady implements protocol.Transport.
func (t *HostTransport) AwaitReady(ctx context.Context) (string, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := t.ready.Accept()
		ch <- res{c, err}
	}()
	var r res
	var cause error
	select {
	case r = <-ch:
	case <-ctx.Done():
		cause = ctx.Err()
	case <-t.s.Done():
		cause = ErrClosed
	}
	if cause != nil {
		t.Close() // unblocks Accept
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
		return "", fmt.Errorf("await ready: %w", cause)
	}
	if r.err != nil {
		return "", fmt.Errorf("await ready: %w", r.err)
	}
	defer r.c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = r.c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { r.c.Close() })
	defer stop()
	b, err := io.ReadAll(io.LimitReader(r.c, protocol.MaxReady))
	if err != nil {
		return "", fmt.Errorf("read ready: %w", err)
	}
	return protocol.DecodeReady(b)
}

// Dial implements protocol.Transport.
func (t *HostTransport) Dial(ctx context.Context) (net.Conn, error) {
	return t.s.Dial(ctx, PortControl)
}

// Close stops listening for the ready signal; the session stays up.
func (t *HostTransport) Close() error {
	t.once.Do(func() { t.ready.Close() })
	return nil
}

// GuestTransport is protocol.GuestTransport over a link, for aleph-init.
type GuestTransport struct {
	S *Session
}

var _ protocol.GuestTransport = GuestTransport{}

// DialReady implements protocol.GuestTransport.
func (g GuestTransport) DialReady(ctx context.Context) (net.Conn, error) {
	return g.S.Dial(ctx, PortControl)
}

// Listen implements protocol.GuestTransport.
func (g GuestTransport) Listen() (net.Listener, error) {
	return g.S.Listen(PortControl)
}

// Forward accepts connections on ln (the guest's API socket) and splices
// each to a new stream to the host's port, as aleph-vm's socat does. It
// returns when ln is closed or ctx ends.
func Forward(ctx context.Context, ln net.Listener, s *Session, port uint32) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("forward port %d: %w", port, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			up, err := s.Dial(ctx, port)
			if err != nil {
				return
			}
			defer up.Close()
			splice(c, up)
		}()
	}
}

// splice copies both ways until both directions are done, half-closing
// as each side finishes so request/response protocols see EOF.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	go half(a, b)
	go half(b, a)
	wg.Wait()
}
