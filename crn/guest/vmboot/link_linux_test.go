package vmboot

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOpenSerial(t *testing.T) {
	f := newFakeSys(t, "name")
	f.add("vport0p0", "", false)
	f.add("vport0p1", PortName, false)
	// A FIFO is a real pollable node, like the port's character device.
	if err := unix.Mkfifo(filepath.Join(f.dev, "vport0p1"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := OpenSerial(ctxTimeout(t, 5*time.Second), f.class, f.dev, PortName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	if n, err := file.Read(b); err != nil || string(b[:n]) != "x" {
		t.Fatalf("read back %q, %v", b[:n], err)
	}
	// The vmlink reader blocks in Read; Close must end it (halt, link death).
	done := make(chan error, 1)
	go func() {
		_, err := file.Read(b)
		done <- err
	}()
	time.AfterFunc(50*time.Millisecond, func() { file.Close() })
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not interrupt Read")
	}

	if _, err := OpenSerial(ctxTimeout(t, 50*time.Millisecond), f.class, f.dev, "org.none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing port: %v", err)
	}
}

func TestDialVsockFails(t *testing.T) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("no AF_VSOCK here: %v", err)
	}
	unix.Close(fd)
	// Nobody listens on the local CID: refused, reset, or the deadline;
	// never a hang past the context.
	start := time.Now()
	f, err := DialVsock(ctxTimeout(t, 300*time.Millisecond), unix.VMADDR_CID_LOCAL, 4242)
	if err == nil {
		f.Close()
		t.Skip("something listens on vsock port 4242")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("DialVsock took %v: %v", d, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, unix.ECONNRESET) &&
		!errors.Is(err, unix.ECONNREFUSED) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("DialVsock = %v, want refused, reset, no device or the deadline", err)
	}
	t.Logf("DialVsock: %v", err)
}

func TestOpenLinkNone(t *testing.T) {
	_, err := OpenLink(ctxTimeout(t, time.Second), Link{}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrBadCmdline) {
		t.Fatalf("OpenLink(none) = %v", err)
	}
}
