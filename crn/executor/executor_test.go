package executor

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type fakeExec struct{ name string }

func (f fakeExec) Name() string         { return f.name }
func (f fakeExec) Network() NetworkMode { return NetNamespace }
func (f fakeExec) Start(context.Context, *Spec) (Instance, error) {
	return nil, errors.New("not implemented")
}

func TestRegistry(t *testing.T) {
	var r Registry
	for _, n := range []string{"sandbox", "qemu"} {
		if err := r.Register(n, func(Options) (Executor, error) { return fakeExec{n}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Register("qemu", func(Options) (Executor, error) { return nil, nil }); err == nil {
		t.Error("duplicate registration accepted")
	}
	if got := fmt.Sprint(r.Names()); got != "[qemu sandbox]" {
		t.Errorf("Names = %s", got)
	}
	e, err := r.Get("sandbox", Options{})
	if err != nil || e.Name() != "sandbox" {
		t.Fatalf("Get(sandbox) = %v, %v", e, err)
	}
	if _, err := r.Get("firecracker", Options{}); !errors.Is(err, ErrUnknownBackend) {
		t.Errorf("Get(firecracker) = %v, want ErrUnknownBackend", err)
	}
}

func TestSpecValidate(t *testing.T) {
	good := func() *Spec {
		return &Spec{ID: "abc", Runtime: "/rt", Init: "/init", StateDir: "/s", MemoryMiB: 128, VCPUs: 1}
	}
	tests := []struct {
		name   string
		mutate func(*Spec)
		ok     bool
	}{
		{"good", func(*Spec) {}, true},
		{"no id", func(s *Spec) { s.ID = "" }, false},
		{"no runtime", func(s *Spec) { s.Runtime = "" }, false},
		{"no init", func(s *Spec) { s.Init = "" }, false},
		{"no state dir", func(s *Spec) { s.StateDir = "" }, false},
		{"no memory", func(s *Spec) { s.MemoryMiB = 0 }, false},
		{"no vcpus", func(s *Spec) { s.VCPUs = -1 }, false},
		{"volume ok", func(s *Spec) { s.Volumes = []Volume{{Kind: VolumeSquashfs, Source: "/v", Mount: "/opt/packages"}} }, true},
		{"volume relative", func(s *Spec) { s.Volumes = []Volume{{Kind: VolumeDir, Source: "/v", Mount: "data"}} }, false},
		{"volume no source", func(s *Spec) { s.Volumes = []Volume{{Kind: VolumeExt4, Mount: "/data"}} }, false},
		{"volume unknown kind", func(s *Spec) { s.Volumes = []Volume{{Kind: "nfs", Source: "/v", Mount: "/data"}} }, false},
		{"tmpfs no size", func(s *Spec) { s.Volumes = []Volume{{Kind: VolumeTmpfs, Mount: "/data"}} }, false},
		{"tmpfs ok", func(s *Spec) { s.Volumes = []Volume{{Kind: VolumeTmpfs, Mount: "/data", SizeMiB: 8}} }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.mutate(s)
			err := s.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadSpec) {
				t.Errorf("error %v is not ErrBadSpec", err)
			}
		})
	}
}

func TestExitError(t *testing.T) {
	err := fmt.Errorf("run: %w", &ExitError{Status: 137, OOM: true})
	if !IsOOM(err) || IsOOM(&ExitError{Status: 1}) || IsOOM(ErrStopped) {
		t.Error("IsOOM wrong")
	}
}

func TestVolumeDevices(t *testing.T) {
	vols := make([]Volume, 3)
	for _, tc := range []struct {
		code string
		want []string
	}{
		{"", []string{"vdb", "vdc", "vdd"}},
		{"/code.squashfs", []string{"vdc", "vdd", "vde"}},
	} {
		got := VolumeDevices(&Spec{Code: tc.code, Volumes: vols})
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("code %q: %v, want %v", tc.code, got, tc.want)
		}
	}
	for i, want := range map[int]string{0: "vda", 25: "vdz", 26: "vdaa", 27: "vdab", 52: "vdba"} {
		if got := DriveName(i); got != want {
			t.Errorf("DriveName(%d) = %s, want %s", i, got, want)
		}
	}
}
