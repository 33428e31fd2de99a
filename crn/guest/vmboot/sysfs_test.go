package vmboot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSys lays out a sysfs-like class directory: each entry is a link to a
// device directory holding the attribute, as in /sys/block.
type fakeSys struct {
	t             *testing.T
	class, dev    string
	devices, attr string
}

func newFakeSys(t *testing.T, attr string) *fakeSys {
	t.Helper()
	root := t.TempDir()
	f := &fakeSys{t: t, class: filepath.Join(root, "class"), dev: filepath.Join(root, "dev"),
		devices: filepath.Join(root, "devices"), attr: attr}
	for _, d := range []string{f.class, f.dev, f.devices} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// add creates device name with the attribute value (none if value is "")
// and, if node, its /dev node.
func (f *fakeSys) add(name, value string, node bool) {
	f.t.Helper()
	d := filepath.Join(f.devices, "virtio"+name, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		f.t.Fatal(err)
	}
	if value != "" {
		if err := os.WriteFile(filepath.Join(d, f.attr), []byte(value+"\n"), 0o444); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := os.Symlink(d, filepath.Join(f.class, name)); err != nil {
		f.t.Fatal(err)
	}
	if node {
		f.node(name)
	}
}

func (f *fakeSys) node(name string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dev, name), nil, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func TestFindBySerial(t *testing.T) {
	f := newFakeSys(t, "serial")
	// Probe order differs from the drive names on purpose.
	f.add("vda", "vdc", true)
	f.add("vdb", "vda", true)
	f.add("vdc", "vdb", true)
	f.add("loop0", "", true) // no serial attribute
	f.add("vdd", "dup", true)
	f.add("vde", "dup", true)
	tests := []struct {
		serial, want string
		err          error
		msg          string
	}{
		{"vda", "vdb", nil, ""},
		{"vdb", "vdc", nil, ""},
		{"vdc", "vda", nil, ""},
		{"vdz", "", ErrNotFound, `serial "vdz"`},
		{"", "", ErrBadName, `""`},
		{"../vda", "", ErrBadName, `"../vda"`},
		{"a/b", "", ErrBadName, ""},
		{"..", "", ErrBadName, ""},
		{strings.Repeat("v", maxName+1), "", ErrBadName, ""},
		{"dup", "", nil, "is both vdd and vde"},
	}
	for _, tt := range tests {
		got, err := FindBySerial(f.class, tt.serial)
		switch {
		case tt.want != "":
			if err != nil || got != tt.want {
				t.Errorf("FindBySerial(%q) = %q, %v, want %q", tt.serial, got, err, tt.want)
			}
		case err == nil:
			t.Errorf("FindBySerial(%q) = %q, want an error", tt.serial, got)
		case tt.err != nil && !errors.Is(err, tt.err), !strings.Contains(err.Error(), tt.msg):
			t.Errorf("FindBySerial(%q) error %v, want %v with %q", tt.serial, err, tt.err, tt.msg)
		}
	}
	if _, err := FindBySerial(filepath.Join(f.class, "missing"), "vda"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing sysfs dir: %v, want ErrNotFound", err)
	}
}

func TestFindPort(t *testing.T) {
	f := newFakeSys(t, "name")
	f.add("vport0p0", "", true) // the console port has no name
	f.add("vport0p1", "org.qemu.guest_agent.0", true)
	f.add("vport0p2", PortName, true)
	if got, err := FindPort(f.class, PortName); err != nil || got != "vport0p2" {
		t.Fatalf("FindPort = %q, %v", got, err)
	}
	if _, err := FindPort(f.class, "org.other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindPort(other) = %v, want ErrNotFound", err)
	}
}

func TestWaitDevice(t *testing.T) {
	t.Run("present", func(t *testing.T) {
		f := newFakeSys(t, "serial")
		f.add("vda", "vda", true)
		got, err := WaitDevice(ctxTimeout(t, time.Second), f.class, f.dev, "vda")
		if err != nil || got != filepath.Join(f.dev, "vda") {
			t.Fatalf("WaitDevice = %q, %v", got, err)
		}
	})
	t.Run("appears later", func(t *testing.T) {
		f := newFakeSys(t, "serial")
		// The driver probes asynchronously: sysfs first, the node after.
		added := make(chan struct{})
		time.AfterFunc(50*time.Millisecond, func() {
			f.add("vdb", "vdc", false)
			time.AfterFunc(30*time.Millisecond, func() { defer close(added); f.node("vdb") })
		})
		got, err := WaitDevice(ctxTimeout(t, 5*time.Second), f.class, f.dev, "vdc")
		<-added
		if err != nil || got != filepath.Join(f.dev, "vdb") {
			t.Fatalf("WaitDevice = %q, %v", got, err)
		}
	})
	t.Run("never", func(t *testing.T) {
		f := newFakeSys(t, "serial")
		start := time.Now()
		_, err := WaitDevice(ctxTimeout(t, 100*time.Millisecond), f.class, f.dev, "vdq")
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"vdq"`) {
			t.Fatalf("WaitDevice = %v, want not found after the deadline", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("WaitDevice took %v", d)
		}
	})
	t.Run("no node", func(t *testing.T) {
		f := newFakeSys(t, "serial")
		f.add("vda", "vda", false)
		_, err := WaitDevice(ctxTimeout(t, 100*time.Millisecond), f.class, f.dev, "vda")
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "has no node") {
			t.Fatalf("WaitDevice = %v, want no node", err)
		}
	})
	t.Run("bad name fails at once", func(t *testing.T) {
		f := newFakeSys(t, "serial")
		_, err := WaitDevice(ctxTimeout(t, 10*time.Second), f.class, f.dev, "")
		if !errors.Is(err, ErrBadName) {
			t.Fatalf("WaitDevice = %v, want ErrBadName", err)
		}
	})
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
