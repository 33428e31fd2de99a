package kernel

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

// MaxVmlinuxSize bounds the decompressed kernel ExtractVmlinux writes.
const MaxVmlinuxSize = 256 << 20

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry
// point QEMU's -M microvm (and Firecracker) jump to when given an ELF.
const xenElfnotePhys32Entry = 18

// Layout of the x86 boot protocol header (Documentation/arch/x86/boot.rst).
const (
	offSetupSects    = 0x1f1
	offBootFlag      = 0x1fe
	offHeaderMagic   = 0x202
	offVersion       = 0x206
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
	headerEnd        = 0x250
	minProtocol      = 0x208 // payload_offset/length appeared in 2.08
)

// lz4 legacy framing as the kernel's unlz4 reads it.
const (
	lz4LegacyMagic = 0x184c2102
	lz4LegacyBlock = 8 << 20
)

// Limits of the streaming ELF check.
const (
	elfHeadSize = 64 << 10 // ELF and program headers must lie in this prefix
	maxNoteSize = 1 << 20
	maxProgs    = 512
)

var (
	// ErrNotBzImage is a file without a valid x86 boot protocol header.
	ErrNotBzImage = errors.New("not an x86 bzImage")
	// ErrUnsupportedCompression is a payload compressed with a format
	// ExtractVmlinux cannot decompress (xz, zstd, lzma, lzo).
	ErrUnsupportedCompression = errors.New("unsupported kernel compression")
	// ErrNotPVH is a kernel image that is not an x86-64 ELF with a Xen PVH
	// entry note.
	ErrNotPVH = errors.New("not a PVH-bootable x86-64 ELF kernel")
	// ErrTooLarge is an input or output over its size limit.
	ErrTooLarge = errors.New("too large")
)

var errNoPVHNote = fmt.Errorf("%w: no Xen PHYS32_ENTRY note (kernel built without CONFIG_PVH?)", ErrNotPVH)

// bzHeader is what ExtractVmlinux needs from the setup header.
type bzHeader struct {
	protocol      uint16
	setupSects    int
	payloadOffset int64 // absolute, in the file
	payloadLength int64
}

// parseBzImage reads and bounds-checks the boot protocol header.
func parseBzImage(r io.ReaderAt, size int64) (bzHeader, error) {
	var h bzHeader
	if size < headerEnd {
		return h, fmt.Errorf("%w: %d bytes is shorter than the %d-byte setup header", ErrNotBzImage, size, headerEnd)
	}
	b := make([]byte, headerEnd)
	if err := readFull(r, b, 0); err != nil {
		return h, fmt.Errorf("%w: reading setup header: %w", ErrNotBzImage, err)
	}
	if string(b[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return h, fmt.Errorf("%w: no HdrS magic at 0x%x", ErrNotBzImage, offHeaderMagic)
	}
	if flag := binary.LittleEndian.Uint16(b[offBootFlag:]); flag != 0xaa55 {
		return h, fmt.Errorf("%w: boot flag 0x%04x, want 0xaa55", ErrNotBzImage, flag)
	}
	h.protocol = binary.LittleEndian.Uint16(b[offVersion:])
	if h.protocol < minProtocol {
		return h, fmt.Errorf("%w: boot protocol %d.%02d has no payload fields (need 2.08)",
			ErrNotBzImage, h.protocol>>8, h.protocol&0xff)
	}
	h.setupSects = int(b[offSetupSects])
	if h.setupSects == 0 {
		h.setupSects = 4 // boot.rst: 0 means 4
	}
	pm := int64(h.setupSects+1) * 512
	off := int64(binary.LittleEndian.Uint32(b[offPayloadOffset:]))
	h.payloadLength = int64(binary.LittleEndian.Uint32(b[offPayloadLength:]))
	h.payloadOffset = pm + off
	if h.payloadLength < 8 {
		return h, fmt.Errorf("%w: payload length %d too small", ErrNotBzImage, h.payloadLength)
	}
	if h.payloadOffset+h.payloadLength > size {
		return h, fmt.Errorf("%w: payload [%d, +%d) beyond the end of the %d-byte file (truncated?)",
			ErrNotBzImage, h.payloadOffset, h.payloadLength, size)
	}
	return h, nil
}

// readFull is ReadAt that accepts io.EOF with a full read, as the
// io.ReaderAt contract allows.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// compression names the payload format by its magic.
func compression(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x02, 0x21, 0x4c, 0x18}):
		return "lz4"
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "gzip"
	case bytes.HasPrefix(magic, []byte("BZh")):
		return "bzip2"
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(magic, []byte{0x5d, 0x00, 0x00}):
		return "lzma"
	case bytes.HasPrefix(magic, []byte{0x89, 'L', 'Z', 'O'}):
		return "lzo"
	}
	return fmt.Sprintf("unknown (magic % x)", magic)
}

// ExtractVmlinux writes the uncompressed kernel ELF embedded in an x86
// bzImage of the given size to out. It supports lz4 (legacy frames, Debian's
// cloud kernels), gzip and bzip2 payloads, and checks that the result is an
// x86-64 ELF with a Xen PVH entry note, which QEMU -M microvm boots
// directly. On error, out may hold a partial kernel.
func ExtractVmlinux(bzImage io.ReaderAt, size int64, out io.Writer) error {
	h, err := parseBzImage(bzImage, size)
	if err != nil {
		return err
	}
	// The build appends the uncompressed size (le32) to every payload.
	var trailer [4]byte
	if err := readFull(bzImage, trailer[:], h.payloadOffset+h.payloadLength-4); err != nil {
		return fmt.Errorf("%w: reading payload size: %w", ErrNotBzImage, err)
	}
	want := int64(binary.LittleEndian.Uint32(trailer[:]))
	if want == 0 {
		return fmt.Errorf("%w: payload declares an empty kernel", ErrNotBzImage)
	}
	if want > MaxVmlinuxSize {
		return fmt.Errorf("vmlinux of %d bytes: %w (limit %d)", want, ErrTooLarge, MaxVmlinuxSize)
	}
	magic := make([]byte, 6)
	if err := readFull(bzImage, magic, h.payloadOffset); err != nil {
		return fmt.Errorf("%w: reading payload magic: %w", ErrNotBzImage, err)
	}
	body := io.NewSectionReader(bzImage, h.payloadOffset, h.payloadLength-4)
	chk := &elfChecker{w: out}
	lw := &limitedWriter{w: chk, max: want}
	comp := compression(magic)
	switch comp {
	case "lz4":
		err = unlz4Legacy(body, lw, h.payloadLength, want)
	case "gzip":
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(body); err == nil {
			zr.Multistream(false)
			_, err = io.Copy(lw, zr)
		}
	case "bzip2":
		_, err = io.Copy(lw, bzip2.NewReader(body))
	default:
		return fmt.Errorf("%w %s", ErrUnsupportedCompression, comp)
	}
	if err != nil {
		return fmt.Errorf("decompressing %s kernel payload: %w", comp, err)
	}
	if lw.n != want {
		return fmt.Errorf("%w: %s payload decompressed to %d bytes, header says %d", ErrNotBzImage, comp, lw.n, want)
	}
	if _, err := chk.verify(); err != nil {
		return err
	}
	return nil
}

// unlz4Legacy decodes lz4 legacy frames: the magic, then blocks of a le32
// compressed size and an lz4 block of at most 8 MiB decompressed. The
// kernel's own decoder also accepts the magic again between blocks. The
// buffers are sized by the input and output sizes, so a tiny bogus image
// does not allocate 16 MiB.
func unlz4Legacy(r io.Reader, w io.Writer, inSize, outSize int64) error {
	br := bufio.NewReaderSize(r, int(min(inSize, 1<<20)))
	var word [4]byte
	if _, err := io.ReadFull(br, word[:]); err != nil || binary.LittleEndian.Uint32(word[:]) != lz4LegacyMagic {
		return errors.New("no lz4 legacy magic")
	}
	src := make([]byte, min(int64(lz4.CompressBlockBound(lz4LegacyBlock)), inSize))
	dst := make([]byte, min(lz4LegacyBlock, outSize))
	var in int64 = 4
	for {
		_, err := io.ReadFull(br, word[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lz4 block size at offset %d: truncated", in)
		}
		n := binary.LittleEndian.Uint32(word[:])
		in += 4
		if n == lz4LegacyMagic {
			continue
		}
		if n == 0 || int64(n) > int64(len(src)) {
			return fmt.Errorf("lz4 block at offset %d: size %d out of range (1..%d)", in, n, len(src))
		}
		if _, err := io.ReadFull(br, src[:n]); err != nil {
			return fmt.Errorf("lz4 block at offset %d: truncated (%d bytes declared)", in, n)
		}
		m, err := lz4.UncompressBlock(src[:n], dst)
		if err != nil {
			return fmt.Errorf("lz4 block at offset %d: %w", in, err)
		}
		in += int64(n)
		if _, err := w.Write(dst[:m]); err != nil {
			return err
		}
	}
}

// limitedWriter fails a write that would take the total over max.
type limitedWriter struct {
	w   io.Writer
	n   int64
	max int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.max {
		return 0, fmt.Errorf("decompressed kernel exceeds the %d bytes its header declares: %w", l.max, ErrTooLarge)
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// noteRange collects the bytes of one PT_NOTE segment as they stream past.
type noteRange struct {
	off int64
	buf []byte
}

// elfChecker passes bytes through to w while it checks the ELF header and
// collects the note segments, so the kernel is verified without holding it
// in memory.
type elfChecker struct {
	w      io.Writer
	off    int64
	head   []byte
	parsed bool
	err    error
	notes  []noteRange
}

func (c *elfChecker) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	p = p[:n]
	if !c.parsed {
		take := min(len(p), elfHeadSize-len(c.head))
		c.head = append(c.head, p[:take]...)
		if len(c.head) == elfHeadSize {
			c.parse()
		}
	}
	if c.parsed && c.err == nil {
		for i := range c.notes {
			copyRange(c.notes[i].buf, c.notes[i].off, p, c.off)
		}
	}
	c.off += int64(n)
	return n, err
}

// copyRange copies the overlap of src (at file offset srcOff) into dst (at
// file offset dstOff).
func copyRange(dst []byte, dstOff int64, src []byte, srcOff int64) {
	lo := max(dstOff, srcOff)
	hi := min(dstOff+int64(len(dst)), srcOff+int64(len(src)))
	if lo < hi {
		copy(dst[lo-dstOff:hi-dstOff], src[lo-srcOff:hi-srcOff])
	}
}

// parse reads the ELF and program headers from head and sets up the note
// ranges, filling what head already holds.
func (c *elfChecker) parse() {
	c.parsed = true
	progs, err := parseELFHead(c.head)
	if err != nil {
		c.err = err
		return
	}
	for _, p := range progs {
		if p.typ != uint32(elf.PT_NOTE) || p.filesz == 0 {
			continue
		}
		if p.filesz > maxNoteSize || p.off > MaxVmlinuxSize {
			c.err = fmt.Errorf("%w: note segment at %d of %d bytes out of range", ErrNotPVH, p.off, p.filesz)
			return
		}
		r := noteRange{off: int64(p.off), buf: make([]byte, p.filesz)}
		copyRange(r.buf, r.off, c.head, 0)
		c.notes = append(c.notes, r)
	}
}

// verify finishes the check after the last write and returns the PVH entry.
func (c *elfChecker) verify() (uint64, error) {
	if !c.parsed {
		c.parse()
	}
	if c.err != nil {
		return 0, c.err
	}
	for _, r := range c.notes {
		if r.off+int64(len(r.buf)) > c.off {
			return 0, fmt.Errorf("%w: note segment at %d runs past the end of the %d-byte file", ErrNotPVH, r.off, c.off)
		}
		if entry, ok, err := findPVHNote(r.buf); err != nil {
			return 0, err
		} else if ok {
			return entry, nil
		}
	}
	return 0, errNoPVHNote
}

type elfProg struct {
	typ    uint32
	off    uint64
	filesz uint64
}

// parseELFHead checks an x86-64 little-endian executable ELF header and
// returns its program headers, which must lie within head.
func parseELFHead(head []byte) ([]elfProg, error) {
	if len(head) < 64 {
		return nil, fmt.Errorf("%w: %d bytes is shorter than an ELF header", ErrNotPVH, len(head))
	}
	if string(head[:4]) != elf.ELFMAG {
		return nil, fmt.Errorf("%w: no ELF magic", ErrNotPVH)
	}
	if elf.Class(head[elf.EI_CLASS]) != elf.ELFCLASS64 || elf.Data(head[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("%w: not a 64-bit little-endian ELF", ErrNotPVH)
	}
	le := binary.LittleEndian
	if t := elf.Type(le.Uint16(head[0x10:])); t != elf.ET_EXEC {
		return nil, fmt.Errorf("%w: ELF type %v, want ET_EXEC", ErrNotPVH, t)
	}
	if m := elf.Machine(le.Uint16(head[0x12:])); m != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w: machine %v, want EM_X86_64", ErrNotPVH, m)
	}
	phoff := le.Uint64(head[0x20:])
	phentsize := uint64(le.Uint16(head[0x36:]))
	phnum := uint64(le.Uint16(head[0x38:]))
	if phnum == 0 || phnum > maxProgs {
		return nil, fmt.Errorf("%w: %d program headers", ErrNotPVH, phnum)
	}
	if phentsize < 56 {
		return nil, fmt.Errorf("%w: program header size %d, want at least 56", ErrNotPVH, phentsize)
	}
	if phoff > uint64(len(head)) || phnum*phentsize > uint64(len(head))-phoff {
		return nil, fmt.Errorf("%w: program headers at %d not within the first %d bytes", ErrNotPVH, phoff, len(head))
	}
	progs := make([]elfProg, phnum)
	for i := range progs {
		p := head[phoff+uint64(i)*phentsize:]
		progs[i] = elfProg{typ: le.Uint32(p), off: le.Uint64(p[8:]), filesz: le.Uint64(p[32:])}
	}
	return progs, nil
}

// findPVHNote scans ELF notes for Xen's PHYS32_ENTRY.
func findPVHNote(b []byte) (entry uint64, ok bool, err error) {
	le := binary.LittleEndian
	align4 := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(b) > 0 {
		if len(b) < 12 {
			return 0, false, fmt.Errorf("%w: truncated ELF note header", ErrNotPVH)
		}
		namesz, descsz, typ := uint64(le.Uint32(b)), uint64(le.Uint32(b[4:])), le.Uint32(b[8:])
		b = b[12:]
		if align4(namesz) > uint64(len(b)) {
			return 0, false, fmt.Errorf("%w: ELF note name of %d bytes overruns its segment", ErrNotPVH, namesz)
		}
		name := b[:namesz]
		b = b[align4(namesz):]
		if align4(descsz) > uint64(len(b)) {
			return 0, false, fmt.Errorf("%w: ELF note descriptor of %d bytes overruns its segment", ErrNotPVH, descsz)
		}
		desc := b[:descsz]
		b = b[align4(descsz):]
		if string(name) != "Xen\x00" || typ != xenElfnotePhys32Entry {
			continue
		}
		switch len(desc) {
		case 4:
			return uint64(le.Uint32(desc)), true, nil
		case 8:
			return le.Uint64(desc), true, nil
		}
		return 0, false, fmt.Errorf("%w: PVH entry note of %d bytes", ErrNotPVH, len(desc))
	}
	return 0, false, nil
}

// PVHEntry checks that r (size bytes) holds an x86-64 ELF kernel QEMU can
// boot through PVH and returns its 32-bit physical entry point.
func PVHEntry(r io.ReaderAt, size int64) (uint64, error) {
	if size > MaxVmlinuxSize {
		return 0, fmt.Errorf("vmlinux of %d bytes: %w (limit %d)", size, ErrTooLarge, MaxVmlinuxSize)
	}
	head := make([]byte, min(max(size, 0), elfHeadSize))
	if err := readFull(r, head, 0); err != nil {
		return 0, fmt.Errorf("%w: reading ELF header: %w", ErrNotPVH, err)
	}
	progs, err := parseELFHead(head)
	if err != nil {
		return 0, err
	}
	for _, p := range progs {
		if p.typ != uint32(elf.PT_NOTE) || p.filesz == 0 {
			continue
		}
		if p.filesz > maxNoteSize || p.off > uint64(size) || p.filesz > uint64(size)-p.off {
			return 0, fmt.Errorf("%w: note segment at %d of %d bytes out of range", ErrNotPVH, p.off, p.filesz)
		}
		b := make([]byte, p.filesz)
		if err := readFull(r, b, int64(p.off)); err != nil {
			return 0, fmt.Errorf("%w: reading note segment: %w", ErrNotPVH, err)
		}
		if entry, ok, err := findPVHNote(b); err != nil {
			return 0, err
		} else if ok {
			return entry, nil
		}
	}
	return 0, errNoPVHNote
}
