package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

const testEntry = 0x1000000 + 0x3ba5f0

func TestExtractVmlinux(t *testing.T) {
	notes := append(otherNote(), xenNote(testEntry)...)
	vm := fakeVmlinux(elf.EM_X86_64, notes, 300<<10)
	big := fakeVmlinux(elf.EM_X86_64, notes, 9<<20) // spans two 8 MiB lz4 blocks
	tests := []struct {
		name string
		img  []byte
		want []byte
	}{
		{"gzip", bzImage(gzipBytes(t, vm), uint32(len(vm)), 27), vm},
		{"lz4 small blocks", bzImage(lz4Legacy(t, vm, 4096, 0), uint32(len(vm)), 39), vm},
		{"lz4 repeated magic", bzImage(lz4Legacy(t, vm, 10000, 3), uint32(len(vm)), 39), vm},
		{"lz4 8 MiB blocks", bzImage(lz4Legacy(t, big, lz4LegacyBlock, 0), uint32(len(big)), 39), big},
		{"setup_sects 0 means 4", bzImage(gzipBytes(t, vm), uint32(len(vm)), 4), vm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.img
			if tt.name == "setup_sects 0 means 4" {
				img = bytes.Clone(img)
				img[offSetupSects] = 0
			}
			var out bytes.Buffer
			if err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), tt.want) {
				t.Fatalf("extracted %d bytes, want the %d-byte original", out.Len(), len(tt.want))
			}
			entry, err := PVHEntry(bytes.NewReader(out.Bytes()), int64(out.Len()))
			if err != nil || entry != testEntry {
				t.Fatalf("PVHEntry = %#x, %v; want %#x", entry, err, testEntry)
			}
		})
	}
}

func TestExtractVmlinuxBzip2(t *testing.T) {
	bz, err := exec.LookPath("bzip2")
	if err != nil {
		t.Skip("bzip2 not installed (apt-get install bzip2): no bzip2 encoder in Go's standard library")
	}
	vm := fakeVmlinux(elf.EM_X86_64, xenNote(testEntry), 64<<10)
	cmd := exec.Command(bz, "-c")
	cmd.Stdin = bytes.NewReader(vm)
	payload, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	img := bzImage(payload, uint32(len(vm)), 30)
	var out bytes.Buffer
	if err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), vm) {
		t.Fatal("bzip2 payload extracted wrong")
	}
}

func TestExtractVmlinuxErrors(t *testing.T) {
	vm := fakeVmlinux(elf.EM_X86_64, xenNote(testEntry), 64<<10)
	good := bzImage(gzipBytes(t, vm), uint32(len(vm)), 27)
	payloadAt := (27+1)*512 + 0x40
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	le := binary.LittleEndian
	lz := lz4Legacy(t, vm, 4096, 0)
	tests := []struct {
		name    string
		img     []byte
		is      error
		message string
	}{
		{"empty", nil, ErrNotBzImage, "shorter than"},
		{"truncated header", good[:0x230], ErrNotBzImage, "shorter than"},
		{"garbage", bytes.Repeat([]byte{0xa5}, 4096), ErrNotBzImage, "HdrS"},
		{"no boot flag", with(func(b []byte) []byte { b[offBootFlag] = 0; return b }), ErrNotBzImage, "boot flag"},
		{"old protocol", with(func(b []byte) []byte { le.PutUint16(b[offVersion:], 0x0206); return b }), ErrNotBzImage, "2.06"},
		{"truncated payload", good[:payloadAt+100], ErrNotBzImage, "truncated?"},
		{"payload length huge", with(func(b []byte) []byte { le.PutUint32(b[offPayloadLength:], 0xffffffff); return b }), ErrNotBzImage, "beyond the end"},
		{"payload offset huge", with(func(b []byte) []byte { le.PutUint32(b[offPayloadOffset:], 0xfffffff0); return b }), ErrNotBzImage, "beyond the end"},
		{"payload length tiny", with(func(b []byte) []byte { le.PutUint32(b[offPayloadLength:], 3); return b }), ErrNotBzImage, "too small"},
		{"zero size trailer", bzImage(gzipBytes(t, vm), 0, 27), ErrNotBzImage, "empty kernel"},
		{"huge size trailer", bzImage(gzipBytes(t, vm), MaxVmlinuxSize+1, 27), ErrTooLarge, "limit"},
		{"short output", bzImage(gzipBytes(t, vm), uint32(len(vm)+1), 27), ErrNotBzImage, "header says"},
		{"long output", bzImage(gzipBytes(t, vm), uint32(len(vm)-1), 27), ErrTooLarge, "exceeds"},
		{"xz", bzImage([]byte("\xfd7zXZ\x00rest-of-stream"), 1000, 27), ErrUnsupportedCompression, "unsupported kernel compression xz"},
		{"zstd", bzImage([]byte("\x28\xb5\x2f\xfdrest-of-stream"), 1000, 27), ErrUnsupportedCompression, "unsupported kernel compression zstd"},
		{"unknown", bzImage([]byte("what is this"), 1000, 27), ErrUnsupportedCompression, "unknown (magic"},
		{"corrupt gzip", bzImage(append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte{0xff}, 64)...), 1000, 27), nil, "decompressing gzip"},
		{"corrupt lz4 block", bzImage(append(le.AppendUint32(le.AppendUint32(nil, lz4LegacyMagic), 16), bytes.Repeat([]byte{0xff}, 16)...), 1000, 27), nil, "lz4 block at offset 8"},
		{"truncated lz4 block", bzImage(lz[:len(lz)-10], uint32(len(vm)), 27), nil, "truncated"},
		{"lz4 block size zero", bzImage(le.AppendUint32(le.AppendUint32(nil, lz4LegacyMagic), 0), 1000, 27), nil, "out of range"},
		{"not an ELF", bzImage(gzipBytes(t, bytes.Repeat([]byte("x"), 1000)), 1000, 27), ErrNotPVH, "no ELF magic"},
		{"tiny output", bzImage(gzipBytes(t, []byte("\x7fELF")), 4, 27), ErrNotPVH, "shorter than an ELF header"},
		{"i386 ELF", bzImage(gzipBytes(t, fakeVmlinux(elf.EM_386, xenNote(1), 4096)), 4096, 27), ErrNotPVH, "EM_X86_64"},
		{"no PVH note", bzImage(gzipBytes(t, fakeVmlinux(elf.EM_X86_64, otherNote(), 4096)), 4096, 27), ErrNotPVH, "no Xen PHYS32_ENTRY"},
		{"no note segment", bzImage(gzipBytes(t, fakeVmlinux(elf.EM_X86_64, nil, 4096)), 4096, 27), ErrNotPVH, "no Xen PHYS32_ENTRY"},
		{"broken note", bzImage(gzipBytes(t, fakeVmlinux(elf.EM_X86_64, xenNote(1)[:14], 4096)), 4096, 27), ErrNotPVH, "overruns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ExtractVmlinux(bytes.NewReader(tt.img), int64(len(tt.img)), &bytes.Buffer{})
			if err == nil {
				t.Fatal("ExtractVmlinux succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
		})
	}
}

func TestPVHEntryErrors(t *testing.T) {
	notes := xenNote(testEntry)
	vm := fakeVmlinux(elf.EM_X86_64, notes, 8192)
	le := binary.LittleEndian
	tests := []struct {
		name    string
		b       []byte
		message string
	}{
		{"empty", nil, "shorter than an ELF header"},
		{"ELF32", func() []byte { b := bytes.Clone(vm); b[elf.EI_CLASS] = byte(elf.ELFCLASS32); return b }(), "64-bit"},
		{"ET_DYN", func() []byte { b := bytes.Clone(vm); le.PutUint16(b[0x10:], uint16(elf.ET_DYN)); return b }(), "ET_EXEC"},
		{"phoff beyond", func() []byte { b := bytes.Clone(vm); le.PutUint64(b[0x20:], 1<<40); return b }(), "program headers"},
		{"phnum huge", func() []byte { b := bytes.Clone(vm); le.PutUint16(b[0x38:], 0xffff); return b }(), "program headers"},
		{"phentsize small", func() []byte { b := bytes.Clone(vm); le.PutUint16(b[0x36:], 8); return b }(), "program header size"},
		{"note beyond file", func() []byte {
			b := bytes.Clone(vm)
			le.PutUint64(b[64+56+8:], uint64(len(b))) // PT_NOTE p_offset
			return b
		}(), "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PVHEntry(bytes.NewReader(tt.b), int64(len(tt.b)))
			if !errors.Is(err, ErrNotPVH) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("PVHEntry error = %v, want ErrNotPVH mentioning %q", err, tt.message)
			}
		})
	}
}
