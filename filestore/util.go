package filestore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sync"

	cid "github.com/ipfs/go-cid"

	"github.com/go-aleph/go-aleph/unixfs"
)

// key is a validated hash: the string as given, its engine and, for ipfs, its
// parsed CID.
type key struct {
	s      string
	engine Engine
	c      cid.Cid
}

func parseKey(hash string) (key, error) {
	if isSHA256Hex(hash) {
		return key{s: hash, engine: EngineStorage}, nil
	}
	c, err := unixfs.ParseCID(hash)
	if err != nil {
		return key{}, fmt.Errorf("%w: %s is neither a lowercase sha256 hex nor a cid: %w", ErrInvalidHash, quote(hash), err)
	}
	return key{s: hash, engine: EngineIPFS, c: c}, nil
}

// parseWantCID validates an expected CID (empty: none).
func parseWantCID(want string) (cid.Cid, error) {
	if want == "" {
		return cid.Undef, nil
	}
	c, err := unixfs.ParseCID(want)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %w", ErrInvalidHash, err)
	}
	return c, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// quote shortens s for an error message: hashes come from clients.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// fileName is the name of a key's file under roots/: the string itself when it
// is alphanumeric (every base58, base32, base36 or base16 CID), else "_" and its
// hex, so that a base64 CID (which may hold "/" or "+") is still a plain name.
func fileName(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return "_" + hex.EncodeToString([]byte(s))
		}
	}
	return s
}

const lockStripes = 256

// lock takes the commit/delete lock of a hash, so that an add's final rename
// and a delete of the same hash happen one after the other.
func (s *Store) lock(hash string) func() {
	h := fnv.New32a()
	h.Write([]byte(hash))
	m := &s.locks[h.Sum32()%lockStripes]
	m.Lock()
	return m.Unlock
}

// limitReader counts what it reads, stops one byte past limit, and remembers
// the first error of the underlying reader, so a failure can be classified.
type limitReader struct {
	r       io.Reader
	limit   int64 // ≤ 0: none
	n       int64
	over    bool
	readErr error
}

var errOverLimit = errors.New("over the size limit")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.over {
		return 0, errOverLimit
	}
	if l.limit > 0 {
		if rem := l.limit + 1 - l.n; int64(len(p)) > rem {
			p = p[:rem]
		}
	}
	m, err := l.r.Read(p)
	if m < 0 || m > len(p) {
		m, err = 0, errors.New("reader returned an invalid count")
	}
	l.n += int64(m)
	if err != nil && err != io.EOF && l.readErr == nil {
		l.readErr = err
	}
	if l.limit > 0 && l.n > l.limit {
		l.over = true
		return m, errOverLimit
	}
	return m, err
}

// failure turns the error of an add into the package's errors: over the limit,
// the context ended, the reader failed (truncated), or err itself.
func failure(ctx context.Context, l *limitReader, err error) error {
	switch {
	case l != nil && l.over:
		return &TooLargeError{Limit: l.limit}
	case ctx.Err() != nil:
		return ctx.Err()
	case l != nil && l.readErr != nil:
		return fmt.Errorf("%w: after %d bytes: %w", ErrTruncated, l.n, l.readErr)
	}
	return err
}

// bufPool holds the 1 MiB copy buffers of PutStorage and staging.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// writeSmall writes a small file atomically: tmp file, fsync (unless NoSync),
// rename over path. The caller syncs path's directory.
func (s *Store) writeSmall(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "small-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if !s.opts.NoSync {
		if err := fdatasync(f); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// syncDir makes the entries of dir durable (unless NoSync).
func (s *Store) syncDir(dir string) error {
	if s.opts.NoSync {
		return nil
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// clearDir removes everything inside dir.
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
