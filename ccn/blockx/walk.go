package blockx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/verifcid"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"

	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/filestore"
)

// maxDepth bounds the recursion of an in-order file walk; balanced UnixFS
// DAGs of any real size are a handful of levels deep.
const maxDepth = 64

// fetch is one Fetch or FetchDAG: its context, bitswap session and counts.
type fetch struct {
	e     *Exchange
	ctx   context.Context
	sess  exchange.Fetcher
	limit int64 // bound on the blocks' bytes (FetchDAG); ≤ 0: none

	blocks int
	bytes  int64
}

// node is what a walk needs of a block.
type node struct {
	links []cid.Cid
	file  bool   // raw leaf, or dag-pb UnixFS file
	data  []byte // a file node's own bytes
	size  uint64 // a file node's declared size
}

// decode reads the links of a raw or dag-pb UnixFS block.
func decode(b blocks.Block) (*node, error) {
	c := b.Cid()
	switch c.Type() {
	case cid.Raw:
		return &node{file: true, data: b.RawData(), size: uint64(len(b.RawData()))}, nil
	case cid.DagProtobuf:
	default:
		return nil, fmt.Errorf("block %s: codec 0x%x is neither dag-pb nor raw: %w", c, c.Type(), ErrUnsupported)
	}
	pn, err := merkledag.DecodeProtobuf(b.RawData())
	if err != nil {
		return nil, fmt.Errorf("block %s: dag-pb: %w: %w", c, ErrUnsupported, err)
	}
	n := &node{links: make([]cid.Cid, len(pn.Links()))}
	for i, l := range pn.Links() {
		if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, l.Cid); err != nil {
			return nil, fmt.Errorf("block %s: link %d: %w: %w", c, i, ErrUnsupported, err)
		}
		n.links[i] = l.Cid
	}
	fsn, err := ufs.FSNodeFromBytes(pn.Data())
	if err != nil {
		return nil, fmt.Errorf("block %s: unixfs: %w: %w", c, ErrUnsupported, err)
	}
	switch fsn.Type() {
	case ufs.TFile, ufs.TRaw:
		n.file, n.data, n.size = true, fsn.Data(), fsn.FileSize()
	case ufs.TDirectory, ufs.THAMTShard, ufs.TSymlink:
	default:
		return nil, fmt.Errorf("block %s: unixfs type %s: %w", c, fsn.Type(), ErrUnsupported)
	}
	return n, nil
}

// count checks a block against the fetch's bounds.
func (f *fetch) count(b blocks.Block) error {
	f.blocks++
	f.bytes += int64(len(b.RawData()))
	f.e.m.block(len(b.RawData()))
	switch {
	case len(b.RawData()) > f.e.cfg.MaxBlockSize:
		return fmt.Errorf("block %s is %d bytes, over %d: %w", b.Cid(), len(b.RawData()), f.e.cfg.MaxBlockSize, ErrLimit)
	case f.blocks > f.e.cfg.MaxBlocks:
		return fmt.Errorf("more than %d blocks: %w", f.e.cfg.MaxBlocks, ErrLimit)
	case f.limit > 0 && f.bytes > f.limit:
		return fmt.Errorf("blocks over %d bytes: %w: %w", f.limit, ErrLimit, &filestore.TooLargeError{Limit: f.limit})
	}
	return nil
}

// local returns a block from the file store, or nil when it is not there.
func (f *fetch) local(c cid.Cid) (blocks.Block, error) {
	b, err := f.e.local.Get(f.ctx, c)
	switch {
	case err == nil:
		return b, nil
	case ipld.IsNotFound(err):
		return nil, nil
	default:
		return nil, fmt.Errorf("local block %s: %w", c, err)
	}
}

// stalled is the error of a block that no peer sent in time.
func (f *fetch) stalled(c cid.Cid) error {
	if err := f.ctx.Err(); err != nil {
		return fmt.Errorf("block %s: %w: %w", c, files.ErrUnavailable, err)
	}
	return fmt.Errorf("no connected peer sent block %s within %s: %w", c, f.e.cfg.StallTimeout, files.ErrUnavailable)
}

// getOne gets a block, locally or from a peer within StallTimeout.
func (f *fetch) getOne(c cid.Cid) (blocks.Block, error) {
	if b, err := f.local(c); b != nil || err != nil {
		return b, err
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.e.cfg.StallTimeout)
	defer cancel()
	b, err := f.sess.GetBlock(ctx, c)
	if err != nil {
		return nil, f.stalled(c)
	}
	return b, nil
}

// wants merges the blocks of several bitswap requests into one channel.
type wants struct {
	ctx    context.Context
	cancel context.CancelFunc
	sess   exchange.Fetcher
	recv   chan blocks.Block
	wg     sync.WaitGroup
}

func newWants(ctx context.Context, sess exchange.Fetcher) *wants {
	w := &wants{sess: sess, recv: make(chan blocks.Block)}
	w.ctx, w.cancel = context.WithCancel(ctx)
	return w
}

func (w *wants) want(cids []cid.Cid) error {
	ch, err := w.sess.GetBlocks(w.ctx, cids)
	if err != nil {
		return err
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for b := range ch {
			select {
			case w.recv <- b:
			case <-w.ctx.Done():
				return
			}
		}
	}()
	return nil
}

// stop cancels the requests and waits for their goroutines.
func (w *wants) stop() {
	w.cancel()
	w.wg.Wait()
}

// next waits for a block, at most StallTimeout.
func (f *fetch) next(w *wants, timer *time.Timer, waitingFor cid.Cid) (blocks.Block, error) {
	timer.Reset(f.e.cfg.StallTimeout)
	select {
	case b := <-w.recv:
		return b, nil
	case <-timer.C:
		return nil, f.stalled(waitingFor)
	case <-f.ctx.Done():
		return nil, f.stalled(waitingFor)
	}
}

// dag writes every distinct block reachable from root as a CAR v1, asking
// bitswap for up to Window blocks at a time. Blocks the file store already
// has are read from it and written too, so that the import does not depend
// on them staying.
func (f *fetch) dag(root blocks.Block, out io.Writer) error {
	car, err := carstorage.NewWritable(out, []cid.Cid{root.Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		return fmt.Errorf("car: %w", err)
	}
	w := newWants(f.ctx, f.sess)
	defer w.stop()
	timer := time.NewTimer(f.e.cfg.StallTimeout)
	defer timer.Stop()

	seen := map[string]bool{root.Cid().KeyString(): true}
	pending := map[string]cid.Cid{}
	var queue []cid.Cid
	ready := []blocks.Block{root}
	for {
		for len(ready) > 0 {
			b := ready[len(ready)-1]
			ready = ready[:len(ready)-1]
			n, err := decode(b)
			if err != nil {
				return err
			}
			if b.Cid().Prefix().MhType != mh.IDENTITY { // the CID holds its bytes
				if err := car.Put(f.ctx, b.Cid().KeyString(), b.RawData()); err != nil {
					return fmt.Errorf("car: %w", err)
				}
			}
			for _, l := range n.links {
				if seen[l.KeyString()] {
					continue
				}
				seen[l.KeyString()] = true
				lb, err := f.local(l)
				switch {
				case err != nil:
					return err
				case lb != nil:
					if err := f.count(lb); err != nil {
						return err
					}
					ready = append(ready, lb)
				default:
					queue = append(queue, l)
				}
			}
		}
		if len(pending) == 0 && len(queue) == 0 {
			return nil
		}
		if free := f.e.cfg.Window - len(pending); free > 0 && len(queue) > 0 {
			batch := queue[:min(free, len(queue))]
			queue = queue[len(batch):]
			for _, c := range batch {
				pending[c.KeyString()] = c
			}
			if err := w.want(batch); err != nil {
				return fmt.Errorf("bitswap: %w", err)
			}
		}
		var waiting cid.Cid
		for _, c := range pending {
			waiting = c
			break
		}
		b, err := f.next(w, timer, waiting)
		if err != nil {
			return err
		}
		if _, ok := pending[b.Cid().KeyString()]; !ok {
			continue
		}
		delete(pending, b.Cid().KeyString())
		if err := f.count(b); err != nil {
			return err
		}
		ready = append(ready, b)
	}
}

// getMany gets blocks (some may repeat) and returns them by CID key.
func (f *fetch) getMany(cids []cid.Cid) (map[string]blocks.Block, error) {
	got := make(map[string]blocks.Block, len(cids))
	var missing []cid.Cid
	for _, c := range cids {
		k := c.KeyString()
		if _, ok := got[k]; ok {
			continue
		}
		b, err := f.local(c)
		if err != nil {
			return nil, err
		}
		got[k] = b // nil until received
		if b == nil {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return got, nil
	}
	w := newWants(f.ctx, f.sess)
	defer w.stop()
	if err := w.want(missing); err != nil {
		return nil, fmt.Errorf("bitswap: %w", err)
	}
	timer := time.NewTimer(f.e.cfg.StallTimeout)
	defer timer.Stop()
	for left := len(missing); left > 0; {
		b, err := f.next(w, timer, missing[0])
		if err != nil {
			return nil, err
		}
		if prev, ok := got[b.Cid().KeyString()]; !ok || prev != nil {
			continue
		}
		got[b.Cid().KeyString()] = b
		left--
	}
	return got, nil
}

// file writes the bytes of the file DAG under root in order: a node's own
// data, then its children, Window children at a time.
func (f *fetch) file(root blocks.Block, limit int64, out io.Writer) error {
	var written int64
	var walk func(b blocks.Block, depth int) error
	walk = func(b blocks.Block, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("file deeper than %d levels: %w", maxDepth, ErrLimit)
		}
		n, err := decode(b)
		if err != nil {
			return err
		}
		if !n.file {
			return fmt.Errorf("block %s inside a file is not part of a file: %w", b.Cid(), ErrUnsupported)
		}
		if len(n.data) > 0 {
			written += int64(len(n.data))
			if limit > 0 && written > limit {
				return fmt.Errorf("file over %d bytes: %w: %w", limit, ErrLimit, &filestore.TooLargeError{Limit: limit})
			}
			if _, err := out.Write(n.data); err != nil {
				return err
			}
		}
		for i := 0; i < len(n.links); i += f.e.cfg.Window {
			part := n.links[i:min(i+f.e.cfg.Window, len(n.links))]
			got, err := f.getMany(part)
			if err != nil {
				return err
			}
			for _, c := range part {
				cb := got[c.KeyString()]
				// Every use counts: a DAG that repeats a block is bounded too.
				if err := f.count(cb); err != nil {
					return err
				}
				if err := walk(cb, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	n, err := decode(root)
	if err != nil {
		return err
	}
	if !n.file {
		return fmt.Errorf("%s: %w", root.Cid(), filestore.ErrIsDir)
	}
	if err := walk(root, 0); err != nil {
		return err
	}
	if uint64(written) != n.size {
		return fmt.Errorf("file %s declares %d bytes, its blocks give %d: %w", root.Cid(), n.size, written, errors.Join(filestore.ErrHashMismatch, ErrUnsupported))
	}
	return nil
}
