package vmlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/protocol"
)

// pair links a host and a guest session over a real socketpair, the way a
// virtio-serial chardev carries them.
func pair(t *testing.T) (host, guest *Session) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Non-blocking, so that the runtime poller can interrupt reads on Close.
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	hf, gf := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "guest")
	host, err = Host(hf, nil)
	if err != nil {
		t.Fatal(err)
	}
	guest, err = Guest(gf, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(); guest.Close() })
	return host, guest
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestReadyAndControl(t *testing.T) {
	host, guest := pair(t)
	ctx := ctxT(t)
	ht, err := NewHostTransport(host)
	if err != nil {
		t.Fatal(err)
	}
	defer ht.Close()
	gt := GuestTransport{S: guest}
	ln, err := gt.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := gt.DialReady(ctx)
		if err != nil {
			return
		}
		c.Write(protocol.EncodeReady(protocol.Version))
		c.Close()
	}()
	v, err := ht.AwaitReady(ctx)
	if err != nil || v != protocol.Version {
		t.Fatalf("ready = %q, %v", v, err)
	}

	// Two concurrent control streams stay separate.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 5)
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				fmt.Fprintf(c, "echo:%s", b)
			}()
		}
	}()
	errs := make(chan error, 2)
	for _, msg := range []string{"aaaaa", "bbbbb"} {
		go func() {
			c, err := ht.Dial(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.Write([]byte(msg))
			b, err := io.ReadAll(c)
			if err == nil && string(b) != "echo:"+msg {
				err = fmt.Errorf("got %q for %q", b, msg)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestAwaitReadyEndsWithContextAndLink(t *testing.T) {
	host, _ := pair(t)
	ht, err := NewHostTransport(host)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ht.AwaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline", err)
	}

	host2, guest2 := pair(t)
	ht2, err := NewHostTransport(host2)
	if err != nil {
		t.Fatal(err)
	}
	guest2.Close() // the VM died
	if _, err := ht2.AwaitReady(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestUnknownPortAndBadHeaderAreDropped(t *testing.T) {
	host, guest := pair(t)
	ctx := ctxT(t)
	c, err := host.Dial(ctx, 9999) // nobody listens
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) {
		t.Logf("read: %v", err)
	}
	c.Close()

	// Garbage instead of a header: the stream is closed, the link lives on.
	st, err := host.ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	b, _ := io.ReadAll(st)
	if len(b) != 0 {
		t.Fatalf("garbage stream got %q", b)
	}
	ln, err := guest.Listen(7)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	c, err = host.Dial(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(c); string(b) != "ok" {
		t.Fatalf("after garbage: %q", b)
	}
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		port uint32
		ok   bool
	}{
		{"CONNECT 52", 52, true},
		{"CONNECT 0", 0, true},
		{"CONNECT 4294967295", 4294967295, true},
		{"CONNECT 4294967296", 0, false},
		{"CONNECT 052", 0, false},
		{"CONNECT -1", 0, false},
		{"CONNECT ", 0, false},
		{"connect 52", 0, false},
		{"", 0, false},
		{"CONNECT 52 53", 0, false},
	} {
		p, err := ParseHeader(tc.in)
		if (err == nil) != tc.ok || p != tc.port {
			t.Errorf("ParseHeader(%q) = %d, %v", tc.in, p, err)
		}
		if err != nil && !errors.Is(err, ErrBadHeader) {
			t.Errorf("ParseHeader(%q): %v is not ErrBadHeader", tc.in, err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{"CONNECT 52", "CONNECT 4294967295", "CONNECT x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseHeader(s)
		if err == nil && s != fmt.Sprintf("CONNECT %d", p) {
			t.Fatalf("%q parsed as %d", s, p)
		}
	})
}

// TestForwardGuestAPI: an HTTP client in the guest talks to the host's
// guest API through the guest's unix socket, as a program's SDK does.
func TestForwardGuestAPI(t *testing.T) {
	host, guest := pair(t)
	ctx := ctxT(t)
	apiLn, err := host.Listen(PortAPI)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})}
	go srv.Serve(apiLn)
	defer srv.Close()

	sock := filepath.Join(t.TempDir(), "api.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	go func() { fdone <- Forward(fctx, uln, guest, PortAPI) }()

	cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	for i := range 3 { // keep-alive and new connections both work
		resp, err := cl.Post("http://localhost/cache/k", "text/plain", http.NoBody)
		if err != nil {
			t.Fatal(i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "POST /cache/k " {
			t.Fatalf("got %q", b)
		}
		if i == 1 {
			cl.CloseIdleConnections()
		}
	}
	cl.CloseIdleConnections()
	fcancel()
	if err := <-fdone; err != nil {
		t.Fatal(err)
	}
}
