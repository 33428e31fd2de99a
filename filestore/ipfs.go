package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"

	"github.com/go-aleph/go-aleph/unixfs"
)

func (s *Store) addUnixFS(ctx context.Context, r io.Reader, limit int64, want string, p *unixfs.Profile) (Info, error) {
	wantCID, err := parseWantCID(want)
	if err != nil {
		return Info{}, err
	}
	if r == nil {
		return Info{}, errors.New("filestore: add unixfs: nil reader")
	}
	var profiles []unixfs.Profile
	switch {
	case p != nil:
		if err := p.Validate(); err != nil {
			return Info{}, fmt.Errorf("filestore: add unixfs: %w", err)
		}
		profiles = []unixfs.Profile{*p}
	case want != "":
		profiles = unixfs.Candidates(wantCID)
	default:
		profiles = []unixfs.Profile{unixfs.KuboV0}
	}

	op := s.beginAdd()
	defer op.end()
	lr := &limitReader{r: r, limit: limit}
	if len(profiles) == 1 {
		cids, root, err := s.importFile(ctx, op, lr, profiles[0])
		if err != nil {
			return Info{}, fmt.Errorf("filestore: add unixfs: %w", failure(ctx, lr, err))
		}
		if want != "" && !root.Equals(wantCID) {
			return Info{}, fmt.Errorf("filestore: add unixfs with %s: %w", profiles[0].Name, &MismatchError{Want: want, Got: root.String()})
		}
		return s.finishFile(ctx, want, root, lr.n, cids)
	}
	return s.addStaged(ctx, op, lr, want, wantCID, profiles)
}

// addStaged copies the input to a temporary file, then imports it with the
// candidate profiles until one gives want. Only the first import stores
// blocks blindly; a later candidate is imported only if its CID (computed
// without storing) matches.
func (s *Store) addStaged(ctx context.Context, op *addOp, lr *limitReader, want string, wantCID cid.Cid, profiles []unixfs.Profile) (Info, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "stage-*")
	if err != nil {
		return Info{}, fmt.Errorf("filestore: add unixfs: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	// Staging is not synced: the file is read back and then dropped.
	size, err := copyHashing(ctx, f, nil, lr, false)
	if err != nil {
		return Info{}, fmt.Errorf("filestore: add unixfs: stage: %w", failure(ctx, lr, err))
	}
	var got []tried
	for i, p := range profiles {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return Info{}, fmt.Errorf("filestore: add unixfs: %w", err)
		}
		if i > 0 {
			c, err := unixfs.Sum(&ctxReader{ctx: ctx, r: f}, p)
			if err != nil {
				return Info{}, fmt.Errorf("filestore: add unixfs: %w", failure(ctx, nil, err))
			}
			if !c.Equals(wantCID) {
				got = append(got, tried{p.Name, c})
				continue
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return Info{}, fmt.Errorf("filestore: add unixfs: %w", err)
			}
		}
		cids, root, err := s.importFile(ctx, op, &ctxReader{ctx: ctx, r: f}, p)
		if err != nil {
			return Info{}, fmt.Errorf("filestore: add unixfs: %w", failure(ctx, nil, err))
		}
		if root.Equals(wantCID) {
			return s.finishFile(ctx, want, root, size, cids)
		}
		got = append(got, tried{p.Name, root})
	}
	notes := make([]string, len(got))
	for i, g := range got {
		notes[i] = g.profile + " gives " + g.c.String()
	}
	return Info{}, fmt.Errorf("filestore: add unixfs (%s): %w", strings.Join(notes, ", "), &MismatchError{Want: want, Got: got[0].c.String()})
}

// tried is a candidate profile that did not give the wanted CID.
type tried struct {
	profile string
	c       cid.Cid
}

// ctxReader stops a read of a local file when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// importFile imports r with profile p into the blockstore, and returns the
// root and the CIDs of the blocks once all are written.
func (s *Store) importFile(ctx context.Context, op *addOp, r io.Reader, p unixfs.Profile) ([]cid.Cid, cid.Cid, error) {
	w := s.newBlockWriter(ctx, op, true)
	root, _, err := unixfs.Build(ctx, r, p, func(c cid.Cid, data []byte) error {
		b, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return err
		}
		return w.put(b)
	})
	if cerr := w.close(); err == nil && cerr != nil {
		err = fmt.Errorf("write blocks: %w", cerr)
	}
	if err != nil {
		return nil, cid.Undef, err
	}
	return w.cids, root, nil
}

// finishFile makes the blocks durable, then writes the root's manifest.
func (s *Store) finishFile(ctx context.Context, want string, root cid.Cid, size int64, cids []cid.Cid) (Info, error) {
	hash := want
	if hash == "" {
		hash = root.String()
	}
	if err := s.finishRoot(ctx, hash, manifest{kind: KindFile, size: size, cids: cids}); err != nil {
		return Info{}, fmt.Errorf("filestore: add unixfs: %w", err)
	}
	return Info{Hash: hash, Engine: EngineIPFS, Kind: KindFile, Size: size}, nil
}

func (s *Store) finishRoot(ctx context.Context, hash string, m manifest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.opts.NoSync {
		if err := s.sys.syncBlocks(); err != nil {
			return err
		}
	}
	return s.commitRoot(hash, m)
}

func (s *Store) openIPFS(ctx context.Context, k key) (File, error) {
	kind, size, err := s.readHeader(k)
	if err != nil {
		return nil, err
	}
	if kind == KindDir {
		return nil, fmt.Errorf("%w: %s", ErrIsDir, k.s)
	}
	return s.newFileReader(ctx, k.c, Info{Hash: k.s, Engine: EngineIPFS, Kind: KindFile, Size: size}), nil
}
