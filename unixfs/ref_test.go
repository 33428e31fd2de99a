package unixfs

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// refSum is an independent UnixFS file encoder written from the dag-pb and UnixFS
// specs (no boxo): fixed-size chunks, balanced layout, canonical dag-pb (links then
// data; link = Hash, Name "", Tsize). It streams, keeping one pending list per level.
// It exists to cross-check Sum on shapes the vectors do not reach.
func refSum(t testing.TB, r io.Reader, p Profile) cid.Cid {
	t.Helper()
	var levels [][]refNode
	var leaves int64
	buf := make([]byte, p.ChunkSize)
	push := func(level int, n refNode) {
		for len(levels) <= level {
			levels = append(levels, nil)
		}
		levels[level] = append(levels[level], n)
	}
	// combine closes the pending nodes of level into one node one level up.
	combine := func(level int) {
		push(level+1, refInner(t, p, levels[level]))
		levels[level] = nil
	}
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			leaves++
			push(0, refLeaf(t, p, buf[:n]))
			// Eagerly close full nodes: a full subtree never changes again.
			for l := 0; l < len(levels) && len(levels[l]) == p.MaxLinks; l++ {
				combine(l)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("refSum: read: %v", err)
		}
	}
	if leaves == 0 {
		return refLeaf(t, p, nil).c
	}
	if leaves == 1 {
		return levels[0][0].c
	}
	// The root's depth is the least d with MaxLinks^d >= leaves; every partial
	// subtree keeps its full depth (boxo's balanced layout never shortcuts).
	depth, capacity := 0, int64(1)
	for capacity < leaves {
		capacity *= int64(p.MaxLinks)
		depth++
	}
	for l := 0; l < depth; l++ {
		if l < len(levels) && len(levels[l]) > 0 {
			combine(l)
		}
	}
	if len(levels) != depth+1 || len(levels[depth]) != 1 {
		t.Fatalf("refSum: bad final shape (%d levels)", len(levels))
	}
	for l := 0; l < depth; l++ {
		if len(levels[l]) != 0 {
			t.Fatalf("refSum: level %d not closed", l)
		}
	}
	return levels[depth][0].c
}

type refNode struct {
	c     cid.Cid
	tsize uint64 // block size plus the Tsize of every link
	fsize uint64 // file bytes below this node
}

func refLeaf(t testing.TB, p Profile, data []byte) refNode {
	t.Helper()
	if p.RawLeaves {
		return refNode{c: refCID(t, 1, cid.Raw, data), tsize: uint64(len(data)), fsize: uint64(len(data))}
	}
	var fs []byte
	fs = pbVarint(fs, 1, 2) // Type = File
	if len(data) > 0 {
		fs = pbBytes(fs, 2, data)
	}
	fs = pbVarint(fs, 3, uint64(len(data))) // filesize
	block := pbBytes(nil, 1, fs)            // PBNode.Data
	return refNode{c: refCID(t, p.CIDVersion, cid.DagProtobuf, block), tsize: uint64(len(block)), fsize: uint64(len(data))}
}

func refInner(t testing.TB, p Profile, kids []refNode) refNode {
	t.Helper()
	var block, fs []byte
	var fsize, tsum uint64
	fs = pbVarint(fs, 1, 2)
	for _, k := range kids {
		fsize += k.fsize
		tsum += k.tsize
	}
	fs = pbVarint(fs, 3, fsize)
	for _, k := range kids {
		fs = pbVarint(fs, 4, k.fsize) // blocksizes, unpacked (proto2)
	}
	for _, k := range kids {
		var link []byte
		link = pbBytes(link, 1, k.c.Bytes())
		link = pbBytes(link, 2, nil) // Name ""
		link = pbVarint(link, 3, k.tsize)
		block = pbBytes(block, 2, link) // PBNode.Links
	}
	block = pbBytes(block, 1, fs)
	return refNode{c: refCID(t, p.CIDVersion, cid.DagProtobuf, block), tsize: uint64(len(block)) + tsum, fsize: fsize}
}

func refCID(t testing.TB, version int, codec uint64, block []byte) cid.Cid {
	t.Helper()
	d := sha256.Sum256(block)
	m, err := mh.Encode(d[:], mh.SHA2_256)
	if err != nil {
		t.Fatalf("refCID: %v", err)
	}
	if version == 0 {
		return cid.NewCidV0(m)
	}
	return cid.NewCidV1(codec, m)
}

func pbVarint(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3))
	return binary.AppendUvarint(b, v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3|2))
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// TestRefSumVectors checks the reference encoder itself against the golden CIDs,
// so that agreeing with it means something.
func TestRefSumVectors(t *testing.T) {
	f := loadCIDs(t)
	for _, v := range f.Vectors {
		for _, p := range Profiles() {
			t.Run(fmt.Sprintf("%s/%s", v.Input, p.Name), func(t *testing.T) {
				got := refSum(t, v.Generator.reader(t), p)
				if want := v.CIDs[p.Name]; got.String() != want {
					t.Fatalf("refSum = %s, want %s", got, want)
				}
			})
		}
	}
}
