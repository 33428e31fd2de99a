package unixfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Sum returns the CID `ipfs add` prints for the bytes of r under profile p. It
// streams: blocks are hashed and dropped, so memory stays at about two chunks plus
// one CID per link of the open inner nodes, whatever the input size. Read errors are
// returned, wrapped.
func Sum(r io.Reader, p Profile) (cid.Cid, error) {
	c, err := sum(context.Background(), r, p)
	if err != nil {
		return cid.Undef, fmt.Errorf("unixfs: %w", err)
	}
	return c, nil
}

// SumBytes is Sum over a byte slice.
func SumBytes(b []byte, p Profile) (cid.Cid, error) {
	return Sum(bytes.NewReader(b), p)
}

// Import builds the UnixFS file DAG of r under profile p, adds every block to ds
// (children before their parents, the root last) and returns the root node. It is
// the code path of Sum, which passes a DAG service that keeps nothing. ctx is passed
// to ds.Add and checked between chunks.
func Import(ctx context.Context, r io.Reader, p Profile, ds ipld.DAGService) (ipld.Node, error) {
	if ds == nil {
		return nil, errors.New("unixfs: import: nil dag service")
	}
	nd, err := build(ctx, r, p, ds, nil)
	if err != nil {
		return nil, fmt.Errorf("unixfs: import: %w", err)
	}
	return nd, nil
}

func sum(ctx context.Context, r io.Reader, p Profile) (cid.Cid, error) {
	d := &discardDAG{}
	root, err := build(ctx, r, p, d, d)
	if err != nil {
		return cid.Undef, err
	}
	return root.Cid(), nil
}

// build runs boxo's balanced layout over a fixed-size splitter. rec, when not nil,
// is told which chunk buffers the builder has finished with so they can be reused.
func build(ctx context.Context, r io.Reader, p Profile, ds ipld.DAGService, rec *discardDAG) (ipld.Node, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New("nil reader")
	}
	// The dag-pb field order is a process-wide boxo setting (IPIP-550); any value
	// but the canonical one changes every inner-node CID, so refuse rather than
	// return CIDs no IPFS node would print.
	if merkledag.DefaultPBNodeFieldOrder != merkledag.PBNodeLinksFirst {
		return nil, errors.New("merkledag.DefaultPBNodeFieldOrder is not links-first; refusing to compute non-canonical cids")
	}
	spl := &splitter{ctx: ctx, r: r, size: int(p.ChunkSize), reuse: rec != nil}
	if rec != nil {
		rec.spl = spl
	}
	params := helpers.DagBuilderParams{
		Dagserv:    ctxDAG{ctx: ctx, DAGService: ds},
		Maxlinks:   p.MaxLinks,
		RawLeaves:  p.RawLeaves,
		CidBuilder: p.prefix(),
	}
	db, err := params.New(spl)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", p.Name, err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", p.Name, err)
	}
	return root, nil
}

// ctxDAG hands the caller's context to the DAG service: boxo's builder calls Add
// with context.TODO().
type ctxDAG struct {
	ctx context.Context
	ipld.DAGService
}

func (c ctxDAG) Add(_ context.Context, n ipld.Node) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if err := c.DAGService.Add(c.ctx, n); err != nil {
		return fmt.Errorf("add block %s: %w", n.Cid(), err)
	}
	return nil
}

func (c ctxDAG) AddMany(_ context.Context, ns []ipld.Node) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return c.DAGService.AddMany(c.ctx, ns)
}

// maxEmptyReads bounds consecutive (0, nil) reads, as bufio does, so a broken
// reader cannot spin the importer forever.
const maxEmptyReads = 100

// splitter is a fixed-size chunker (the same chunks as boxo's
// chunker.NewSizeSplitter) that wraps read errors and, for Sum, recycles buffers.
type splitter struct {
	ctx   context.Context
	r     io.Reader
	size  int
	done  bool
	full  bool // a whole chunk has been read: allocate whole chunks from now on
	reuse bool
	free  [][]byte // buffers the builder has finished with
	out   [][]byte // buffers handed out, oldest first
}

func (s *splitter) Reader() io.Reader { return s.r }

// NextBytes returns the next chunk, or (nil, io.EOF) at the end.
func (s *splitter) NextBytes() ([]byte, error) {
	if s.done {
		return nil, io.EOF
	}
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	buf, n, err := s.fill()
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if n < s.size {
		s.done = true
	}
	if n == 0 {
		s.put(buf)
		return nil, io.EOF
	}
	if !s.reuse && cap(buf)-n > 1024 {
		// A stored short last chunk should not pin a whole chunk-sized buffer.
		buf = bytes.Clone(buf[:n])
	}
	if s.reuse {
		s.out = append(s.out, buf)
	}
	return buf[:n], nil
}

// firstBuf is the initial buffer size: until a full chunk has been read, the buffer
// grows by doubling, so small files never allocate a whole chunk (1 MiB for the
// 2025 profile).
const firstBuf = 16 << 10

// fill reads up to one chunk into a buffer and returns it with the byte count; n is
// below s.size only at the end of the input.
func (s *splitter) fill() ([]byte, int, error) {
	if s.full || len(s.free) > 0 {
		buf := s.get()
		n, err := readFull(s.r, buf[:s.size])
		return buf, n, err
	}
	buf := make([]byte, min(s.size, firstBuf))
	n := 0
	for {
		m, err := readFull(s.r, buf[n:])
		n += m
		if err != nil || n < len(buf) {
			return buf, n, err
		}
		if len(buf) == s.size {
			s.full = true
			return buf, n, nil
		}
		grown := make([]byte, min(s.size, 2*len(buf)))
		copy(grown, buf[:n])
		buf = grown
	}
}

func (s *splitter) get() []byte {
	if k := len(s.free); k > 0 {
		b := s.free[k-1]
		s.free = s.free[:k-1]
		return b
	}
	return make([]byte, s.size)
}

func (s *splitter) put(b []byte) {
	if s.reuse && cap(b) == s.size {
		s.free = append(s.free, b[:s.size])
	}
}

// leafDone is called when the builder has stored a leaf. A leaf's bytes and CID
// are fixed when boxo creates it (a raw leaf is hashed then; a dag-pb leaf copies
// the chunk into its protobuf), and it is stored after that, so its chunk can be
// reused from here on. Leaves are created and stored in chunk order, so the oldest
// outstanding buffer is the leaf's chunk; for raw leaves that is also checked by
// identity, and a mismatch stops recycling for good.
func (s *splitter) leafDone(n ipld.Node) {
	if !s.reuse || len(s.out) == 0 {
		return
	}
	oldest := s.out[0]
	if rn, ok := n.(*merkledag.RawNode); ok {
		d := rn.RawData()
		if len(d) == 0 || &d[0] != &oldest[0] {
			s.reuse, s.out, s.free = false, nil, nil
			return
		}
	}
	s.out = s.out[1:]
	s.put(oldest)
}

// readFull is io.ReadFull that returns (n < len(buf), nil) at EOF and gives up on a
// reader that makes no progress.
func readFull(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		if m < 0 || m > len(buf)-n {
			return n, errors.New("reader returned an invalid count")
		}
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return n, io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return n, nil
}

// discardDAG is the DAG service behind Sum: it keeps no block.
type discardDAG struct {
	spl *splitter
}

var errDiscarded = errors.New("unixfs: sum keeps no blocks")

func (d *discardDAG) Add(_ context.Context, n ipld.Node) error {
	if d.spl != nil && len(n.Links()) == 0 {
		d.spl.leafDone(n)
	}
	return nil
}

func (d *discardDAG) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		if err := d.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (d *discardDAG) Get(context.Context, cid.Cid) (ipld.Node, error) { return nil, errDiscarded }

func (d *discardDAG) GetMany(_ context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption, len(cs))
	for range cs {
		ch <- &ipld.NodeOption{Err: errDiscarded}
	}
	close(ch)
	return ch
}

func (d *discardDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (d *discardDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }
