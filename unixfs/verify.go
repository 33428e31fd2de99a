package unixfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// ErrMismatch is wrapped by Verify when the content does not hash to the CID.
var ErrMismatch = errors.New("unixfs: content does not match cid")

// ErrInvalidCID is wrapped by ParseCID (and Verify) for a CID this package cannot
// check.
var ErrInvalidCID = errors.New("unixfs: invalid cid")

// maxCIDLen bounds the string ParseCID looks at; a sha2-256 CIDv1 in base32 is 59
// characters and no supported multibase needs more than twice that.
const maxCIDLen = 128

// ParseCID parses a file CID as Aleph accepts it for item_type "ipfs": a CIDv0
// ("Qm…", base58btc) or a CIDv1 in any multibase go-cid decodes (ipfs prints base32,
// "bafy…" for dag-pb roots and "bafk…" for single raw blocks), with a 32-byte
// sha2-256 multihash and the dag-pb or raw codec.
func ParseCID(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, fmt.Errorf("%w: empty string", ErrInvalidCID)
	}
	if len(s) > maxCIDLen {
		return cid.Undef, fmt.Errorf("%w: %d characters, longer than %d", ErrInvalidCID, len(s), maxCIDLen)
	}
	if strings.TrimSpace(s) != s {
		return cid.Undef, fmt.Errorf("%w: %q has surrounding whitespace", ErrInvalidCID, s)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %q: %w", ErrInvalidCID, s, err)
	}
	pre := c.Prefix()
	switch {
	case pre.Version != 0 && pre.Version != 1:
		return cid.Undef, fmt.Errorf("%w: %q: cid version %d", ErrInvalidCID, s, pre.Version)
	case pre.Codec != cid.DagProtobuf && pre.Codec != cid.Raw:
		return cid.Undef, fmt.Errorf("%w: %q: codec 0x%x is neither dag-pb nor raw", ErrInvalidCID, s, pre.Codec)
	case pre.MhType != mh.SHA2_256 || pre.MhLength != 32:
		return cid.Undef, fmt.Errorf("%w: %q: multihash 0x%x/%d is not sha2-256", ErrInvalidCID, s, pre.MhType, pre.MhLength)
	}
	return c, nil
}

// Candidates returns the profiles that can produce c, in the order Verify tries
// them. A CIDv0 only comes from
// KuboV0. A CIDv1 is what `ipfs add --cid-version=1` (KuboV1) or the IPIP-499 profile
// prints; both use raw leaves, which is the only CIDv1 shape pyaleph re-adds with.
func Candidates(c cid.Cid) []Profile {
	if c.Version() == 0 {
		return []Profile{KuboV0}
	}
	return []Profile{KuboV1, V1_2025}
}

// Verify reads r to the end and checks that it is the file with CID want. The
// profile comes from the CID: v0 is checked with KuboV0; v1 with KuboV1 and V1_2025
// at once, over a single pass of r (the two builders run concurrently and are fed the
// same bytes), and matches if either does. It returns an error wrapping ErrMismatch
// that names the CIDs computed, ErrInvalidCID for a bad want, or the read error.
func Verify(r io.Reader, want string) error {
	return VerifyContext(context.Background(), r, want)
}

// VerifyContext is Verify with a context that stops the import between chunks.
func VerifyContext(ctx context.Context, r io.Reader, want string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := ParseCID(want)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("unixfs: verify %s: nil reader", want)
	}
	ps := Candidates(c)
	got, err := sumMany(ctx, r, ps)
	if err != nil {
		return fmt.Errorf("unixfs: verify %s: %w", want, err)
	}
	for _, g := range got {
		if g.Equals(c) {
			return nil
		}
	}
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s gives %s", p.Name, got[i])
	}
	return fmt.Errorf("%w: want %s, %s", ErrMismatch, want, b.String())
}

// sumMany computes the CID of r under each profile, reading r once. With one
// profile it is Sum. With more, a copier reads r into a small ring of shared,
// read-only buffers and hands each buffer to every builder over its own bounded
// channel; the builders run concurrently and memory stays constant (fanBuffers ×
// fanBufSize plus the builders' own chunks).
func sumMany(ctx context.Context, r io.Reader, ps []Profile) ([]cid.Cid, error) {
	if len(ps) == 1 {
		c, err := sum(ctx, r, ps[0])
		if err != nil {
			return nil, err
		}
		return []cid.Cid{c}, nil
	}
	free := make(chan *fanBuf, fanBuffers)
	type result struct {
		c   cid.Cid
		err error
	}
	results := make([]chan result, len(ps))
	readers := make([]*fanReader, len(ps))
	for i, p := range ps {
		fr := &fanReader{ch: make(chan *fanBuf, fanBuffers), free: free}
		readers[i] = fr
		results[i] = make(chan result, 1)
		go func(ch chan<- result) {
			c, err := sum(ctx, fr, p)
			// A builder that stops early keeps draining so the copier never blocks.
			fr.drain()
			ch <- result{c, err}
		}(results[i])
	}

	readErr := fanOut(ctx, r, free, readers)

	out := make([]cid.Cid, len(ps))
	var firstErr error
	for i := range ps {
		res := <-results[i]
		if res.err != nil && firstErr == nil {
			firstErr = res.err
		}
		out[i] = res.c
	}
	if firstErr != nil {
		// A read error reaches every builder through its fanReader, wrapped once.
		return nil, firstErr
	}
	if readErr != nil {
		return nil, fmt.Errorf("read input: %w", readErr)
	}
	return out, nil
}

const (
	fanBuffers = 8
	fanBufSize = 128 << 10
)

// fanBuf is one read of the input, shared read-only by every builder; the last
// builder to finish with it returns it to the free list.
type fanBuf struct {
	b    []byte
	n    int
	refs atomic.Int32
}

// fanOut copies r into the builders' channels until EOF, an error or ctx is done,
// then closes the channels, setting each reader's error first. It returns the read
// error, if any.
func fanOut(ctx context.Context, r io.Reader, free chan *fanBuf, readers []*fanReader) error {
	var err error
	empty, allocated := 0, 0
	for err == nil {
		if err = ctx.Err(); err != nil {
			break
		}
		var fb *fanBuf
		select {
		case fb = <-free:
		default:
			// Allocate lazily, so a small input costs one buffer, not the ring.
			if allocated < fanBuffers {
				allocated++
				fb = &fanBuf{b: make([]byte, fanBufSize)}
			} else {
				fb = <-free
			}
		}
		var n int
		n, err = r.Read(fb.b)
		if n < 0 || n > len(fb.b) {
			n, err = 0, errors.New("reader returned an invalid count")
		}
		if n == 0 {
			free <- fb
			if err == nil {
				if empty++; empty >= maxEmptyReads {
					err = io.ErrNoProgress
				}
			}
			continue
		}
		empty = 0
		fb.n = n
		fb.refs.Store(int32(len(readers)))
		for _, fr := range readers {
			fr.ch <- fb
		}
	}
	if err == io.EOF {
		err = nil
	}
	for _, fr := range readers {
		fr.err = err
		close(fr.ch)
	}
	return err
}

// fanReader is the io.Reader one builder sees.
type fanReader struct {
	ch   chan *fanBuf
	free chan *fanBuf
	cur  *fanBuf
	off  int
	err  error // set before ch is closed
}

func (f *fanReader) Read(p []byte) (int, error) {
	if f.cur == nil {
		fb, ok := <-f.ch
		if !ok {
			if f.err != nil {
				return 0, f.err
			}
			return 0, io.EOF
		}
		f.cur, f.off = fb, 0
	}
	n := copy(p, f.cur.b[f.off:f.cur.n])
	f.off += n
	if f.off == f.cur.n {
		f.release()
	}
	return n, nil
}

func (f *fanReader) release() {
	if f.cur.refs.Add(-1) == 0 {
		f.free <- f.cur
	}
	f.cur = nil
}

func (f *fanReader) drain() {
	if f.cur != nil {
		f.release()
	}
	for fb := range f.ch {
		f.cur = fb
		f.release()
	}
}
