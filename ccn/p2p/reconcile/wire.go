package reconcile

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
)

// Wire format (docs/ANTI-ENTROPY.md has the whole description):
//
//	frame   = uvarint(len(payload)) payload
//	payload = version(1) flags range*
//	range   = head [lower] upper body
//	head    = mode (bits 0-2) | lowerImplicit (bit 3): lower = the previous upper
//	bound   = float64le(time) hash            (time may be ±Inf, then hash is "")
//	hash    = uvarint(n<<1 | hex) n bytes     (hex: the bytes are lowercase hex decoded, the hash is 2n chars)
//	body    = Fingerprint: fp[16] uvarint(count) | IDList: keys | Done: keys keys | Skip: nothing
//	keys    = uvarint(count) (float64le(time) hash)*   (strictly ascending, inside [lower, upper))
const (
	protocolVersion   = 1
	flagMore          = 1 << 0 // the sender has ranges it has not answered yet
	headLowerImplicit = 1 << 3
	headModeMask      = 0x07
	frameHeadroom     = binary.MaxVarintLen64
)

type mode uint8

const (
	modeSkip        mode = 0 // nothing to do for this range
	modeFingerprint mode = 1 // the sender's fingerprint and count
	modeIDList      mode = 2 // the sender's keys
	modeDone        mode = 3 // the differences: keys the receiver lacks, keys the sender lacks
)

// Sizes used to budget frames: the most one element can take on the wire.
const (
	maxHashEnc  = 2 + MaxHashLen
	maxKeyEnc   = 8 + maxHashEnc
	minKeyEnc   = 8 + 1 + 1
	maxRangeHdr = 1 + 2*maxKeyEnc
	maxFPRange  = maxRangeHdr + 16 + binary.MaxVarintLen64
	minRangeEnc = 1 + 8 + 1 // head (implicit lower) + upper bound with an empty hash
)

// Errors. Every error a peer can cause wraps ErrProtocol or ErrLimit.
var (
	ErrProtocol      = errors.New("reconcile: protocol violation")
	ErrVersion       = fmt.Errorf("%w: unsupported version", ErrProtocol)
	ErrLimit         = errors.New("reconcile: limit exceeded")
	ErrFrameTooLarge = fmt.Errorf("%w: frame too large", ErrLimit)
	ErrTooManyRounds = fmt.Errorf("%w: too many rounds", ErrLimit)
	ErrTooManyKeys   = fmt.Errorf("%w: too many keys", ErrLimit)
	ErrTooManyRanges = fmt.Errorf("%w: too many ranges", ErrLimit)
)

type rangeMsg struct {
	lower, upper Key
	mode         mode
	fp           Fingerprint
	count        uint64
	keys         []Key // IDList: the sender's keys; Done: keys the receiver lacks
	theirs       []Key // Done: keys the sender lacks
}

type frame struct {
	more   bool
	ranges []rangeMsg
}

// encoder builds one frame. The buffer starts with room for the length prefix
// so that finish needs no copy.
type encoder struct {
	buf     []byte
	ranges  int
	prev    Key
	hasPrev bool
}

func newEncoder() *encoder {
	e := &encoder{buf: make([]byte, frameHeadroom, 512)}
	e.buf = append(e.buf, protocolVersion, 0)
	return e
}

// size is the payload size so far.
func (e *encoder) size() int { return len(e.buf) - frameHeadroom }

func (e *encoder) head(m mode, lower, upper Key) {
	if e.hasPrev && lower == e.prev {
		e.buf = append(e.buf, byte(m)|headLowerImplicit)
	} else {
		e.buf = append(e.buf, byte(m))
		e.buf = appendKey(e.buf, lower)
	}
	e.buf = appendKey(e.buf, upper)
	e.prev, e.hasPrev = upper, true
	e.ranges++
}

func (e *encoder) fingerprint(lower, upper Key, fp Fingerprint, count int) {
	e.head(modeFingerprint, lower, upper)
	e.buf = append(e.buf, fp[:]...)
	e.buf = binary.AppendUvarint(e.buf, uint64(count))
}

func (e *encoder) idList(lower, upper Key, keys []Key) {
	e.head(modeIDList, lower, upper)
	e.buf = appendKeys(e.buf, keys)
}

// done sends the differences of a range: first the keys the receiver lacks,
// then the keys the sender lacks.
func (e *encoder) done(lower, upper Key, receiverLacks, senderLacks []Key) {
	e.head(modeDone, lower, upper)
	e.buf = appendKeys(e.buf, receiverLacks)
	e.buf = appendKeys(e.buf, senderLacks)
}

func (e *encoder) skip(lower, upper Key) { e.head(modeSkip, lower, upper) }

// finish returns the whole frame, length prefix included.
func (e *encoder) finish(more bool) []byte {
	if more {
		e.buf[frameHeadroom+1] |= flagMore
	}
	n := e.size()
	var pre [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(pre[:], uint64(n))
	start := frameHeadroom - k
	copy(e.buf[start:], pre[:k])
	return e.buf[start:]
}

func appendKeys(b []byte, keys []Key) []byte {
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendKey(b, k)
	}
	return b
}

func appendKey(b []byte, k Key) []byte {
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(k.Time))
	return appendHash(b, k.Hash)
}

// appendHash writes lowercase hex of even length as its bytes: item hashes are
// 64 hex characters, so this halves the bulk of every key.
func appendHash(b []byte, h string) []byte {
	if h != "" && len(h)%2 == 0 && isLowerHex(h) {
		b = binary.AppendUvarint(b, uint64(len(h)/2)<<1|1)
		out, _ := hex.AppendDecode(b, []byte(h)) // checked: lowercase hex of even length
		return out
	}
	b = binary.AppendUvarint(b, uint64(len(h))<<1)
	return append(b, h...)
}

func keyEncSize(k Key) int {
	h := k.Hash
	if h != "" && len(h)%2 == 0 && isLowerHex(h) {
		n := len(h) / 2
		return 8 + uvarintLen(uint64(n)<<1|1) + n
	}
	return 8 + uvarintLen(uint64(len(h))<<1) + len(h)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// decodeLimits bound what one frame may hold.
type decodeLimits struct {
	maxRanges int
	maxKeys   int
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) rest() int { return len(r.b) - r.off }

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > r.rest() {
		return nil, errTruncated
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

var errTruncated = fmt.Errorf("%w: truncated frame", ErrProtocol)

func (r *reader) uvarint() (uint64, error) {
	x, n := binary.Uvarint(r.b[r.off:])
	if n == 0 {
		return 0, errTruncated
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: varint overflows 64 bits", ErrProtocol)
	}
	r.off += n
	return x, nil
}

func (r *reader) time() (float64, error) {
	p, err := r.take(8)
	if err != nil {
		return 0, err
	}
	t := math.Float64frombits(binary.LittleEndian.Uint64(p))
	if math.IsNaN(t) {
		return 0, fmt.Errorf("%w: NaN time", ErrProtocol)
	}
	return t, nil
}

func (r *reader) hash() (string, error) {
	h, err := r.uvarint()
	if err != nil {
		return "", err
	}
	n, isHex := h>>1, h&1 == 1
	if (isHex && n > MaxHashLen/2) || n > MaxHashLen {
		return "", fmt.Errorf("%w: hash longer than %d bytes", ErrProtocol, MaxHashLen)
	}
	p, err := r.take(int(n))
	if err != nil {
		return "", err
	}
	if isHex {
		return hex.EncodeToString(p), nil
	}
	return string(p), nil
}

func (r *reader) bound() (Key, error) {
	t, err := r.time()
	if err != nil {
		return Key{}, err
	}
	h, err := r.hash()
	if err != nil {
		return Key{}, err
	}
	if math.IsInf(t, 0) && h != "" {
		return Key{}, fmt.Errorf("%w: infinite bound with a hash", ErrProtocol)
	}
	return Key{Time: t, Hash: h}, nil
}

// keys reads a key list that must be strictly ascending and inside [lower,
// upper). total counts the keys of the frame against max.
func (r *reader) keys(lower, upper Key, total *int, max int) ([]Key, error) {
	n, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(r.rest()/minKeyEnc) {
		return nil, fmt.Errorf("%w: %d keys cannot fit in the %d bytes left", ErrProtocol, n, r.rest())
	}
	if *total+int(n) > max {
		return nil, fmt.Errorf("%w: frame holds more than %d keys", ErrTooManyKeys, max)
	}
	*total += int(n)
	if n == 0 {
		return nil, nil
	}
	out := make([]Key, 0, n)
	for i := range int(n) {
		t, err := r.time()
		if err != nil {
			return nil, err
		}
		h, err := r.hash()
		if err != nil {
			return nil, err
		}
		k := Key{Time: t, Hash: h}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrProtocol, i, err)
		}
		if k.Compare(lower) < 0 || k.Compare(upper) >= 0 {
			return nil, fmt.Errorf("%w: key %s outside its range", ErrProtocol, k)
		}
		if i > 0 && out[i-1].Compare(k) >= 0 {
			return nil, fmt.Errorf("%w: keys not in ascending order at %s", ErrProtocol, k)
		}
		out = append(out, k)
	}
	return out, nil
}

// decodeFrame parses and validates one payload. Ranges must be non-empty,
// sorted and disjoint; keys must be valid and inside their range.
func decodeFrame(p []byte, lim decodeLimits) (frame, error) {
	var f frame
	if len(p) < 2 {
		return f, fmt.Errorf("%w: frame of %d bytes has no header", ErrProtocol, len(p))
	}
	if p[0] != protocolVersion {
		return f, fmt.Errorf("%w %d", ErrVersion, p[0])
	}
	if p[1]&^flagMore != 0 {
		return f, fmt.Errorf("%w: unknown flags %#x", ErrProtocol, p[1])
	}
	f.more = p[1]&flagMore != 0
	r := &reader{b: p, off: 2}
	f.ranges = make([]rangeMsg, 0, min(r.rest()/minRangeEnc, lim.maxRanges, 16))
	keys := 0
	var prevUpper Key
	for i := 0; r.rest() > 0; i++ {
		if i >= lim.maxRanges {
			return f, fmt.Errorf("%w: frame holds more than %d ranges", ErrTooManyRanges, lim.maxRanges)
		}
		hb, _ := r.take(1)
		h := hb[0]
		if h&^(headModeMask|headLowerImplicit) != 0 || mode(h&headModeMask) > modeDone {
			return f, fmt.Errorf("%w: range %d: bad head byte %#x", ErrProtocol, i, h)
		}
		rm := rangeMsg{mode: mode(h & headModeMask)}
		var err error
		if h&headLowerImplicit != 0 {
			if i == 0 {
				return f, fmt.Errorf("%w: range 0 has an implicit lower bound", ErrProtocol)
			}
			rm.lower = prevUpper
		} else if rm.lower, err = r.bound(); err != nil {
			return f, fmt.Errorf("range %d: lower bound: %w", i, err)
		}
		if rm.upper, err = r.bound(); err != nil {
			return f, fmt.Errorf("range %d: upper bound: %w", i, err)
		}
		if rm.lower.Compare(rm.upper) >= 0 {
			return f, fmt.Errorf("%w: range %d: lower bound %s not below upper bound %s", ErrProtocol, i, rm.lower, rm.upper)
		}
		if i > 0 && rm.lower.Compare(prevUpper) < 0 {
			return f, fmt.Errorf("%w: range %d: starts before the previous range ends", ErrProtocol, i)
		}
		switch rm.mode {
		case modeFingerprint:
			fp, err := r.take(16)
			if err != nil {
				return f, err
			}
			copy(rm.fp[:], fp)
			if rm.count, err = r.uvarint(); err != nil {
				return f, err
			}
		case modeIDList:
			if rm.keys, err = r.keys(rm.lower, rm.upper, &keys, lim.maxKeys); err != nil {
				return f, fmt.Errorf("range %d: %w", i, err)
			}
		case modeDone:
			if rm.keys, err = r.keys(rm.lower, rm.upper, &keys, lim.maxKeys); err != nil {
				return f, fmt.Errorf("range %d: %w", i, err)
			}
			if rm.theirs, err = r.keys(rm.lower, rm.upper, &keys, lim.maxKeys); err != nil {
				return f, fmt.Errorf("range %d: %w", i, err)
			}
		}
		f.ranges = append(f.ranges, rm)
		prevUpper = rm.upper
	}
	if f.more && len(f.ranges) == 0 {
		return f, fmt.Errorf("%w: empty frame announces more", ErrProtocol)
	}
	return f, nil
}

// readFrame reads one length-prefixed payload, reading no byte past it.
func readFrame(r io.Reader, max int) ([]byte, int, error) {
	var pre [binary.MaxVarintLen64]byte
	n := 0
	for {
		if n == len(pre) {
			return nil, n, fmt.Errorf("%w: frame length prefix too long", ErrProtocol)
		}
		if _, err := io.ReadFull(r, pre[n:n+1]); err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				return nil, n, fmt.Errorf("%w: stream ended inside a frame: %w", ErrProtocol, io.ErrUnexpectedEOF)
			}
			return nil, n, fmt.Errorf("reconcile: read frame: %w", err)
		}
		n++
		if pre[n-1] < 0x80 {
			break
		}
	}
	size, k := binary.Uvarint(pre[:n])
	if k <= 0 {
		return nil, n, fmt.Errorf("%w: bad frame length prefix", ErrProtocol)
	}
	if size > uint64(max) {
		return nil, n, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, size, max)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, n, fmt.Errorf("%w: stream ended inside a frame of %d bytes: %w", ErrProtocol, size, io.ErrUnexpectedEOF)
		}
		return nil, n, fmt.Errorf("reconcile: read frame of %d bytes: %w", size, err)
	}
	return buf, n + int(size), nil
}
