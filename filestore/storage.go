package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writebackEvery is how much PutStorage writes before asking the kernel to
// start writing it out (sync_file_range), so the final fsync waits for the
// tail only.
const writebackEvery = 8 << 20

func (s *Store) storagePath(hash string) string {
	return filepath.Join(s.dir, storageDir, hash[:2], hash)
}

func (s *Store) putStorage(ctx context.Context, r io.Reader, limit int64, want string) (Info, error) {
	if want != "" && !isSHA256Hex(want) {
		return Info{}, fmt.Errorf("%w: storage hash %s is not 64 lowercase hex digits", ErrInvalidHash, quote(want))
	}
	if r == nil {
		return Info{}, errors.New("filestore: put storage: nil reader")
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "put-*")
	if err != nil {
		return Info{}, fmt.Errorf("filestore: put storage: %w", err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !committed {
			os.Remove(tmp)
		}
	}()

	lr := &limitReader{r: r, limit: limit}
	h := sha256.New()
	n, err := copyHashing(ctx, f, h, lr, !s.opts.NoSync)
	if err != nil {
		return Info{}, fmt.Errorf("filestore: put storage: %w", failure(ctx, lr, err))
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return Info{}, &MismatchError{Want: want, Got: got}
	}
	info := Info{Hash: got, Engine: EngineStorage, Kind: KindFile, Size: n}
	dst := s.storagePath(got)
	// Skip the fsync when the content is already stored (checked again under
	// the lock, since a Delete may run in between).
	synced := false
	if _, err := os.Lstat(dst); err != nil && !s.opts.NoSync {
		if err := fdatasync(f); err != nil {
			return Info{}, fmt.Errorf("filestore: put storage: %w", err)
		}
		synced = true
	}

	unlock := s.lock(got)
	defer unlock()
	if _, err := os.Lstat(dst); err == nil {
		// Already stored (and durable): the same bytes, since they hash the same.
		return info, nil
	}
	if !synced && !s.opts.NoSync {
		if err := fdatasync(f); err != nil {
			return Info{}, fmt.Errorf("filestore: put storage: %w", err)
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return Info{}, fmt.Errorf("filestore: put storage: %w", err)
	}
	if err := s.mkShard(filepath.Dir(dst)); err != nil {
		return Info{}, fmt.Errorf("filestore: put storage: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Info{}, fmt.Errorf("filestore: put storage: %w", err)
	}
	committed = true
	if err := s.syncDir(filepath.Dir(dst)); err != nil {
		return Info{}, fmt.Errorf("filestore: put storage: %w", err)
	}
	return info, nil
}

// copyHashing copies src to f and h (if not nil) with a 1 MiB buffer, checking
// ctx between reads and, with writeback, starting the disk writes as it goes.
// It returns the byte count.
func copyHashing(ctx context.Context, f *os.File, h io.Writer, src io.Reader, writeback bool) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n, flushed int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := io.ReadFull(src, buf)
		if m > 0 {
			if h != nil {
				h.Write(buf[:m])
			}
			if _, err := f.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
			if writeback && n-flushed >= writebackEvery {
				startWriteback(f, flushed, n-flushed)
				flushed = n
			}
		}
		switch rerr {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			// ReadFull's ErrUnexpectedEOF here is a clean end after a short
			// read; a reader's own ErrUnexpectedEOF is kept by limitReader.
			if lr, ok := src.(*limitReader); ok && lr.readErr != nil {
				return n, lr.readErr
			}
			return n, nil
		default:
			return n, rerr
		}
	}
}

// mkShard creates a storage/<hh> directory if needed, durably.
func (s *Store) mkShard(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.syncDir(filepath.Dir(dir))
}

func (s *Store) statStorage(k key) (Info, error) {
	fi, err := os.Stat(s.storagePath(k.s))
	if errors.Is(err, os.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, k.s)
	}
	if err != nil {
		return Info{}, fmt.Errorf("filestore: stat %s: %w", k.s, err)
	}
	return Info{Hash: k.s, Engine: EngineStorage, Kind: KindFile, Size: fi.Size()}, nil
}

// storageFile is an open storage file. Embedding *os.File keeps its ReadAt and
// WriteTo (sendfile/splice to a socket) reachable.
type storageFile struct {
	*os.File
	info Info
}

func (f *storageFile) Info() Info { return f.info }

func (s *Store) openStorage(k key) (File, error) {
	f, err := os.Open(s.storagePath(k.s))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, k.s)
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: open %s: %w", k.s, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("filestore: open %s: %w", k.s, err)
	}
	return &storageFile{File: f, info: Info{Hash: k.s, Engine: EngineStorage, Kind: KindFile, Size: fi.Size()}}, nil
}

func (s *Store) deleteStorage(k key) error {
	unlock := s.lock(k.s)
	defer unlock()
	p := s.storagePath(k.s)
	err := os.Remove(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filestore: delete %s: %w", k.s, err)
	}
	if err := s.syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("filestore: delete %s: %w", k.s, err)
	}
	return nil
}
