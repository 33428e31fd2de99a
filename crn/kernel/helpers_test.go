package kernel

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// The builders below write small but real ELF files and bzImages, so the
// parsers run on the same structures the kernel build produces.

// xenNote is a Xen PHYS32_ENTRY ELF note with an 8-byte descriptor, as
// x86-64 kernels emit it.
func xenNote(entry uint64) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, 4))
	b.Write(le.AppendUint32(nil, 8))
	b.Write(le.AppendUint32(nil, xenElfnotePhys32Entry))
	b.WriteString("Xen\x00")
	b.Write(le.AppendUint64(nil, entry))
	return b.Bytes()
}

// otherNote is an unrelated note (GNU build id) that must be skipped.
func otherNote() []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, 4))
	b.Write(le.AppendUint32(nil, 3))
	b.Write(le.AppendUint32(nil, 3))
	b.WriteString("GNU\x00")
	b.Write([]byte{1, 2, 3, 0}) // 3 bytes padded to 4
	return b.Bytes()
}

// fakeVmlinux is an ET_EXEC ELF for machine with a PT_LOAD and, when notes
// is not nil, a PT_NOTE holding notes, padded with a compressible body to
// at least size bytes.
func fakeVmlinux(machine elf.Machine, notes []byte, size int) []byte {
	le := binary.LittleEndian
	nprog := 1
	if notes != nil {
		nprog = 2
	}
	hdr := make([]byte, 64)
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le.PutUint16(hdr[0x10:], uint16(elf.ET_EXEC))
	le.PutUint16(hdr[0x12:], uint16(machine))
	le.PutUint32(hdr[0x14:], uint32(elf.EV_CURRENT))
	le.PutUint64(hdr[0x18:], 0x1000000) // entry
	le.PutUint64(hdr[0x20:], 64)        // phoff
	le.PutUint16(hdr[0x34:], 64)        // ehsize
	le.PutUint16(hdr[0x36:], 56)        // phentsize
	le.PutUint16(hdr[0x38:], uint16(nprog))
	noteOff := 64 + 56*nprog
	body := max(size-noteOff-len(notes), 0)
	total := noteOff + len(notes) + body
	prog := func(typ elf.ProgType, off, sz int) []byte {
		p := make([]byte, 56)
		le.PutUint32(p, uint32(typ))
		le.PutUint32(p[4:], uint32(elf.PF_R|elf.PF_X))
		le.PutUint64(p[8:], uint64(off))
		le.PutUint64(p[16:], 0xffffffff81000000+uint64(off))
		le.PutUint64(p[24:], 0x1000000+uint64(off))
		le.PutUint64(p[32:], uint64(sz))
		le.PutUint64(p[40:], uint64(sz))
		le.PutUint64(p[48:], 4)
		return p
	}
	out := append(hdr, prog(elf.PT_LOAD, 0, total)...)
	if notes != nil {
		out = append(out, prog(elf.PT_NOTE, noteOff, len(notes))...)
		out = append(out, notes...)
	}
	for i := range body {
		out = append(out, byte(i/97))
	}
	return out
}

// bzImage wraps a compressed payload (without the size trailer) in an x86
// boot header with setupSects sectors of setup code; origSize is the le32
// trailer the kernel build appends.
func bzImage(payload []byte, origSize uint32, setupSects int) []byte {
	le := binary.LittleEndian
	pm := (setupSects + 1) * 512
	const payloadOff = 0x40 // bytes of decompressor stub before the payload
	img := make([]byte, pm+payloadOff)
	img[offSetupSects] = byte(setupSects)
	le.PutUint16(img[offBootFlag:], 0xaa55)
	copy(img[offHeaderMagic:], "HdrS")
	le.PutUint16(img[offVersion:], 0x020f)
	le.PutUint32(img[offPayloadOffset:], payloadOff)
	le.PutUint32(img[offPayloadLength:], uint32(len(payload)+4))
	img = append(img, payload...)
	img = le.AppendUint32(img, origSize)
	return append(img, make([]byte, 100)...) // code after the payload
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lz4Legacy compresses b as lz4 legacy frames with blocks of chunk bytes;
// magicEvery > 0 repeats the magic before every magicEvery-th block.
func lz4Legacy(t testing.TB, b []byte, chunk, magicEvery int) []byte {
	t.Helper()
	le := binary.LittleEndian
	out := le.AppendUint32(nil, lz4LegacyMagic)
	for i := 0; len(b) > 0; i++ {
		n := min(chunk, len(b))
		dst := make([]byte, lz4.CompressBlockBound(n))
		k, err := lz4.CompressBlock(b[:n], dst, nil)
		if err != nil || k == 0 {
			t.Fatalf("lz4 compress block %d: n=%d err=%v (incompressible test data?)", i, k, err)
		}
		if magicEvery > 0 && i > 0 && i%magicEvery == 0 {
			out = le.AppendUint32(out, lz4LegacyMagic)
		}
		out = le.AppendUint32(out, uint32(k))
		out = append(out, dst[:k]...)
		b = b[n:]
	}
	return out
}

// fakeModule is an ET_REL x86-64 ELF with a .modinfo section.
func fakeModule(modinfo string) []byte {
	le := binary.LittleEndian
	shstr := "\x00.modinfo\x00.shstrtab\x00"
	dataOff := 64
	shstrOff := dataOff + len(modinfo)
	shOff := (shstrOff + len(shstr) + 7) &^ 7
	hdr := make([]byte, 64)
	copy(hdr, elf.ELFMAG)
	hdr[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le.PutUint16(hdr[0x10:], uint16(elf.ET_REL))
	le.PutUint16(hdr[0x12:], uint16(elf.EM_X86_64))
	le.PutUint32(hdr[0x14:], uint32(elf.EV_CURRENT))
	le.PutUint64(hdr[0x28:], uint64(shOff))
	le.PutUint16(hdr[0x34:], 64) // ehsize
	le.PutUint16(hdr[0x3a:], 64) // shentsize
	le.PutUint16(hdr[0x3c:], 3)  // shnum
	le.PutUint16(hdr[0x3e:], 2)  // shstrndx
	out := append(hdr, modinfo...)
	out = append(out, shstr...)
	out = append(out, make([]byte, shOff-len(out))...)
	sec := func(name uint32, typ elf.SectionType, off, size int) []byte {
		s := make([]byte, 64)
		le.PutUint32(s, name)
		le.PutUint32(s[4:], uint32(typ))
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		return s
	}
	out = append(out, make([]byte, 64)...) // SHN_UNDEF
	out = append(out, sec(1, elf.SHT_PROGBITS, dataOff, len(modinfo))...)
	out = append(out, sec(10, elf.SHT_STRTAB, shstrOff, len(shstr))...)
	return out
}

// writeModules writes fake modules (name -> depends) for version into dir
// and returns name -> path.
func writeModules(t *testing.T, dir, version string, deps map[string]string) map[string]string {
	t.Helper()
	files := make(map[string]string)
	for name, d := range deps {
		p := filepath.Join(dir, name+".ko")
		mi := "license=GPL\x00depends=" + d + "\x00retpoline=Y\x00intree=Y\x00name=" + name +
			"\x00vermagic=" + version + " SMP mod_unload modversions \x00"
		if err := os.WriteFile(p, fakeModule(mi), 0o644); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	return files
}
