package filestore

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	ipld "github.com/ipfs/go-ipld-format"
)

// maxTarPath bounds an entry's path in WriteTar (PATH_MAX), and with it the
// depth of the walk.
const maxTarPath = 4096

// epoch is the mtime of entries without one, for reproducible archives.
var epoch = time.Unix(0, 0)

func (s *Store) writeTar(ctx context.Context, k key, w io.Writer) error {
	tw := tar.NewWriter(w)
	var err error
	if k.engine == EngineStorage {
		err = s.tarStorage(k, tw)
	} else {
		err = s.tarRoot(ctx, k, tw)
	}
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("filestore: tar %s: %w", k.s, err)
	}
	return nil
}

func (s *Store) tarStorage(k key, tw *tar.Writer) error {
	f, err := s.openStorage(k)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: k.s, Size: f.Info().Size, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("filestore: tar %s: %w", k.s, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("filestore: tar %s: %w", k.s, err)
	}
	return nil
}

func (s *Store) tarRoot(ctx context.Context, k key, tw *tar.Writer) error {
	if _, _, err := s.readHeader(k); err != nil {
		return err
	}
	nd, err := s.dag.Get(ctx, k.c)
	if err != nil {
		return fmt.Errorf("filestore: tar %s: %w", k.s, err)
	}
	if err := s.tarNode(ctx, tw, k.s, nd); err != nil {
		return fmt.Errorf("filestore: tar %s: %w", k.s, err)
	}
	return nil
}

// tarNode writes nd and, for a directory, its entries in link order.
func (s *Store) tarNode(ctx context.Context, tw *tar.Writer, name string, nd ipld.Node) error {
	if len(name) > maxTarPath {
		return fmt.Errorf("path %.64q… longer than %d bytes", name, maxTarPath)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
	var fsn *ufs.FSNode
	if pn, ok := nd.(*merkledag.ProtoNode); ok {
		var err error
		if fsn, err = ufs.FSNodeFromBytes(pn.Data()); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if m := fsn.Mode(); m != 0 {
			hdr.Mode = int64(m.Perm())
		}
		if t := fsn.ModTime(); !t.IsZero() {
			hdr.ModTime = t
		}
	}
	switch {
	case fsn != nil && fsn.IsDir():
		hdr.Typeflag = tar.TypeDir
		if fsn.Mode() == 0 {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		dir, err := uio.NewDirectoryFromNode(s.dag, nd)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return dir.ForEachLink(ctx, func(l *ipld.Link) error {
			if !validName(l.Name) {
				return fmt.Errorf("%s: unsafe entry name %q", name, l.Name)
			}
			child, err := l.GetNode(ctx, s.dag)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", name, l.Name, err)
			}
			return s.tarNode(ctx, tw, name+"/"+l.Name, child)
		})
	case fsn != nil && fsn.Type() == ufs.TSymlink:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = string(fsn.Data())
		hdr.Mode = 0o777
		return tw.WriteHeader(hdr)
	}
	switch n := nd.(type) {
	case *merkledag.RawNode:
		hdr.Size = int64(len(n.RawData()))
	case *merkledag.ProtoNode:
		if t := fsn.Type(); t != ufs.TFile && t != ufs.TRaw {
			return fmt.Errorf("%s: unixfs type %s", name, t)
		}
		hdr.Size = int64(fsn.FileSize())
	default:
		return fmt.Errorf("%s: not a unixfs node", name)
	}
	hdr.Typeflag = tar.TypeReg
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	fr := s.newFileReader(ctx, nd.Cid(), Info{Hash: name, Size: hdr.Size})
	defer fr.Close()
	n, err := fr.WriteTo(tw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%s: %d bytes, its header says %d", name, n, hdr.Size)
	}
	return nil
}
