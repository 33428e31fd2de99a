package kernel

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseModinfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ModInfo
		message string // error, if set
	}{
		{"typical", "license=GPL\x00depends=virtio,virtio_ring\x00retpoline=Y\x00intree=Y\x00name=virtio_mmio\x00vermagic=6.1.0-56-cloud-amd64 SMP mod_unload modversions \x00",
			ModInfo{Name: "virtio_mmio", Depends: []string{"virtio", "virtio_ring"}, Vermagic: "6.1.0-56-cloud-amd64 SMP mod_unload modversions "}, ""},
		{"padding and empty depends", "\x00\x00depends=\x00\x00\x00name=virtio_ring\x00", ModInfo{Name: "virtio_ring"}, ""},
		{"dashes normalised", "depends=net-failover\x00name=virtio-net\x00", ModInfo{Name: "virtio_net", Depends: []string{"net_failover"}}, ""},
		{"value with =", "parm=x:int = 3\x00", ModInfo{}, ""},
		{"empty", "", ModInfo{}, ""},
		{"no =", "license\x00", ModInfo{}, "not key=value"},
		{"empty key", "=x\x00", ModInfo{}, "not key=value"},
		{"two depends", "depends=a\x00depends=b\x00", ModInfo{}, "more than one depends"},
		{"path in depends", "depends=../../etc/passwd\x00", ModInfo{}, "invalid dependency name"},
		{"empty dependency", "depends=a,,b\x00", ModInfo{}, "invalid dependency name"},
		{"bad name", "name=a/b\x00", ModInfo{}, "invalid module name"},
		{"too long name", "name=" + strings.Repeat("a", 56) + "\x00", ModInfo{}, "invalid module name"},
		{"too large", strings.Repeat("k=v\x00", maxModinfoSize/4+1), ModInfo{}, "is over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseModinfo([]byte(tt.in))
			if tt.message != "" {
				if !errors.Is(err, ErrBadModinfo) || !strings.Contains(err.Error(), tt.message) {
					t.Fatalf("error = %v, want ErrBadModinfo mentioning %q", err, tt.message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.want.Name || got.Vermagic != tt.want.Vermagic || !slices.Equal(got.Depends, tt.want.Depends) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadModinfoErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := fakeVmlinux(0x3e, nil, 1024)
	tests := []struct {
		name, path, message string
	}{
		{"missing", filepath.Join(dir, "nope.ko"), "no such file"},
		{"directory", dir, "not a regular file"},
		{"not ELF", write("text.ko", []byte("hello")), "bad module info"},
		{"executable", write("exe.ko", exe), "ET_REL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadModinfo(tt.path); err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.message)
			}
		})
	}
}

func TestResolveModules(t *testing.T) {
	const v = "6.1.0-56-cloud-amd64"
	deps := map[string]string{
		"virtio_ring":                       "",
		"virtio":                            "virtio_ring",
		"virtio_mmio":                       "virtio,virtio_ring",
		"virtio_blk":                        "virtio,virtio_ring",
		"failover":                          "",
		"net_failover":                      "failover",
		"virtio_net":                        "net_failover,virtio,virtio_ring",
		"vsock":                             "",
		"vmw_vsock_virtio_transport_common": "vsock,virtio",
		"vmw_vsock_virtio_transport":        "vmw_vsock_virtio_transport_common,virtio,virtio_ring,vsock",
		"cyc_a":                             "cyc_b",
		"cyc_b":                             "cyc_a",
		"needs_missing":                     "nowhere",
	}
	files := writeModules(t, t.TempDir(), v, deps)
	files["other_kernel"] = writeModules(t, t.TempDir(), "5.10.0-1-amd64", map[string]string{"other_kernel": ""})["other_kernel"]
	files["misnamed"] = files["virtio"]
	builtin := map[string]bool{"ext4": true, "overlay": true}

	tests := []struct {
		name        string
		wanted      []string
		wantBuiltin []string
		is          error
	}{
		{"virtio set", []string{"virtio_mmio", "virtio_blk", "virtio_net", "vmw_vsock_virtio_transport"}, nil, nil},
		{"builtin and dashes", []string{"ext4", "virtio-net", "overlay"}, []string{"ext4", "overlay"}, nil},
		{"missing", []string{"virtio_mmio", "squashfs"}, nil, ErrModuleNotFound},
		{"missing dependency", []string{"needs_missing"}, nil, ErrModuleNotFound},
		{"cycle", []string{"cyc_a"}, nil, ErrModuleCycle},
		{"other kernel", []string{"other_kernel"}, nil, ErrVermagic},
		{"name mismatch", []string{"misnamed"}, nil, ErrBadModinfo},
		{"bad wanted name", []string{"../x"}, nil, ErrBadModinfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := resolveModules(tt.wanted, files, builtin, v)
			if tt.is != nil {
				if !errors.Is(err, tt.is) {
					t.Fatalf("error = %v, want %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, res.order, func(name string) []string {
				mi, err := ReadModinfo(files[name])
				if err != nil {
					t.Fatal(err)
				}
				return mi.Depends
			})
			for _, w := range tt.wanted {
				w = NormalizeModuleName(w)
				if !slices.Contains(res.order, w) && !slices.Contains(res.builtin, w) {
					t.Errorf("wanted %s neither loaded nor built in: %v", w, res)
				}
			}
			if !slices.Equal(res.builtin, tt.wantBuiltin) {
				t.Errorf("builtin = %v, want %v", res.builtin, tt.wantBuiltin)
			}
		})
	}
}

// checkOrder fails unless every module comes after all its dependencies
// and appears once.
func checkOrder(t *testing.T, order []string, depends func(string) []string) {
	t.Helper()
	pos := make(map[string]int)
	for i, m := range order {
		if _, dup := pos[m]; dup {
			t.Fatalf("%s twice in %v", m, order)
		}
		pos[m] = i
	}
	for i, m := range order {
		for _, d := range depends(m) {
			if j, ok := pos[d]; !ok || j >= i {
				t.Errorf("%s (at %d) depends on %s, which is not loaded before it: %v", m, i, d, order)
			}
		}
	}
}

func TestParseDepends(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"bookworm", "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n", "linux-image-6.1.0-56-cloud-amd64"},
		{"virtual in brackets", "linux-image-cloud-amd64\n  Depends: <linux-image-6.1.0-57-cloud-amd64>\n  Recommends: apparmor\n", "linux-image-6.1.0-57-cloud-amd64"},
		{"none", "linux-image-cloud-amd64\n  Recommends: apparmor\n", ""},
		{"two", "x\n  Depends: linux-image-6.1.0-56-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n", ""},
		{"glob rejected", "x\n  Depends: linux-image-6.1.0-*-cloud-amd64\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDepends([]byte(tt.out))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("parseDepends = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseDepends = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestValidatePackageName(t *testing.T) {
	for _, p := range []string{"linux-image-6.1.0-56-cloud-amd64", "linux-image-6.12.9+bpo-cloud-amd64"} {
		if err := ValidatePackageName(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "linux-image-6.1.0-*-cloud-amd64", "linux-image-[0-9]", "bash", "-olinux-image-x",
		"linux-image-x y", "linux-image-X", "linux-image-x;rm", "linux-image-" + strings.Repeat("a", 200)} {
		if err := ValidatePackageName(p); !errors.Is(err, ErrBadPackage) {
			t.Errorf("%q: error = %v, want ErrBadPackage", p, err)
		}
	}
}

// tarFile is one entry of a synthetic package data archive.
type tarFile struct {
	name string
	body []byte
	link bool
}

func dataTar(t *testing.T, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if f.link {
			h = &tar.Header{Name: f.name, Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadDataTar(t *testing.T) {
	const v = "6.1.0-56-cloud-amd64"
	ko := fakeModule("name=virtio\x00")
	base := []tarFile{
		{name: "./boot/vmlinuz-" + v, body: []byte("bzimage")},
		{name: "./boot/config-" + v, body: []byte("CONFIG_PVH=y\n")},
		{name: "./lib/modules/" + v + "/modules.builtin", body: []byte("kernel/fs/ext4/ext4.ko\nkernel/lib/crc-t10dif.ko\n")},
		{name: "./lib/modules/" + v + "/kernel/drivers/virtio/virtio.ko", body: ko},
		{name: "./lib/modules/" + v + "/kernel/drivers/virtio/evil.ko", link: true},
		{name: "./lib/modules/" + v + "/kernel/../../../../../tmp/escape.ko", body: ko},
	}
	t.Run("good", func(t *testing.T) {
		dir := t.TempDir()
		u, err := readDataTar(bytes.NewReader(dataTar(t, base)), dir, filepath.Join(dir, "ko"))
		if err != nil {
			t.Fatal(err)
		}
		if u.version != v || !u.builtin["ext4"] || !u.builtin["crc_t10dif"] {
			t.Fatalf("unpacked %+v", u)
		}
		if _, ok := u.modules["evil"]; ok {
			t.Error("a symlink was taken as a module")
		}
		for name, p := range u.modules {
			if filepath.Dir(p) != filepath.Join(dir, "ko") {
				t.Errorf("module %s written to %s, outside the work dir", name, p)
			}
		}
		if b, err := os.ReadFile(u.vmlinuz); err != nil || string(b) != "bzimage" {
			t.Fatalf("vmlinuz: %q, %v", b, err)
		}
	})
	bad := []struct {
		name    string
		files   []tarFile
		message string
	}{
		{"no vmlinuz", base[2:], "no boot/vmlinuz"},
		{"no modules.builtin", append(slices.Clone(base[:2]), base[3]), "modules.builtin"},
		{"two versions", append(slices.Clone(base), tarFile{name: "./lib/modules/6.1.0-57-cloud-amd64/kernel/x.ko", body: ko}), "files for kernel"},
		{"duplicate module", append(slices.Clone(base), tarFile{name: "./lib/modules/" + v + "/extra/virtio.ko", body: ko}), "appears twice"},
		{"bad version", []tarFile{{name: "./boot/vmlinuz-6.1;rm", body: []byte("b")}}, "invalid kernel version"},
		{"compressed wanted module", append(slices.Clone(base), tarFile{name: "./lib/modules/" + v + "/kernel/drivers/virtio/virtio_mmio.ko.xz", body: []byte("xz")}), "compressed"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := readDataTar(bytes.NewReader(dataTar(t, tt.files)), dir, filepath.Join(dir, "ko"))
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.message)
			}
		})
	}
}
