// Package initramfs writes the microVM guest's initramfs: a newc cpio
// archive (the format the kernel unpacks into its rootfs) holding the
// aleph-init binary as /init and the kernel modules it loads before it
// mounts the real root. The writer is pure Go, needs no root and is
// reproducible: every entry is owned by 0:0 with mtime 0 and inode numbers
// count up from 1, so the same inputs give the same bytes.
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Limits of the newc format and of this writer.
const (
	// MaxFileSize is the largest file newc can record (32-bit size field).
	MaxFileSize = 1<<32 - 1
	maxNameLen  = 4095 // PATH_MAX minus the NUL
	trailerName = "TRAILER!!!"
	newcMagic   = "070701"
)

// Unix file type bits of the cpio mode field.
const (
	sIFREG = 0o100000
	sIFDIR = 0o040000
	sIFCHR = 0o020000
)

var (
	// ErrBadName is an entry name that is empty, absolute after cleaning,
	// escapes the archive, repeats an earlier entry or lacks its parent
	// directory.
	ErrBadName = errors.New("bad archive entry name")
	// ErrClosed is a write after Close or after an earlier error.
	ErrClosed = errors.New("archive writer closed")
)

// Writer writes a newc cpio archive. Entries must be added parents first:
// the kernel does not create missing directories when it unpacks.
type Writer struct {
	w      io.Writer
	off    int64
	ino    uint32
	names  map[string]bool // every entry so far
	dirs   map[string]bool // directory entries so far
	err    error           // sticky
	closed bool
}

// NewWriter returns a Writer that writes the archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, names: make(map[string]bool), dirs: map[string]bool{".": true}}
}

// AddDir adds a directory.
func (c *Writer) AddDir(name string, mode os.FileMode) error {
	name, err := c.begin(name)
	if err != nil {
		return err
	}
	if err := c.header(name, sIFDIR|unixPerm(mode), 2, 0, 0, 0); err != nil {
		return err
	}
	c.dirs[name] = true
	return nil
}

// AddCharDev adds a character device node.
func (c *Writer) AddCharDev(name string, mode os.FileMode, major, minor uint32) error {
	name, err := c.begin(name)
	if err != nil {
		return err
	}
	return c.header(name, sIFCHR|unixPerm(mode), 1, 0, major, minor)
}

// AddFile adds a regular file of size bytes read from data; data must hold
// exactly size bytes.
func (c *Writer) AddFile(name string, mode os.FileMode, data io.Reader, size int64) error {
	if c.err != nil {
		return c.err
	}
	if size < 0 || size > MaxFileSize {
		return fmt.Errorf("file %s: size %d outside 0..%d", name, size, int64(MaxFileSize))
	}
	name, err := c.begin(name)
	if err != nil {
		return err
	}
	if err := c.header(name, sIFREG|unixPerm(mode), 1, size, 0, 0); err != nil {
		return err
	}
	n, err := io.CopyN(writerFunc(c.write), data, size)
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("file %s: data has %d bytes, %d declared", name, n, size)
		}
		return c.fail(err)
	}
	var extra [1]byte
	if k, _ := io.ReadFull(data, extra[:]); k > 0 {
		return c.fail(fmt.Errorf("file %s: data is longer than the %d bytes declared", name, size))
	}
	return c.pad()
}

// Close writes the trailer. It does not close the underlying writer.
func (c *Writer) Close() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return ErrClosed
	}
	// The trailer is numbered 0 like GNU cpio's, not counted as an inode.
	if err := c.rawHeader(trailerName, 0, 0, 1, 0, 0, 0); err != nil {
		return err
	}
	c.closed = true
	c.err = ErrClosed
	return nil
}

// begin validates and records a new entry's name.
func (c *Writer) begin(name string) (string, error) {
	if c.err != nil {
		return "", c.err
	}
	clean, err := cleanName(name)
	if err != nil {
		return "", err // a bad name is the caller's to fix; the archive is still fine
	}
	if c.names[clean] {
		return "", fmt.Errorf("%w: %s added twice", ErrBadName, clean)
	}
	if dir := path.Dir(clean); !c.dirs[dir] {
		return "", fmt.Errorf("%w: %s: parent directory %s not added first", ErrBadName, clean, dir)
	}
	c.names[clean] = true
	return clean, nil
}

// cleanName turns name into the archive's relative form ("dev/console").
func cleanName(name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q has a .. element", ErrBadName, name)
		}
	}
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if clean == "" || clean == trailerName {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if len(clean) > maxNameLen {
		return "", fmt.Errorf("%w: %d bytes is over %d", ErrBadName, len(clean), maxNameLen)
	}
	return clean, nil
}

// unixPerm maps permission bits; setuid, setgid and sticky may come as
// os.Mode* flags or as raw 0o7000 bits (which os.FileMode leaves unused).
func unixPerm(m os.FileMode) uint32 {
	p := uint32(m.Perm()) | uint32(m)&0o7000
	if m&os.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

func (c *Writer) header(name string, mode, nlink uint32, size int64, rmajor, rminor uint32) error {
	c.ino++
	return c.rawHeader(name, c.ino, mode, nlink, size, rmajor, rminor)
}

// rawHeader writes a newc header and the padded name: 13 eight-digit hex
// fields after the magic, then the name with its NUL, padded to 4 bytes.
func (c *Writer) rawHeader(name string, ino, mode, nlink uint32, size int64, rmajor, rminor uint32) error {
	hdr := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		newcMagic, ino, mode, 0, 0, nlink, 0, uint32(size), 0, 0, rmajor, rminor, len(name)+1, 0)
	if _, err := c.write([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	return c.pad()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// write counts bytes through to the underlying writer; an error sticks.
func (c *Writer) write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.off += int64(n)
	if err != nil {
		c.fail(err)
	}
	return n, err
}

func (c *Writer) pad() error {
	if r := c.off % 4; r != 0 {
		_, err := c.write(make([]byte, 4-r))
		return err
	}
	return nil
}

func (c *Writer) fail(err error) error {
	if c.err == nil {
		c.err = err
	}
	return err
}
