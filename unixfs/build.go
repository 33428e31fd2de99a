package unixfs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Build imports r as a UnixFS file under profile p and hands every block to
// put, children before their parents and the root last, in the order boxo's
// balanced importer adds them; it returns the root CID and the file size.
// The blocks and CIDs are byte for byte those of Import (checked by the tests
// against boxo on every layout edge), but leaves are encoded and hashed on
// several cores, each chunk is read straight into its block, and inner nodes
// are encoded once: Import spends most of its time re-encoding and copying.
//
// put is called from one goroutine at a time and may keep data: every block
// has its own buffer.
func Build(ctx context.Context, r io.Reader, p Profile, put func(c cid.Cid, data []byte) error) (cid.Cid, int64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := p.validate(); err != nil {
		return cid.Undef, 0, err
	}
	if r == nil || put == nil {
		return cid.Undef, 0, errors.New("unixfs: build: nil reader or put")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	leaves := startLeaves(ctx, r, p)
	b := &builder{p: p, put: put, leaves: leaves}
	root, size, err := b.layout()
	if cerr := ctx.Err(); cerr != nil {
		// The reader stopped on the context: what was built is not the file.
		err = cerr
	}
	cancel()
	leaves.wait()
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("unixfs: build: %w", err)
	}
	return root, int64(size), nil
}

// leaf is one chunk, encoded and hashed.
type leaf struct {
	c    cid.Cid
	data []byte // the block
	size uint64 // the chunk's length (UnixFS blocksize)
	err  error
}

// leafStream reads chunks in order and encodes them on a few workers; next
// returns them in chunk order.
type leafStream struct {
	order chan chan leaf
	done  chan struct{}
	peek  *leaf
}

func startLeaves(ctx context.Context, r io.Reader, p Profile) *leafStream {
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	ls := &leafStream{order: make(chan chan leaf, 2*workers), done: make(chan struct{})}
	jobs := make(chan func(), workers)
	for range workers {
		go func() {
			for job := range jobs {
				job()
			}
		}()
	}
	go func() {
		defer close(ls.done)
		defer close(jobs)
		defer close(ls.order)
		chunk := int(p.ChunkSize)
		hdr := leafHeaderLen(p, chunk)
		first := true
		for {
			if err := ctx.Err(); err != nil {
				ls.send(ctx, leaf{err: err})
				return
			}
			// Read the chunk where its bytes go in the block.
			buf := make([]byte, hdr+chunk+leafTrailerMax)
			n, err := readFull(r, buf[hdr:hdr+chunk])
			if err != nil {
				ls.send(ctx, leaf{err: fmt.Errorf("read input: %w", err)})
				return
			}
			if n == 0 && !first {
				return // the end, on a chunk boundary
			}
			first = false
			res := make(chan leaf, 1)
			select {
			case ls.order <- res:
			case <-ctx.Done():
				return
			}
			data := buf[hdr : hdr+n]
			jobs <- func() { res <- encodeLeaf(p, buf, hdr, data) }
			if n < chunk {
				return // a short (or empty) chunk is the last
			}
		}
	}()
	return ls
}

func (ls *leafStream) send(ctx context.Context, l leaf) {
	res := make(chan leaf, 1)
	res <- l
	select {
	case ls.order <- res:
	case <-ctx.Done():
	}
}

// next returns the next leaf, or ok=false at the end of the input.
func (ls *leafStream) next() (leaf, bool) {
	if ls.peek != nil {
		l := *ls.peek
		ls.peek = nil
		return l, true
	}
	res, ok := <-ls.order
	if !ok {
		return leaf{}, false
	}
	return <-res, true
}

// done reports whether the input is exhausted (boxo's db.Done). An error is
// not the end: the next call to next returns it.
func (ls *leafStream) exhausted() bool {
	if ls.peek != nil {
		return false
	}
	l, ok := ls.next()
	if !ok {
		return true
	}
	ls.peek = &l
	return false
}

// wait waits for the reader goroutine (the workers end when it closes jobs).
func (ls *leafStream) wait() {
	for res := range ls.order {
		<-res
	}
	<-ls.done
}

// UnixFS and dag-pb field tags.
const (
	tagPBData   = 0x0a // PBNode.Data, bytes
	tagPBLink   = 0x12 // PBNode.Links, message
	tagLinkHash = 0x0a // PBLink.Hash, bytes
	tagLinkName = 0x12 // PBLink.Name, string
	tagLinkSize = 0x18 // PBLink.Tsize, varint
	tagFSType   = 0x08 // Data.Type, varint
	tagFSData   = 0x12 // Data.Data, bytes
	tagFSSize   = 0x18 // Data.filesize, varint
	tagFSBlock  = 0x20 // Data.blocksizes, repeated varint (not packed)
	fsTypeFile  = 2
	// leafTrailerMax is room for the filesize field after a dag-pb leaf's data.
	leafTrailerMax = 1 + binary.MaxVarintLen64
)

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// leafHeaderLen is the room before a full chunk's bytes in its block: none
// for a raw leaf; for a dag-pb leaf, PBNode.Data's tag and length and the
// UnixFS Type and Data headers.
func leafHeaderLen(p Profile, chunk int) int {
	if p.RawLeaves {
		return 0
	}
	inner := 2 + 1 + uvarintLen(uint64(chunk)) // Type, Data tag + length
	total := inner + chunk + 1 + uvarintLen(uint64(chunk))
	return 1 + uvarintLen(uint64(total)) + inner
}

// encodeLeaf makes the block of a chunk that was read into buf[hdr:]. A
// dag-pb leaf is PBNode{Data: UnixFS{Type: File, Data: chunk, filesize}}; an
// empty chunk (an empty file) has no Data field, as boxo writes it.
func encodeLeaf(p Profile, buf []byte, hdr int, data []byte) leaf {
	n := len(data)
	if p.RawLeaves {
		block := buf[:n:n]
		c := cid.NewCidV1(cid.Raw, sha256Multihash(block))
		return leaf{c: c, data: block, size: uint64(n)}
	}
	var fs []byte
	fs = append(fs, tagFSType, fsTypeFile)
	if n > 0 {
		fs = append(fs, tagFSData)
		fs = binary.AppendUvarint(fs, uint64(n))
	}
	total := len(fs) + n + 1 + uvarintLen(uint64(n))
	head := []byte{tagPBData}
	head = binary.AppendUvarint(head, uint64(total))
	head = append(head, fs...)
	start := hdr - len(head) // ≥ 0: hdr was sized for a full chunk
	copy(buf[start:], head)
	end := hdr + n
	buf[end] = tagFSSize
	end += binary.PutUvarint(buf[end+1:], uint64(n)) + 1
	block := buf[start:end:end]
	return leaf{c: nodeCID(p, block), data: block, size: uint64(n)}
}

func sha256Multihash(b []byte) mh.Multihash {
	sum := sha256.Sum256(b)
	h, _ := mh.Encode(sum[:], mh.SHA2_256) // cannot fail: a known code and its digest length
	return h
}

// nodeCID is the CID of a dag-pb block under the profile's version.
func nodeCID(p Profile, block []byte) cid.Cid {
	h := sha256Multihash(block)
	if p.CIDVersion == 0 {
		return cid.NewCidV0(h)
	}
	return cid.NewCidV1(cid.DagProtobuf, h)
}

// link is a child of an inner node.
type link struct {
	c     cid.Cid
	tsize uint64 // cumulative block bytes of the child's subtree
	size  uint64 // file bytes under the child (UnixFS blocksize)
}

// node is a finished block with what its parent needs.
type node struct {
	link
	data []byte
}

// builder is boxo's balanced layout (importer/balanced) over a leafStream.
type builder struct {
	p      Profile
	put    func(c cid.Cid, data []byte) error
	leaves *leafStream
}

func (b *builder) leafNode() (node, error) {
	l, ok := b.leaves.next()
	if !ok {
		return node{}, errors.New("input ended early (cancelled?)")
	}
	if l.err != nil {
		return node{}, l.err
	}
	return node{link: link{c: l.c, tsize: uint64(len(l.data)), size: l.size}, data: l.data}, nil
}

func (b *builder) layout() (cid.Cid, uint64, error) {
	root, err := b.leafNode() // an empty input gives the empty leaf
	if err != nil {
		return cid.Undef, 0, err
	}
	for depth := 1; !b.leaves.exhausted(); depth++ {
		kids := []link{}
		if err := b.add(&kids, root); err != nil {
			return cid.Undef, 0, err
		}
		if root, err = b.fill(kids, depth); err != nil {
			return cid.Undef, 0, err
		}
	}
	if err := b.put(root.c, root.data); err != nil {
		return cid.Undef, 0, err
	}
	return root.c, root.size, nil
}

// add links child into kids and stores it (boxo's AddChild).
func (b *builder) add(kids *[]link, child node) error {
	*kids = append(*kids, child.link)
	return b.put(child.c, child.data)
}

// fill is boxo's fillNodeRec: it adds children (leaves at depth 1, filled
// nodes of depth-1 above) until the node has MaxLinks or the input ends.
func (b *builder) fill(kids []link, depth int) (node, error) {
	for len(kids) < b.p.MaxLinks && !b.leaves.exhausted() {
		var child node
		var err error
		if depth == 1 {
			child, err = b.leafNode()
		} else {
			child, err = b.fill(nil, depth-1)
		}
		if err != nil {
			return node{}, err
		}
		if err := b.add(&kids, child); err != nil {
			return node{}, err
		}
	}
	return b.inner(kids), nil
}

// inner encodes an inner node: PBNode{Links (links first), Data:
// UnixFS{Type: File, filesize, blocksizes}}.
func (b *builder) inner(kids []link) node {
	var total, tsizes uint64
	fs := []byte{tagFSType, fsTypeFile}
	for _, k := range kids {
		total += k.size
	}
	fs = append(fs, tagFSSize)
	fs = binary.AppendUvarint(fs, total)
	for _, k := range kids {
		fs = append(fs, tagFSBlock)
		fs = binary.AppendUvarint(fs, k.size)
	}
	var out []byte
	for _, k := range kids {
		hb := k.c.Bytes()
		l := 1 + uvarintLen(uint64(len(hb))) + len(hb) + 2 + 1 + uvarintLen(k.tsize)
		out = append(out, tagPBLink)
		out = binary.AppendUvarint(out, uint64(l))
		out = append(out, tagLinkHash)
		out = binary.AppendUvarint(out, uint64(len(hb)))
		out = append(out, hb...)
		out = append(out, tagLinkName, 0) // Name: "", always written
		out = append(out, tagLinkSize)
		out = binary.AppendUvarint(out, k.tsize)
		tsizes += k.tsize
	}
	out = append(out, tagPBData)
	out = binary.AppendUvarint(out, uint64(len(fs)))
	out = append(out, fs...)
	return node{link: link{c: nodeCID(b.p, out), tsize: uint64(len(out)) + tsizes, size: total}, data: out}
}
