package filestore

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"
)

// WriteCAR writes an ipfs root and every block of its DAG as a CARv1 stream
// (root first in the header, blocks in manifest order), the format kubo's
// dag/import takes: how the node hands content to an external IPFS node that
// cannot fetch it by itself. Storage-engine content has no DAG: ErrInvalidHash.
func (s *Store) WriteCAR(ctx context.Context, hash string, w io.Writer) error {
	k, err := parseKey(hash)
	if err != nil {
		return err
	}
	if k.engine != EngineIPFS {
		return fmt.Errorf("%w: %s is a storage hash; only ipfs content has blocks", ErrInvalidHash, quote(hash))
	}
	b, err := os.ReadFile(s.rootPath(k.s))
	if os.IsNotExist(err) {
		return fmt.Errorf("%w: %s", ErrNotFound, k.s)
	}
	if err != nil {
		return fmt.Errorf("filestore: car %s: %w", k.s, err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		return fmt.Errorf("filestore: car %s: %w", k.s, err)
	}
	car, err := carstorage.NewWritable(w, []cid.Cid{k.c}, carv2.WriteAsCarV1(true))
	if err != nil {
		return fmt.Errorf("filestore: car %s: %w", k.s, err)
	}
	for _, c := range m.cids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.Prefix().MhType == mh.IDENTITY {
			continue // the CID holds its bytes
		}
		bp, err := s.readBlock(c)
		if err != nil {
			return fmt.Errorf("filestore: car %s: %w", k.s, err)
		}
		err = car.Put(ctx, c.KeyString(), *bp)
		putBuf(bp)
		if err != nil {
			return fmt.Errorf("filestore: car %s: %w", k.s, err)
		}
	}
	return nil
}
