package vmboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/go-aleph/go-aleph/crn/vmlink"
	"golang.org/x/sys/unix"
)

// HostCID is the vsock address of the host (VMADDR_CID_HOST).
const HostCID = 2

// OpenLink opens the host link l (serial port or vsock connection) and
// starts the guest end of a vmlink session over it. Closing the session
// closes the link.
func OpenLink(ctx context.Context, l Link, log *slog.Logger) (*vmlink.Session, error) {
	var f *os.File
	var err error
	switch l.Kind {
	case LinkSerial:
		f, err = OpenSerial(ctx, SysPorts, DevDir, PortName)
	case LinkVsock:
		f, err = DialVsock(ctx, HostCID, l.Port)
	default:
		return nil, fmt.Errorf("%w: no aleph.link", ErrBadCmdline)
	}
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", l, err)
	}
	s, err := vmlink.Guest(f, log)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("link %s: %w", l, err)
	}
	return s, nil
}

// OpenSerial waits for the virtio-serial port named name and opens it. The
// file is in the runtime poller, so Close interrupts a pending Read.
func OpenSerial(ctx context.Context, sysPortsDir, devDir, name string) (*os.File, error) {
	node, err := WaitPort(ctx, sysPortsDir, devDir, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// DialVsock connects a stream socket to cid:port. The socket is
// non-blocking and in the runtime poller, so Close interrupts a pending
// Read; ctx bounds the connection.
func DialVsock(ctx context.Context, cid, port uint32) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock socket: %w", err)
	}
	addr := "vsock:" + strconv.FormatUint(uint64(cid), 10) + ":" + strconv.FormatUint(uint64(port), 10)
	err = unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port})
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), addr)
	if err == nil {
		return f, nil
	}
	if err := awaitConnect(ctx, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	return f, nil
}

// awaitConnect waits for a non-blocking connect to finish.
func awaitConnect(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = err
			return true
		case v != 0:
			cerr = unix.Errno(v)
			return true
		}
		// SO_ERROR is 0 both while pending and once connected.
		if _, err := unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
			return false
		} else if err != nil {
			cerr = err
		}
		return true
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return context.DeadlineExceeded // the write deadline is ctx's
		}
		return err
	}
	if cerr != nil {
		return cerr
	}
	return f.SetWriteDeadline(time.Time{})
}
