package filestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	cid "github.com/ipfs/go-cid"
)

// A manifest records one ipfs root: its kind, its size and the CID of every
// block of its DAG (sorted, without duplicates). Binary layout:
//
//	magic "aleph-filestore root 1\n"
//	kind  1 byte: 'f' file, 'd' directory
//	size  uvarint
//	count uvarint, then count × (uvarint length, CID bytes)
//	sha256 of everything before it (32 bytes)
//
// It is written last, after the blocks are durable, so a manifest never names
// a missing block.
type manifest struct {
	kind string
	size int64
	cids []cid.Cid
}

const manifestMagic = "aleph-filestore root 1\n"

var errBadManifest = errors.New("malformed root manifest")

func (m manifest) encode() []byte {
	var b bytes.Buffer
	b.Grow(len(manifestMagic) + 24 + 40*len(m.cids) + sha256.Size)
	b.WriteString(manifestMagic)
	if m.kind == KindDir {
		b.WriteByte('d')
	} else {
		b.WriteByte('f')
	}
	b.Write(binary.AppendUvarint(nil, uint64(m.size)))
	b.Write(binary.AppendUvarint(nil, uint64(len(m.cids))))
	for _, c := range m.cids {
		cb := c.Bytes()
		b.Write(binary.AppendUvarint(nil, uint64(len(cb))))
		b.Write(cb)
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// decodeHeader reads the kind and size from the start of a manifest.
func decodeHeader(b []byte) (kind string, size int64, rest []byte, err error) {
	if !bytes.HasPrefix(b, []byte(manifestMagic)) || len(b) < len(manifestMagic)+2 {
		return "", 0, nil, errBadManifest
	}
	b = b[len(manifestMagic):]
	switch b[0] {
	case 'f':
		kind = KindFile
	case 'd':
		kind = KindDir
	default:
		return "", 0, nil, errBadManifest
	}
	sz, n := binary.Uvarint(b[1:])
	if n <= 0 || sz > 1<<62 {
		return "", 0, nil, errBadManifest
	}
	return kind, int64(sz), b[1+n:], nil
}

func decodeManifest(b []byte) (manifest, error) {
	if len(b) < sha256.Size {
		return manifest{}, errBadManifest
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return manifest{}, fmt.Errorf("%w: checksum", errBadManifest)
	}
	kind, size, rest, err := decodeHeader(body)
	if err != nil {
		return manifest{}, err
	}
	count, n := binary.Uvarint(rest)
	if n <= 0 || count > uint64(len(rest)) {
		return manifest{}, errBadManifest
	}
	rest = rest[n:]
	m := manifest{kind: kind, size: size, cids: make([]cid.Cid, 0, count)}
	for range count {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return manifest{}, errBadManifest
		}
		c, err := cid.Cast(rest[n : n+int(l)])
		if err != nil {
			return manifest{}, fmt.Errorf("%w: %w", errBadManifest, err)
		}
		m.cids = append(m.cids, c)
		rest = rest[n+int(l):]
	}
	if len(rest) != 0 {
		return manifest{}, fmt.Errorf("%w: trailing bytes", errBadManifest)
	}
	return m, nil
}

// sortCIDs sorts cids by their bytes and drops duplicates.
func sortCIDs(cids []cid.Cid) []cid.Cid {
	slices.SortFunc(cids, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	return slices.CompactFunc(cids, func(a, b cid.Cid) bool { return a.Equals(b) })
}

func (s *Store) rootPath(hash string) string {
	return filepath.Join(s.dir, rootsDir, fileName(hash))
}

// commitRoot writes the manifest of hash. The caller has made its blocks
// durable.
func (s *Store) commitRoot(hash string, m manifest) error {
	m.cids = sortCIDs(m.cids)
	data := m.encode()
	unlock := s.lock(hash)
	defer unlock()
	if err := s.writeSmall(s.rootPath(hash), data); err != nil {
		return fmt.Errorf("write root %s: %w", hash, err)
	}
	if err := s.syncDir(filepath.Join(s.dir, rootsDir)); err != nil {
		return fmt.Errorf("write root %s: %w", hash, err)
	}
	return nil
}

// headerMax bounds what Stat reads of a manifest: magic, kind and size.
const headerMax = len(manifestMagic) + 1 + binary.MaxVarintLen64

func (s *Store) readHeader(k key) (kind string, size int64, err error) {
	f, err := os.Open(s.rootPath(k.s))
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, fmt.Errorf("%w: %s", ErrNotFound, k.s)
	}
	if err != nil {
		return "", 0, fmt.Errorf("filestore: stat %s: %w", k.s, err)
	}
	defer f.Close()
	buf := make([]byte, headerMax)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return "", 0, fmt.Errorf("filestore: stat %s: %w", k.s, err)
	}
	kind, size, _, err = decodeHeader(buf[:n])
	if err != nil {
		return "", 0, fmt.Errorf("filestore: stat %s: %w", k.s, err)
	}
	return kind, size, nil
}

func (s *Store) statRoot(k key) (Info, error) {
	kind, size, err := s.readHeader(k)
	if err != nil {
		return Info{}, err
	}
	return Info{Hash: k.s, Engine: EngineIPFS, Kind: kind, Size: size}, nil
}

func (s *Store) deleteRoot(k key) error {
	unlock := s.lock(k.s)
	defer unlock()
	err := os.Remove(s.rootPath(k.s))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filestore: delete %s: %w", k.s, err)
	}
	if err := s.syncDir(filepath.Join(s.dir, rootsDir)); err != nil {
		return fmt.Errorf("filestore: delete %s: %w", k.s, err)
	}
	return nil
}
