package guest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-aleph/go-aleph/crn/guest"
	"github.com/go-aleph/go-aleph/crn/protocol"
)

// copyMounter stands in for a VM's drives: MountCode puts the program at
// the code directory as a squashfs mount would.
type copyMounter struct {
	guest.SandboxMounter
	program []byte

	mu        sync.Mutex
	codeCalls []string
}

func (m *copyMounter) MountCode(dir string) error {
	m.mu.Lock()
	m.codeCalls = append(m.codeCalls, dir)
	m.mu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "app"), m.program, 0o755)
}

func (m *copyMounter) calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.codeCalls...)
}

func TestSquashfsCodeIsMounted(t *testing.T) {
	m := &copyMounter{program: testApp(t)}
	h := start(t, func(o *guest.Options) { o.Mounter = m })
	if err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable,
		Encoding: protocol.EncodingSquashfs, Entrypoint: "app"}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if got := m.calls(); len(got) != 1 || got[0] != filepath.Join(h.dir, "code") {
		t.Fatalf("MountCode calls %q, want the code dir once", got)
	}
	if res := h.get(t, "/env", "k=ALEPH_INIT_VERSION"); res.Status != 200 || string(res.Body) != protocol.Version {
		t.Fatalf("program from the mounted code: %+v", res)
	}
}

func TestZipCodeIsNotMounted(t *testing.T) {
	m := &copyMounter{program: testApp(t)}
	h := start(t, func(o *guest.Options) { o.Mounter = m })
	if err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable,
		Encoding: protocol.EncodingZip, Entrypoint: "bin/app", Code: zipOf(t, map[string][]byte{"bin/app": testApp(t)})}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if got := m.calls(); len(got) != 0 {
		t.Fatalf("MountCode called for zip code: %q", got)
	}
}

type failingCodeMounter struct{ guest.SandboxMounter }

func (failingCodeMounter) MountCode(string) error { return errors.New("drive vdb: device not found") }

func TestCodeMountFailureRejects(t *testing.T) {
	h := start(t, func(o *guest.Options) { o.Mounter = failingCodeMounter{} })
	err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable,
		Encoding: protocol.EncodingSquashfs, Entrypoint: "app"})
	if !errors.Is(err, protocol.ErrConfigRejected) || !strings.Contains(err.Error(), "code: drive vdb: device not found") {
		t.Fatalf("Configure = %v, want rejected naming the code drive", err)
	}
}

func TestConfigureNetworkHook(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var mu sync.Mutex
		var got *protocol.Configuration
		h := start(t, func(o *guest.Options) {
			o.ConfigureNetwork = func(ctx context.Context, cfg *protocol.Configuration) error {
				mu.Lock()
				got = cfg
				mu.Unlock()
				if fail {
					return errors.New("interface eth0 did not appear")
				}
				return nil
			}
		})
		err := h.configure(t, &protocol.Configuration{Interface: protocol.InterfaceExecutable, Encoding: protocol.EncodingPlain,
			Entrypoint: "app", Code: testApp(t), IP: "172.16.4.2", Route: "172.16.4.1"})
		mu.Lock()
		if got == nil || got.IP != "172.16.4.2" || got.Route != "172.16.4.1" {
			t.Errorf("hook saw %+v", got)
		}
		mu.Unlock()
		if fail {
			if !errors.Is(err, protocol.ErrConfigRejected) || !strings.Contains(err.Error(), "network: interface eth0 did not appear") {
				t.Errorf("Configure = %v, want rejected with the network error", err)
			}
		} else if err != nil {
			t.Errorf("Configure: %v", err)
		}
	}
}

func TestSandboxMounterMountCode(t *testing.T) {
	if err := (guest.SandboxMounter{}).MountCode(t.TempDir()); err != nil {
		t.Fatalf("SandboxMounter.MountCode = %v, want nil (the host bound the code)", err)
	}
}
