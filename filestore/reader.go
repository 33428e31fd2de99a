package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"
)

// fileReader reads a UnixFS file DAG. boxo's DagReader decodes each leaf
// twice (dag-pb, then UnixFS), copying its bytes each time, and allocates
// both; profiled, that is most of its cost. Here a goroutine walks the DAG
// ahead of the reader, reads each leaf's block file whole into a pooled buffer
// and hands over the file bytes inside it, found by a zero-copy parse.
// Seeking restarts the walk at the offset, descending by the block sizes.
//
// A node's inline data comes before its children's (as UnixFS defines it);
// every DAG this store keeps was checked at import to have consistent sizes,
// and the walk checks them again as it goes.
type fileReader struct {
	s    *Store
	ctx  context.Context
	root cid.Cid
	info Info

	off int64     // read position
	cur *chunk    // chunk being read
	pf  *prefetch // walk in progress, or nil
	err error     // sticky walk error
}

// chunk is a run of file bytes, data, starting at file offset off; buf is
// the pooled buffer data points into (nil if none).
type chunk struct {
	off  int64
	data []byte
	buf  *[]byte
	err  error
}

// prefetchDepth is how many chunks the walk may read ahead: leaves of 256 KiB
// to 1 MiB, so 1–4 MiB.
const prefetchDepth = 4

func (s *Store) newFileReader(ctx context.Context, root cid.Cid, info Info) *fileReader {
	return &fileReader{s: s, ctx: ctx, root: root, info: info}
}

func (r *fileReader) Info() Info { return r.info }

func (r *fileReader) Read(p []byte) (int, error) {
	c, err := r.chunkAt()
	if err != nil {
		return 0, err
	}
	n := copy(p, c.data[r.off-c.off:])
	r.off += int64(n)
	return n, nil
}

// WriteTo writes the rest of the file to w straight from the block buffers.
func (r *fileReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		c, err := r.chunkAt()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := w.Write(c.data[r.off-c.off:])
		r.off += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// chunkAt returns the chunk holding r.off, or io.EOF at the end.
func (r *fileReader) chunkAt() (*chunk, error) {
	if r.err != nil {
		return nil, r.err
	}
	if c := r.cur; c != nil && r.off >= c.off && r.off < c.off+int64(len(c.data)) {
		return c, nil
	}
	if r.off >= r.info.Size {
		return nil, io.EOF
	}
	r.dropCur()
	if r.pf == nil || r.pf.next != r.off {
		// Not where the walk is: start one at r.off.
		r.stopPrefetch()
		r.pf = r.startPrefetch(r.off)
	}
	c, ok := <-r.pf.ch
	switch {
	case !ok:
		r.err = fmt.Errorf("filestore: read %s: file ends at %d, before its size %d", r.info.Hash, r.pf.next, r.info.Size)
	case c.err != nil:
		r.err = c.err
	case c.off != r.off || len(c.data) == 0:
		release(c)
		r.err = fmt.Errorf("filestore: read %s: walk gave offset %d, want %d", r.info.Hash, c.off, r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	r.pf.next = c.off + int64(len(c.data))
	r.cur = &c
	return r.cur, nil
}

func (r *fileReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.info.Size
	default:
		return r.off, fmt.Errorf("filestore: seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return r.off, fmt.Errorf("filestore: seek to negative offset %d", offset)
	}
	r.off = offset
	return offset, nil
}

func (r *fileReader) Close() error {
	r.dropCur()
	r.stopPrefetch()
	if r.err == nil {
		r.err = errors.New("filestore: read of a closed file")
	}
	return nil
}

func (r *fileReader) dropCur() {
	if r.cur != nil {
		release(*r.cur)
		r.cur = nil
	}
}

// prefetch is one walk of the DAG from an offset, on its own goroutine.
type prefetch struct {
	ch   chan chunk
	stop chan struct{}
	done chan struct{}
	next int64 // offset of the next chunk (kept by the reader)
}

func (r *fileReader) startPrefetch(off int64) *prefetch {
	pf := &prefetch{ch: make(chan chunk, prefetchDepth), stop: make(chan struct{}), done: make(chan struct{}), next: off}
	go func() {
		defer close(pf.done)
		defer close(pf.ch)
		if err := r.walk(pf, off); err != nil && err != errStopped {
			pf.send(r.ctx, chunk{err: fmt.Errorf("filestore: read %s: %w", r.info.Hash, err)})
		}
	}()
	return pf
}

// stopPrefetch ends the walk and frees the chunks it read ahead.
func (r *fileReader) stopPrefetch() {
	pf := r.pf
	if pf == nil {
		return
	}
	r.pf = nil
	close(pf.stop)
	for c := range pf.ch {
		release(c)
	}
	<-pf.done
}

var errStopped = errors.New("walk stopped")

func (pf *prefetch) send(ctx context.Context, c chunk) error {
	// A stop wins over free space in the channel, which the reader's drain
	// keeps making.
	select {
	case <-pf.stop:
		release(c)
		return errStopped
	default:
	}
	select {
	case pf.ch <- c:
		return nil
	case <-pf.stop:
		release(c)
		return errStopped
	case <-ctx.Done():
		release(c)
		// The reader gets the context error as the walk's last word.
		select {
		case pf.ch <- chunk{err: ctx.Err()}:
		case <-pf.stop:
		}
		return errStopped
	}
}

// frame is an inner node being walked: its children from idx on, the next
// starting at file offset off.
type frame struct {
	n   *inner
	idx int
	off int64
}

// inner is a file DAG node with children.
type inner struct {
	links []cid.Cid
	sizes []uint64
}

// walk sends the file's bytes from offset start on, leaf by leaf.
func (r *fileReader) walk(pf *prefetch, start int64) error {
	var stack []frame
	// visit handles the node c holding the file bytes [off, off+size): it
	// sends what a leaf holds from start on, or pushes an inner node.
	visit := func(c cid.Cid, off int64, size uint64) error {
		blk, err := r.s.readBlock(c)
		if err != nil {
			return err
		}
		data, in, err := parseFileNode(c, *blk)
		if err != nil {
			putBuf(blk)
			return fmt.Errorf("block %s: %w", c, err)
		}
		sum, carry := uint64(len(data)), uint64(0)
		if in != nil {
			for _, s := range in.sizes {
				if sum, carry = bits.Add64(sum, s, 0); carry != 0 {
					break
				}
			}
		}
		if carry != 0 || sum != size {
			putBuf(blk)
			return fmt.Errorf("block %s holds %d bytes of file, its parent says %d", c, sum, size)
		}
		if end := off + int64(len(data)); len(data) > 0 && start < end {
			from := max(start-off, 0)
			ck := chunk{off: off + from, data: data[from:]}
			if in == nil {
				ck.buf = blk // the chunk keeps the block's buffer
				blk = nil
			} else {
				ck.data = append([]byte(nil), ck.data...)
			}
			if err := pf.send(r.ctx, ck); err != nil {
				putBuf(blk)
				return err
			}
		}
		putBuf(blk)
		if in != nil {
			stack = append(stack, frame{n: in, off: off + int64(len(data))})
		}
		return nil
	}
	if err := visit(r.root, 0, uint64(r.info.Size)); err != nil {
		return err
	}
	for len(stack) > 0 {
		select {
		case <-pf.stop:
			return errStopped
		default:
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
		f := &stack[len(stack)-1]
		if f.idx == len(f.n.links) {
			stack = stack[:len(stack)-1]
			continue
		}
		i, off := f.idx, f.off
		f.idx++
		f.off += int64(f.n.sizes[i])
		if f.off <= start {
			continue // wholly before the start: skip without reading
		}
		if err := visit(f.n.links[i], off, f.n.sizes[i]); err != nil {
			return err
		}
	}
	return nil
}

// parseFileNode returns the file bytes a node holds (a subslice of blk) and,
// for a node with children, its links and their sizes.
func parseFileNode(c cid.Cid, blk []byte) ([]byte, *inner, error) {
	switch c.Type() {
	case cid.Raw:
		return blk, nil, nil
	case cid.DagProtobuf:
	default:
		return nil, nil, fmt.Errorf("codec 0x%x is not a file node", c.Type())
	}
	pbData, hasLinks, err := pbNodeData(blk)
	if err != nil {
		return nil, nil, err
	}
	if hasLinks {
		// Inner nodes are few (one per 174–1024 leaves): decode them fully.
		pn, err := merkledag.DecodeProtobuf(blk)
		if err != nil {
			return nil, nil, err
		}
		fsn, err := ufs.FSNodeFromBytes(pn.Data())
		if err != nil {
			return nil, nil, err
		}
		if t := fsn.Type(); t != ufs.TFile && t != ufs.TRaw {
			return nil, nil, fmt.Errorf("unixfs type %s inside a file", t)
		}
		in := &inner{links: make([]cid.Cid, len(pn.Links())), sizes: fsn.BlockSizes()}
		if len(in.sizes) != len(in.links) {
			return nil, nil, fmt.Errorf("%d block sizes for %d links", len(in.sizes), len(in.links))
		}
		for i, l := range pn.Links() {
			in.links[i] = l.Cid
		}
		return append([]byte(nil), fsn.Data()...), in, nil
	}
	data, err := unixfsFileData(pbData)
	return data, nil, err
}

// pbNodeData finds the Data field of a dag-pb PBNode (field 1, bytes) and
// whether it has Links (field 2), without copying.
func pbNodeData(b []byte) (data []byte, hasLinks bool, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false, fmt.Errorf("dag-pb: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false, fmt.Errorf("dag-pb data: %w", protowire.ParseError(n))
			}
			data, b = v, b[n:]
		case num == 2 && typ == protowire.BytesType:
			hasLinks = true
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, false, fmt.Errorf("dag-pb link: %w", protowire.ParseError(n))
			}
			b = b[n:]
		default:
			return nil, false, fmt.Errorf("dag-pb: unexpected field %d", num)
		}
	}
	return data, hasLinks, nil
}

// unixfsFileData returns the Data field (2) of a UnixFS message of type File
// or Raw, without copying.
func unixfsFileData(b []byte) ([]byte, error) {
	var data []byte
	typ := int64(-1)
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("unixfs: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("unixfs type: %w", protowire.ParseError(n))
			}
			typ, b = int64(v), b[n:]
		case num == 2 && wt == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("unixfs data: %w", protowire.ParseError(n))
			}
			data, b = v, b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return nil, fmt.Errorf("unixfs field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if typ != int64(ufs.TFile) && typ != int64(ufs.TRaw) {
		return nil, fmt.Errorf("unixfs type %d is not a file", typ)
	}
	return data, nil
}

// readBlock reads a block's file whole into a pooled buffer (put it back with
// putBuf).
func (s *Store) readBlock(c cid.Cid) (*[]byte, error) {
	if c.Prefix().MhType == mh.IDENTITY {
		d, err := mh.Decode(c.Hash())
		if err != nil {
			return nil, err
		}
		b := append([]byte(nil), d.Digest...)
		return &b, nil
	}
	f, err := os.Open(s.blockPath(c.Hash()))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("block %s is missing (root deleted and swept?)", c)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxCARSection {
		return nil, fmt.Errorf("block %s: %d bytes is not a block", c, fi.Size())
	}
	bp := getBuf(int(fi.Size()))
	n, err := io.ReadFull(f, *bp)
	if err != nil {
		putBuf(bp)
		return nil, fmt.Errorf("read block %s: %w", c, err)
	}
	*bp = (*bp)[:n]
	return bp, nil
}

// Block buffers, pooled by power-of-two capacity (2^12 … 2^23 bytes).
var blockPools [24]sync.Pool

func getBuf(n int) *[]byte {
	k := bits.Len(uint(max(n, 1) - 1))
	k = max(k, 12)
	if k >= len(blockPools) {
		b := make([]byte, n)
		return &b
	}
	if v := blockPools[k].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<k)
	return &b
}

func putBuf(bp *[]byte) {
	if bp == nil {
		return
	}
	c := cap(*bp)
	if c&(c-1) != 0 || c < 1<<12 {
		return
	}
	if k := bits.Len(uint(c)) - 1; k < len(blockPools) {
		blockPools[k].Put(bp)
	}
}

func release(c chunk) { putBuf(c.buf) }
