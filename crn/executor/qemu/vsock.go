package qemu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/mdlayher/vsock"
)

// vhostVsock is the host device qemu's vhost-vsock-device needs.
const vhostVsock = "/dev/vhost-vsock"

// haveVsock reports whether VMs can get a vsock device here.
func haveVsock() bool {
	f, err := os.OpenFile(vhostVsock, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// vsockHub is the host's one vsock listener: every VM's aleph-init dials
// it once at boot and the hub hands the connection to the VM's execution
// by the caller's context id (CID).
type vsockHub struct {
	port uint32
	log  *slog.Logger

	mu      sync.Mutex
	ln      net.Listener
	waiting map[uint32]chan net.Conn
	nextCID uint32
}

func newVsockHub(port uint32, log *slog.Logger) *vsockHub {
	return &vsockHub{port: port, log: log, waiting: map[uint32]chan net.Conn{}, nextCID: 3}
}

// register reserves a CID and returns where its connection will arrive.
func (h *vsockHub) register() (uint32, <-chan net.Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln == nil {
		ln, err := vsock.Listen(h.port, nil)
		if err != nil {
			return 0, nil, fmt.Errorf("vsock listen on port %d: %w", h.port, err)
		}
		h.ln = ln
		go h.accept(ln)
	}
	for range 1 << 16 {
		cid := h.nextCID
		h.nextCID++
		if h.nextCID == 0 || h.nextCID >= 1<<31 {
			h.nextCID = 3
		}
		if _, used := h.waiting[cid]; !used {
			ch := make(chan net.Conn, 1)
			h.waiting[cid] = ch
			return cid, ch, nil
		}
	}
	return 0, nil, errors.New("vsock: no free context id")
}

// release forgets cid; a connection that arrived and was not taken is closed.
func (h *vsockHub) release(cid uint32) {
	h.mu.Lock()
	ch := h.waiting[cid]
	delete(h.waiting, cid)
	h.mu.Unlock()
	if ch != nil {
		select {
		case c := <-ch:
			c.Close()
		default:
		}
	}
}

func (h *vsockHub) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		a, ok := c.RemoteAddr().(*vsock.Addr)
		h.mu.Lock()
		var ch chan net.Conn
		if ok {
			ch = h.waiting[a.ContextID]
		}
		h.mu.Unlock()
		if ch == nil {
			h.log.Warn("vsock: connection from an unknown vm", "addr", c.RemoteAddr())
			c.Close()
			continue
		}
		select {
		case ch <- c:
		default: // a second connection from the same VM
			c.Close()
		}
	}
}

// await waits for cid's connection.
func (h *vsockHub) await(ctx context.Context, ch <-chan net.Conn) (net.Conn, error) {
	select {
	case c := <-ch:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *vsockHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln != nil {
		h.ln.Close()
		h.ln = nil
	}
}
