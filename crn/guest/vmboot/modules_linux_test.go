package vmboot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeOrder(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "modules.order")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadModuleOrder(t *testing.T) {
	got, err := ReadModuleOrder(writeOrder(t, "virtio_ring.ko\nvirtio.ko\n\n  virtio_mmio.ko  \nvmw_vsock_virtio_transport.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "virtio_ring.ko virtio.ko virtio_mmio.ko vmw_vsock_virtio_transport.ko"; strings.Join(got, " ") != want {
		t.Fatalf("ReadModuleOrder = %q, want %q", got, want)
	}
	if got, err := ReadModuleOrder(writeOrder(t, "")); err != nil || len(got) != 0 {
		t.Fatalf("empty order = %q, %v", got, err)
	}

	var many strings.Builder
	for i := range maxModules + 1 {
		fmt.Fprintf(&many, "m%d.ko\n", i)
	}
	tests := []struct{ name, content, want string }{
		{"path", "virtio.ko\nkernel/virtio.ko\n", `:2: "kernel/virtio.ko" is not a module file name`},
		{"traversal", "../../etc/passwd.ko\n", "is not a module file name"},
		{"not ko", "virtio.o\n", `"virtio.o" is not a module file name`},
		{"bare suffix", ".ko\n", "is not a module file name"},
		{"twice", "a.ko\nb.ko\na.ko\n", ":3: a.ko listed twice"},
		{"too many", many.String(), "more than 256 modules"},
		{"too large", strings.Repeat("a", maxOrderSize+1), "larger than"},
	}
	for _, tt := range tests {
		_, err := ReadModuleOrder(writeOrder(t, tt.content))
		if !errors.Is(err, ErrBadModuleOrder) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrBadModuleOrder with %q", tt.name, err, tt.want)
		}
	}
	if _, err := ReadModuleOrder(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadModulesErrors(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	// The first module is missing: nothing reaches finit_module.
	n, err := LoadModules(writeOrder(t, "absent.ko\nother.ko\n"), dir, log)
	if n != 0 || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "load module absent.ko") {
		t.Fatalf("LoadModules = %d, %v, want the missing module named", n, err)
	}
	if _, err := LoadModules(writeOrder(t, "x/y.ko\n"), dir, log); !errors.Is(err, ErrBadModuleOrder) {
		t.Fatalf("bad order: %v", err)
	}
	if n, err := LoadModules(writeOrder(t, "\n"), dir, log); n != 0 || err != nil {
		t.Fatalf("empty order: %d, %v", n, err)
	}
}
