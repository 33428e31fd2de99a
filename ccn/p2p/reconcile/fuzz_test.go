package reconcile

import (
	"bytes"
	"context"
	"io"
	"net"
	"reflect"
	"testing"
	"time"
)

var fuzzLimits = decodeLimits{maxRanges: 1 << 12, maxKeys: 1 << 12}

// FuzzDecodeFrame: any payload either fails with an error or decodes to a
// frame that re-encodes to something decoding to the same frame.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range sampleFrames() {
		p, _, err := readFrame(bytes.NewReader(fr), 1<<20)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		fr, err := decodeFrame(p, fuzzLimits)
		if err != nil {
			return
		}
		enc := newEncoder()
		for _, r := range fr.ranges {
			switch r.mode {
			case modeSkip:
				enc.skip(r.lower, r.upper)
			case modeFingerprint:
				enc.fingerprint(r.lower, r.upper, r.fp, int(r.count))
			case modeIDList:
				enc.idList(r.lower, r.upper, r.keys)
			case modeDone:
				enc.done(r.lower, r.upper, r.keys, r.theirs)
			}
		}
		p2, _, err := readFrame(bytes.NewReader(enc.finish(fr.more)), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := decodeFrame(p2, fuzzLimits)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if !reflect.DeepEqual(fr, fr2) {
			t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, fr2)
		}
	})
}

// FuzzRespond: a responder fed arbitrary bytes returns (with or without an
// error) and never panics or loops.
func FuzzRespond(f *testing.F) {
	set := fuzzSet()
	f.Add(recordInitiator(f, set))
	for _, fr := range sampleFrames() {
		f.Add(fr)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := DefaultConfig()
		cfg.MaxRounds = 16
		cfg.MaxFrame = 1 << 20
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = Respond(ctx, &pipeRW{r: bytes.NewReader(in), w: io.Discard}, set, cfg)
	})
}

// fuzzSet is the responder's set in FuzzRespond: small, with equal times, so
// that random inputs reach every path.
func fuzzSet() *Set {
	s := NewSet()
	for _, k := range genKeys(99, 300, false) {
		s.Add(k)
	}
	for _, k := range genKeys(98, 100, true) {
		s.Add(k)
	}
	return s
}

// recordInitiator runs a real session against set and returns what the
// initiator sent: replayed to a responder with the same set, it is a whole
// valid session.
func recordInitiator(tb testing.TB, set *Set) []byte {
	tb.Helper()
	own := NewSet()
	for i, k := range set.Keys(Lowest(), Highest(), 0) {
		if i%7 != 0 {
			own.Add(k)
		}
	}
	for _, k := range genKeys(97, 50, false) {
		own.Add(k)
	}
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	var rec bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { _, _ = Respond(ctx, cb, set, DefaultConfig()) }()
	if _, err := Initiate(ctx, &recorder{Conn: ca, w: &rec}, own, DefaultConfig()); err != nil {
		tb.Fatal(err)
	}
	return rec.Bytes()
}

type recorder struct {
	net.Conn
	w io.Writer
}

func (r *recorder) Write(p []byte) (int, error) {
	_, _ = r.w.Write(p)
	return r.Conn.Write(p)
}

// sampleFrames returns encoded frames of every mode.
func sampleFrames() [][]byte {
	keys := sortedKeys(genKeys(1, 6, false))
	b1 := separator(keys[1], keys[2])
	b2 := separator(keys[3], keys[4])
	var out [][]byte

	e := newEncoder()
	e.fingerprint(Lowest(), Highest(), Fingerprint{1, 2, 3}, 42)
	out = append(out, e.finish(false))

	e = newEncoder()
	e.idList(Lowest(), b1, keys[:2])
	e.fingerprint(b1, b2, Fingerprint{9}, 2)
	e.skip(b2, Highest())
	out = append(out, e.finish(true))

	e = newEncoder()
	e.done(Lowest(), b2, keys[:1], keys[2:4])
	e.done(b2, Highest(), nil, []Key{{Time: keys[5].Time, Hash: "not-hex Hash"}})
	out = append(out, e.finish(false))

	out = append(out, newEncoder().finish(false))
	return out
}
