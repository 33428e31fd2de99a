package guest

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Archive errors.
var (
	ErrUnsafePath  = errors.New("archive entry escapes its directory")
	ErrZipTooLarge = errors.New("archive too large when extracted")
	ErrZipTooMany  = errors.New("archive has too many entries")
)

// ZipLimits bound what an archive may expand to (zip bombs).
type ZipLimits struct {
	MaxFiles int   // entries; default 20,000
	MaxBytes int64 // total uncompressed bytes actually written; default 256 MiB
}

func (l ZipLimits) withDefaults() ZipLimits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = 20_000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 256 << 20
	}
	return l
}

// ExtractZip unpacks archive into dst, refusing absolute paths, ".."
// components, symlinks and anything beyond the limits. Sizes are counted
// while writing, never taken from the archive's headers.
func ExtractZip(archive []byte, dst string, limits ZipLimits) error {
	limits = limits.withDefaults()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		return fmt.Errorf("open zip: %w", err)
	}
	if len(zr.File) > limits.MaxFiles {
		return fmt.Errorf("%w: %d > %d", ErrZipTooMany, len(zr.File), limits.MaxFiles)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	budget := limits.MaxBytes
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, "/")
		if name == "" || strings.Contains(name, `\`) || !filepath.IsLocal(filepath.FromSlash(name)) {
			return fmt.Errorf("%w: %q", ErrUnsafePath, f.Name)
		}
		path := filepath.Join(dst, filepath.FromSlash(name))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("%w: %q is not a regular file (%s)", ErrUnsafePath, f.Name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create parent of %s: %w", name, err)
		}
		n, err := extractFile(f, path, budget)
		if err != nil {
			return err
		}
		budget -= n
	}
	return nil
}

func extractFile(f *zip.File, path string, budget int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("open %s in zip: %w", f.Name, err)
	}
	defer rc.Close()
	perm := f.Mode().Perm() | 0o600
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", f.Name, err)
	}
	n, err := io.Copy(out, io.LimitReader(rc, budget+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("extract %s: %w", f.Name, err)
	}
	if n > budget {
		return n, fmt.Errorf("%w: at %s", ErrZipTooLarge, f.Name)
	}
	return n, nil
}
