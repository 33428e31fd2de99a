package reconcile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Config tunes a session. Zero fields take the DefaultConfig value. Both peers
// should use the same limits: a peer rejects frames above its own MaxFrame,
// MaxRanges or MaxKeys.
type Config struct {
	Branch    int // sub-ranges a mismatched range splits into (default 16)
	IDListMax int // a range with at most this many items is sent as its item list (default 32)
	MaxRounds int // a session with more rounds fails (default 64)
	MaxFrame  int // max bytes of one frame (default 8 MiB); frames we send stay below half of it
	MaxKeys   int // max total keys one session may report as differences (default 1,000,000)
	MaxRanges int // max ranges in one frame, and a bound on ranges waiting for an answer (default 65,536)
}

// ErrConfig reports a Config outside the supported bounds.
var ErrConfig = errors.New("reconcile: invalid config")

// DefaultConfig returns the default limits.
func DefaultConfig() Config {
	return Config{
		Branch:    16,
		IDListMax: 32,
		MaxRounds: 64,
		MaxFrame:  8 << 20,
		MaxKeys:   1_000_000,
		MaxRanges: 1 << 16,
	}
}

// reserve is the most one answered range can add to a frame (except Done,
// which truncates itself): processing stops when less than this is left.
func (c Config) reserve() int {
	doneMin := maxRangeHdr + 2*binary.MaxVarintLen64 + maxFPRange + maxKeyEnc
	return max(c.Branch*maxFPRange, maxRangeHdr+binary.MaxVarintLen64+c.IDListMax*maxKeyEnc, doneMin)
}

func (c Config) normalized() (Config, error) {
	d := DefaultConfig()
	fill := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.Branch, d.Branch)
	fill(&c.IDListMax, d.IDListMax)
	fill(&c.MaxRounds, d.MaxRounds)
	fill(&c.MaxFrame, d.MaxFrame)
	fill(&c.MaxKeys, d.MaxKeys)
	fill(&c.MaxRanges, d.MaxRanges)
	checks := []struct {
		name      string
		v, lo, hi int
	}{
		{"Branch", c.Branch, 2, 1024},
		{"IDListMax", c.IDListMax, 1, 1 << 16},
		{"MaxRounds", c.MaxRounds, 1, 1 << 20},
		{"MaxFrame", c.MaxFrame, 4 * c.reserve(), 1 << 30},
		{"MaxKeys", c.MaxKeys, 1, 1 << 30},
		{"MaxRanges", c.MaxRanges, 2 * (c.Branch + 2), 1 << 24},
	}
	for _, ch := range checks {
		if ch.v < ch.lo || ch.v > ch.hi {
			return c, fmt.Errorf("%w: %s = %d, want %d..%d", ErrConfig, ch.name, ch.v, ch.lo, ch.hi)
		}
	}
	return c, nil
}

// Diff is what one session learned: Need = keys the peer has and we lack;
// Have = keys we have and the peer lacks. Both are sorted and free of
// duplicates.
type Diff struct {
	Need, Have           []Key
	Rounds               int
	BytesSent, BytesRecv int64
}

// Initiate runs a session as the initiator. When it returns a nil error the
// stream is positioned right after the session's last frame, so the caller can
// keep using it. If rw has SetDeadline (net.Conn, libp2p streams), the
// context's deadline and cancellation apply to every read and write, and the
// deadline is cleared on return; otherwise the context is only checked between
// frames. On error the Diff holds what was learned so far.
func Initiate(ctx context.Context, rw io.ReadWriter, s *Set, cfg Config) (Diff, error) {
	return run(ctx, rw, s, cfg, true)
}

// Respond runs a session as the responder; see Initiate. The responder's Need
// is the initiator's Have, and vice versa.
func Respond(ctx context.Context, rw io.ReadWriter, s *Set, cfg Config) (Diff, error) {
	return run(ctx, rw, s, cfg, false)
}

func run(ctx context.Context, rw io.ReadWriter, s *Set, cfg Config, initiator bool) (Diff, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return Diff{}, err
	}
	if rw == nil || s == nil {
		return Diff{}, errors.New("reconcile: nil stream or set")
	}
	if err := ctx.Err(); err != nil {
		return Diff{}, fmt.Errorf("reconcile: %w", err)
	}
	ss := &session{
		set:     s,
		cfg:     cfg,
		rw:      rw,
		budget:  cfg.MaxFrame / 2,
		reserve: cfg.reserve(),
		emptyFP: emptyFingerprint(),
	}
	release := watchContext(ctx, rw)
	err = ss.run(ctx, initiator)
	release()
	if err != nil {
		err = contextError(ctx, err)
	}
	return ss.diff(), err
}

// contextError names the context as the cause when it ended the session,
// including through an I/O deadline that fired a moment before ctx noticed.
func contextError(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			cerr = context.DeadlineExceeded
		}
	}
	switch {
	case cerr == nil:
		return err
	case errors.Is(err, cerr):
		return fmt.Errorf("reconcile: %w", err)
	default:
		return fmt.Errorf("reconcile: %w: %w", cerr, err)
	}
}

// watchContext applies ctx to rw's I/O when rw supports deadlines. The
// returned func undoes it; it waits for a cancellation that is already firing
// so that no stale deadline is left on the stream.
func watchContext(ctx context.Context, rw io.ReadWriter) func() {
	d, ok := rw.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return func() {}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = d.SetDeadline(dl)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = d.SetDeadline(time.Unix(1, 0)) // in the past: wakes blocked reads and writes
	})
	return func() {
		if !stop() {
			<-fired
		}
		_ = d.SetDeadline(time.Time{})
	}
}

type interval struct{ lo, hi Key }

type session struct {
	set     *Set
	cfg     Config
	rw      io.ReadWriter
	budget  int // bytes we put in one frame at most
	reserve int
	emptyFP Fingerprint

	// pending holds the peer's ranges we have not answered yet, sorted.
	pending []rangeMsg
	// open holds the ranges we asked about and the peer may still answer,
	// sorted and coalesced; every range the peer sends must lie inside one.
	open []interval

	need, have []Key
	frames     int
	sent, recv int64
}

func (ss *session) diff() Diff {
	norm := func(ks []Key) []Key {
		slices.SortFunc(ks, Key.Compare)
		return slices.CompactFunc(ks, func(a, b Key) bool { return a.Compare(b) == 0 })
	}
	return Diff{
		Need:      norm(ss.need),
		Have:      norm(ss.have),
		Rounds:    (ss.frames + 1) / 2,
		BytesSent: ss.sent,
		BytesRecv: ss.recv,
	}
}

// run alternates frames with the peer. A side that has nothing to send sends
// an empty frame; the session ends when an empty frame meets a side with
// nothing pending. The "more" flag tells the peer that we deferred ranges
// (frame full), so an empty frame from it must not end the session yet.
func (ss *session) run(ctx context.Context, initiator bool) error {
	all := interval{Lowest(), Highest()}
	ss.open = []interval{all}
	if initiator {
		enc := newEncoder()
		s := ss.set
		s.mu.RLock()
		fp, n := fingerprintOf(&s.sum, s.n), s.n
		s.mu.RUnlock()
		enc.fingerprint(all.lo, all.hi, fp, n)
		if err := ss.send(enc.finish(false)); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := ss.receive()
		if err != nil {
			return err
		}
		if len(f.ranges) == 0 && len(ss.pending) == 0 {
			return nil // the peer ended the session
		}
		if err := ss.accept(f); err != nil {
			return err
		}
		enc, more, err := ss.process()
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := ss.send(enc.finish(more)); err != nil {
			return err
		}
		if enc.ranges == 0 && !more && !f.more {
			return nil // we ended it: the peer has nothing pending either
		}
	}
}

func (ss *session) send(b []byte) error {
	if ss.frames >= 2*ss.cfg.MaxRounds {
		return fmt.Errorf("%w: more than %d", ErrTooManyRounds, ss.cfg.MaxRounds)
	}
	ss.frames++
	n, err := ss.rw.Write(b)
	ss.sent += int64(n)
	if err != nil {
		return fmt.Errorf("reconcile: write frame: %w", err)
	}
	return nil
}

func (ss *session) receive() (frame, error) {
	if ss.frames >= 2*ss.cfg.MaxRounds {
		return frame{}, fmt.Errorf("%w: more than %d", ErrTooManyRounds, ss.cfg.MaxRounds)
	}
	p, n, err := readFrame(ss.rw, ss.cfg.MaxFrame)
	ss.recv += int64(n)
	if err != nil {
		return frame{}, err
	}
	ss.frames++
	return decodeFrame(p, decodeLimits{maxRanges: ss.cfg.MaxRanges, maxKeys: ss.cfg.MaxKeys})
}

// accept checks that the peer only answers what we asked, records its Done
// ranges and queues the ranges that need an answer.
func (ss *session) accept(f frame) error {
	for i := range f.ranges {
		if !ss.asked(&f.ranges[i]) {
			r := &f.ranges[i]
			return fmt.Errorf("%w: range %d [%s, %s) was not asked for", ErrProtocol, i, r.lower, r.upper)
		}
	}
	if !f.more {
		// The peer answered everything it received, so all we asked so far
		// is settled: only what we ask next may come back.
		ss.open = ss.open[:0]
	}
	var fresh []rangeMsg
	for i := range f.ranges {
		switch r := &f.ranges[i]; r.mode {
		case modeDone:
			if err := ss.recordDone(r); err != nil {
				return err
			}
		case modeFingerprint, modeIDList:
			fresh = append(fresh, *r)
		}
	}
	merged, err := mergeRanges(ss.pending, fresh)
	if err != nil {
		return err
	}
	if len(merged) > 4*ss.cfg.MaxRanges {
		return fmt.Errorf("%w: %d ranges waiting for an answer", ErrTooManyRanges, len(merged))
	}
	keys := 0
	for i := range merged {
		keys += len(merged[i].keys)
	}
	if keys > ss.cfg.MaxKeys {
		return fmt.Errorf("%w: %d keys waiting for an answer", ErrTooManyKeys, keys)
	}
	ss.pending = merged
	return nil
}

// asked reports whether r lies inside a range we asked about.
func (ss *session) asked(r *rangeMsg) bool {
	i, _ := slices.BinarySearchFunc(ss.open, r.lower, func(iv interval, k Key) int {
		if iv.hi.Compare(k) <= 0 {
			return -1
		}
		return 1
	})
	return i < len(ss.open) && ss.open[i].lo.Compare(r.lower) <= 0 && r.upper.Compare(ss.open[i].hi) <= 0
}

// mergeRanges merges two sorted range lists and rejects overlaps.
func mergeRanges(a, b []rangeMsg) ([]rangeMsg, error) {
	if len(b) == 0 {
		return a, nil
	}
	out := make([]rangeMsg, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var r rangeMsg
		if j == len(b) || (i < len(a) && a[i].lower.Compare(b[j].lower) < 0) {
			r, i = a[i], i+1
		} else {
			r, j = b[j], j+1
		}
		if n := len(out); n > 0 && out[n-1].upper.Compare(r.lower) > 0 {
			return nil, fmt.Errorf("%w: range [%s, %s) overlaps one not answered yet", ErrProtocol, r.lower, r.upper)
		}
		out = append(out, r)
	}
	return out, nil
}

// mergeIntervals merges two sorted interval lists, coalescing touching ones.
func mergeIntervals(a, b []interval) []interval {
	out := make([]interval, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var iv interval
		if j == len(b) || (i < len(a) && a[i].lo.Compare(b[j].lo) < 0) {
			iv, i = a[i], i+1
		} else {
			iv, j = b[j], j+1
		}
		if n := len(out); n > 0 && out[n-1].hi.Compare(iv.lo) >= 0 {
			if iv.hi.Compare(out[n-1].hi) > 0 {
				out[n-1].hi = iv.hi
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// recordDone takes the peer's verdict on a range we listed, keeping only what
// is still true of our set: a peer cannot make us "have" a key we lack.
func (ss *session) recordDone(r *rangeMsg) error {
	s := ss.set
	var need, have []Key
	s.mu.RLock()
	for _, k := range r.keys {
		if !s.hasLocked(k) {
			need = append(need, k)
		}
	}
	for _, k := range r.theirs {
		if s.hasLocked(k) {
			have = append(have, k)
		}
	}
	s.mu.RUnlock()
	return ss.record(need, have)
}

func (ss *session) record(need, have []Key) error {
	ss.need = append(ss.need, need...)
	ss.have = append(ss.have, have...)
	if n := len(ss.need) + len(ss.have); n > ss.cfg.MaxKeys {
		return fmt.Errorf("%w: %d differences, limit %d", ErrTooManyKeys, n, ss.cfg.MaxKeys)
	}
	return nil
}

// process answers pending ranges in order until the frame is full; the rest
// stays pending and is announced with the "more" flag.
func (ss *session) process() (*encoder, bool, error) {
	enc := newEncoder()
	work := ss.pending
	ss.pending = nil
	var asked []interval
	for i := range work {
		if enc.size()+ss.reserve > ss.budget || enc.ranges+ss.cfg.Branch+2 > ss.cfg.MaxRanges {
			ss.pending = slices.Clone(work[i:])
			break
		}
		var err error
		switch r := &work[i]; r.mode {
		case modeFingerprint:
			err = ss.answerFingerprint(enc, r, &asked)
		case modeIDList:
			err = ss.answerIDList(enc, r, &asked)
		}
		if err != nil {
			return nil, false, err
		}
	}
	ss.open = mergeIntervals(ss.open, asked)
	if len(ss.open) > ss.cfg.MaxRanges {
		// Bound the bookkeeping: one coarse interval still confines the peer.
		ss.open = []interval{{ss.open[0].lo, ss.open[len(ss.open)-1].hi}}
	}
	return enc, len(ss.pending) > 0, nil
}

// answerFingerprint compares the peer's fingerprint with ours: equal ranges
// are settled; small ones are listed; large ones split by count.
func (ss *session) answerFingerprint(enc *encoder, r *rangeMsg, asked *[]interval) error {
	s := ss.set
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, b := s.seek(r.lower), s.seek(r.upper)
	n := s.countBetween(a, b)
	sum := s.sumBetween(a, b)
	if fingerprintOf(&sum, n) == r.fp {
		return nil
	}
	if r.count == 0 && r.fp == ss.emptyFP {
		// The peer has nothing here: skip its empty list and send ours.
		return ss.doneLocked(enc, r.lower, r.upper, nil, a, b, asked)
	}
	if n <= ss.cfg.IDListMax {
		keys := make([]Key, 0, n)
		for p := a; p != b; p = s.next(p) {
			keys = append(keys, s.at(p).key)
		}
		enc.idList(r.lower, r.upper, keys)
		*asked = append(*asked, interval{r.lower, r.upper})
		return nil
	}
	parts := min(ss.cfg.Branch, n)
	lo, p, idx := r.lower, a, 0
	for j := 1; j <= parts; j++ {
		end, hi, next := b, r.upper, n
		if j < parts {
			next = j * n / parts
			end = s.advance(p, next-idx)
			hi = separator(s.at(s.prev(end)).key, s.at(end).key)
		}
		sum := s.sumBetween(p, end)
		enc.fingerprint(lo, hi, fingerprintOf(&sum, next-idx), next-idx)
		lo, p, idx = hi, end, next
	}
	*asked = append(*asked, interval{r.lower, r.upper})
	return nil
}

func (ss *session) answerIDList(enc *encoder, r *rangeMsg, asked *[]interval) error {
	s := ss.set
	s.mu.RLock()
	defer s.mu.RUnlock()
	return ss.doneLocked(enc, r.lower, r.upper, r.keys, s.seek(r.lower), s.seek(r.upper), asked)
}

// doneLocked compares our items [a, b) in [lower, upper) with the peer's list
// and sends both differences. When they do not fit in the frame, it settles a
// prefix [lower, cut) and sends our fingerprint of [cut, upper) so that the
// peer lists that part again next round.
func (ss *session) doneLocked(enc *encoder, lower, upper Key, theirs []Key, a, b pos, asked *[]interval) error {
	s := ss.set
	room := ss.budget - enc.size() - (maxRangeHdr + 2*binary.MaxVarintLen64) - maxFPRange
	var need, have []Key
	used := 0
	cut, truncated := upper, false
	var last Key
	p, j := a, 0
	for p != b || j < len(theirs) {
		var k Key
		ours, peers := false, false
		switch {
		case p == b:
			k, peers = theirs[j], true
		case j == len(theirs):
			k, ours = s.at(p).key, true
		default:
			k = s.at(p).key
			switch c := k.Compare(theirs[j]); {
			case c < 0:
				ours = true
			case c > 0:
				k, peers = theirs[j], true
			default:
				ours, peers = true, true
			}
		}
		if ours != peers {
			sz := keyEncSize(k)
			if used > 0 && used+sz > room {
				cut, truncated = separator(last, k), true
				break
			}
			used += sz
			if ours {
				have = append(have, k)
			} else {
				need = append(need, k)
			}
		}
		if ours {
			p = s.next(p)
		}
		if peers {
			j++
		}
		last = k
	}
	if len(need)+len(have) > 0 {
		enc.done(lower, cut, have, need)
	}
	if truncated {
		c := s.seek(cut)
		sum := s.sumBetween(c, b)
		n := s.countBetween(c, b)
		enc.fingerprint(cut, upper, fingerprintOf(&sum, n), n)
		*asked = append(*asked, interval{cut, upper})
	}
	return ss.record(need, have)
}
