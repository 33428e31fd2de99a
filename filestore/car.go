package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strings"

	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/verifcid"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	car "github.com/ipld/go-car/v2"

	"github.com/go-aleph/go-aleph/unixfs"
)

// Bounds on a CAR upload, beyond the caller's byte limit.
const (
	maxCARHeader  = 64 << 10 // a header names a few roots
	maxCARSection = 4 << 20  // one block (IPFS caps them at 2 MiB) and its CID
	// maxCARBlocks bounds the per-block metadata AddCAR keeps to check the DAG
	// (about 100–200 bytes each).
	maxCARBlocks = 1 << 20
)

func (s *Store) addCAR(ctx context.Context, r io.Reader, limit int64, wantRoot string) (Info, error) {
	want, err := parseWantCID(wantRoot)
	if err != nil {
		return Info{}, err
	}
	if r == nil {
		return Info{}, errors.New("filestore: add car: nil reader")
	}
	op := s.beginAdd()
	defer op.end()
	lr := &limitReader{r: r, limit: limit}
	root, m, err := s.readCAR(ctx, op, lr, want)
	if err != nil {
		return Info{}, fmt.Errorf("filestore: add car: %w", failure(ctx, lr, err))
	}
	hash := wantRoot
	if hash == "" {
		hash = root.String()
	}
	if err := s.finishRoot(ctx, hash, m); err != nil {
		return Info{}, fmt.Errorf("filestore: add car: %w", err)
	}
	return Info{Hash: hash, Engine: EngineIPFS, Kind: m.kind, Size: m.size}, nil
}

// invalidCAR wraps err as ErrInvalidCAR, and also as ErrTruncated when the
// stream ended inside a section.
func invalidCAR(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w: %w", ErrInvalidCAR, ErrTruncated, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalidCAR, err)
}

// readCAR stores the blocks of the CAR stream and checks its root's DAG.
func (s *Store) readCAR(ctx context.Context, op *addOp, r io.Reader, want cid.Cid) (cid.Cid, manifest, error) {
	br, err := car.NewBlockReader(r, car.MaxAllowedHeaderSize(maxCARHeader), car.MaxAllowedSectionSize(maxCARSection))
	if err != nil {
		return cid.Undef, manifest{}, invalidCAR("header: %w", err)
	}
	if len(br.Roots) != 1 {
		return cid.Undef, manifest{}, invalidCAR("%d roots, want exactly 1", len(br.Roots))
	}
	root := br.Roots[0]
	if _, err := unixfs.ParseCID(root.String()); err != nil {
		return cid.Undef, manifest{}, invalidCAR("root: %w", err)
	}
	if want.Defined() && !root.Equals(want) {
		return cid.Undef, manifest{}, invalidCAR("root is %s, want %s", root, want)
	}
	w := &dagWalk{s: s, op: op, nodes: make(map[string]*node)}
	bw := s.newBlockWriter(ctx, op, false)
	defer bw.close()
	for {
		if err := ctx.Err(); err != nil {
			return cid.Undef, manifest{}, err
		}
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// go-car checks each block's bytes against its CID here.
			return cid.Undef, manifest{}, invalidCAR("block %d: %w", len(w.nodes), err)
		}
		c := blk.Cid()
		if _, dup := w.nodes[c.KeyString()]; dup {
			continue
		}
		if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
			return cid.Undef, manifest{}, invalidCAR("block %s: %w", c, err)
		}
		n := decodeNode(c, blk.RawData())
		if err := w.add(c, n); err != nil {
			return cid.Undef, manifest{}, err
		}
		if n.err != nil {
			// Not UnixFS (another codec, say): kept out of the store; an error
			// only if the root's DAG reaches it.
			continue
		}
		if err := bw.put(blk); err != nil {
			return cid.Undef, manifest{}, fmt.Errorf("put block %s: %w", c, err)
		}
	}
	if err := bw.close(); err != nil {
		return cid.Undef, manifest{}, fmt.Errorf("write blocks: %w", err)
	}
	m, err := w.walk(ctx, root)
	if err != nil {
		return cid.Undef, manifest{}, err
	}
	return root, m, nil
}

type nodeKind uint8

const (
	kindRaw  nodeKind = iota // raw codec: file bytes
	kindFile                 // dag-pb UnixFS File or Raw
	kindDir
	kindHAMT
	kindSymlink
)

// node is what the DAG check needs of a block.
type node struct {
	kind   nodeKind
	size   uint64 // raw, file: the bytes it stands for
	links  []cid.Cid
	names  []string // dir, hamt: link names
	bsizes []uint64 // file: the size of each child
	padLen int      // hamt: hex digits of the bucket prefix of link names
	err    error    // not a UnixFS node we can serve
}

func (n *node) fileLike() bool { return n.kind == kindRaw || n.kind == kindFile }

// maxFileSize keeps sizes far from uint64 and int64 overflow.
const maxFileSize = 1 << 62

func decodeNode(c cid.Cid, data []byte) *node {
	switch c.Type() {
	case cid.Raw:
		return &node{kind: kindRaw, size: uint64(len(data))}
	case cid.DagProtobuf:
	default:
		return &node{err: fmt.Errorf("codec 0x%x is neither dag-pb nor raw", c.Type())}
	}
	pn, err := merkledag.DecodeProtobuf(data)
	if err != nil {
		return &node{err: fmt.Errorf("dag-pb: %w", err)}
	}
	fsn, err := ufs.FSNodeFromBytes(pn.Data())
	if err != nil {
		return &node{err: fmt.Errorf("unixfs: %w", err)}
	}
	n := &node{links: make([]cid.Cid, len(pn.Links()))}
	for i, l := range pn.Links() {
		n.links[i] = l.Cid
	}
	switch fsn.Type() {
	case ufs.TFile, ufs.TRaw:
		n.kind = kindFile
		n.bsizes = fsn.BlockSizes()
		if len(n.bsizes) != len(n.links) {
			return &node{err: fmt.Errorf("unixfs file: %d block sizes for %d links", len(n.bsizes), len(n.links))}
		}
		sum := uint64(len(fsn.Data()))
		for _, b := range n.bsizes {
			var carry uint64
			sum, carry = bits.Add64(sum, b, 0)
			if carry != 0 || sum > maxFileSize {
				return &node{err: errors.New("unixfs file: size overflows")}
			}
		}
		if fsn.FileSize() != sum {
			return &node{err: fmt.Errorf("unixfs file: filesize %d, but data and blocks give %d", fsn.FileSize(), sum)}
		}
		n.size = sum
	case ufs.TDirectory, ufs.THAMTShard:
		n.kind = kindDir
		n.names = make([]string, len(pn.Links()))
		for i, l := range pn.Links() {
			n.names[i] = l.Name
		}
		if fsn.Type() == ufs.THAMTShard {
			n.kind = kindHAMT
			f := fsn.Fanout()
			if f < 2 || f > 1<<16 || f&(f-1) != 0 {
				return &node{err: fmt.Errorf("unixfs hamt: fanout %d is not a power of two in 2..65536", f)}
			}
			n.padLen = len(fmt.Sprintf("%X", f-1))
		}
	case ufs.TSymlink:
		n.kind = kindSymlink
	default:
		return &node{err: fmt.Errorf("unixfs type %s not supported", fsn.Type())}
	}
	return n
}

// validName reports whether a directory entry name is one path element.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// dagWalk checks that a root's DAG is complete and well formed, from the
// blocks of the CAR (kept in nodes) and those already in the store.
type dagWalk struct {
	s     *Store
	op    *addOp
	nodes map[string]*node
}

func (w *dagWalk) add(c cid.Cid, n *node) error {
	if len(w.nodes) >= maxCARBlocks {
		return invalidCAR("more than %d blocks", maxCARBlocks)
	}
	w.nodes[c.KeyString()] = n
	return nil
}

func (w *dagWalk) get(ctx context.Context, c cid.Cid) (*node, error) {
	if n, ok := w.nodes[c.KeyString()]; ok {
		if n.err != nil {
			return nil, invalidCAR("block %s: %w", c, n.err)
		}
		return n, nil
	}
	if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
		return nil, invalidCAR("link to %s: %w", c, err)
	}
	// Not in the CAR: the store may have it. Hold it first, so a sweep
	// cannot remove it between this check and the manifest.
	w.op.hold(c)
	blk, err := w.s.bs.Get(ctx, c)
	if ipld.IsNotFound(err) {
		return nil, invalidCAR("missing block %s", c)
	}
	if err != nil {
		return nil, fmt.Errorf("get block %s: %w", c, err)
	}
	n := decodeNode(c, blk.RawData())
	if err := w.add(c, n); err != nil {
		return nil, err
	}
	if n.err != nil {
		return nil, invalidCAR("block %s: %w", c, n.err)
	}
	return n, nil
}

// walk visits every block reachable from root once, checks each link (a file's
// children are file parts of the sizes it states; a directory's entries have
// plain names) and returns the manifest: every reachable CID, the kind and the
// size (a file's, or the sum of the distinct files under a directory).
func (w *dagWalk) walk(ctx context.Context, root cid.Cid) (manifest, error) {
	rn, err := w.get(ctx, root)
	if err != nil {
		return manifest{}, err
	}
	m := manifest{kind: KindFile}
	switch {
	case rn.fileLike():
		m.size = int64(rn.size)
	case rn.kind == kindDir || rn.kind == kindHAMT:
		m.kind = KindDir
	default:
		return manifest{}, invalidCAR("root %s is a symlink", root)
	}
	visited := map[string]bool{}
	counted := map[string]bool{}
	var total uint64
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return manifest{}, err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[c.KeyString()] {
			continue
		}
		visited[c.KeyString()] = true
		m.cids = append(m.cids, c)
		n, err := w.get(ctx, c)
		if err != nil {
			return manifest{}, err
		}
		for i, l := range n.links {
			child, err := w.get(ctx, l)
			if err != nil {
				return manifest{}, err
			}
			switch n.kind {
			case kindFile:
				if !child.fileLike() || child.size != n.bsizes[i] {
					return manifest{}, invalidCAR("file %s: part %d (%s) is not %d bytes of file", c, i, l, n.bsizes[i])
				}
			case kindDir, kindHAMT:
				name := n.names[i]
				if n.kind == kindHAMT {
					if len(name) < n.padLen {
						return manifest{}, invalidCAR("hamt %s: link name %q too short", c, name)
					}
					name = name[n.padLen:]
					if name == "" {
						if child.kind != kindHAMT {
							return manifest{}, invalidCAR("hamt %s: shard link to a non-shard", c)
						}
						break
					}
				}
				if !validName(name) {
					return manifest{}, invalidCAR("directory %s: entry name %q", c, name)
				}
				if child.fileLike() && !counted[l.KeyString()] {
					counted[l.KeyString()] = true
					var carry uint64
					total, carry = bits.Add64(total, child.size, 0)
					if carry != 0 || total > math.MaxInt64 {
						return manifest{}, invalidCAR("directory %s: total size overflows", root)
					}
				}
			default:
				return manifest{}, invalidCAR("%s: links under a symlink or raw block", c)
			}
			stack = append(stack, l)
		}
	}
	if m.kind == KindDir {
		m.size = int64(total)
	}
	return m, nil
}
