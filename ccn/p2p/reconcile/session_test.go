package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestSessionFindsExactDifferences(t *testing.T) {
	small := DefaultConfig()
	small.MaxFrame = 4 * small.reserve() // frames of ~10 KB: exercises truncation and deferral
	small.MaxRounds = 1000
	tiny := Config{Branch: 2, IDListMax: 1, MaxRounds: 1000}
	cases := []struct {
		name            string
		common, aOnly   int
		bOnly           int
		sameTime        bool
		cfg             Config
		maxRounds       int   // 0: no check
		maxBytesEachWay int64 // 0: no check
	}{
		{name: "both empty", cfg: DefaultConfig(), maxRounds: 1, maxBytesEachWay: 64},
		{name: "equal sets", common: 10_000, cfg: DefaultConfig(), maxRounds: 1, maxBytesEachWay: 64},
		{name: "empty vs 10000", bOnly: 10_000, cfg: DefaultConfig(), maxRounds: 2},
		{name: "10000 vs empty", aOnly: 10_000, cfg: DefaultConfig(), maxRounds: 2},
		{name: "10000 vs 10000, 1000 disjoint each", common: 9_000, aOnly: 1_000, bOnly: 1_000, cfg: DefaultConfig()},
		{name: "100000 vs 100000 differing by 10", common: 99_995, aOnly: 5, bOnly: 5, cfg: DefaultConfig(), maxRounds: 6, maxBytesEachWay: 64 << 10},
		{name: "equal times", common: 5_000, aOnly: 300, bOnly: 200, sameTime: true, cfg: DefaultConfig()},
		{name: "one key each", aOnly: 1, bOnly: 1, cfg: DefaultConfig(), maxRounds: 2},
		{name: "small frames, empty vs 10000", bOnly: 10_000, cfg: small},
		{name: "small frames, 2000 disjoint each", common: 20_000, aOnly: 2_000, bOnly: 2_000, cfg: small},
		{name: "branch 2, lists of 1", common: 500, aOnly: 40, bOnly: 60, cfg: tiny},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := genKeys(uint64(i+1), tc.common+tc.aOnly+tc.bOnly, tc.sameTime)
			common, aOnly, bOnly := keys[:tc.common], keys[tc.common:tc.common+tc.aOnly], keys[tc.common+tc.aOnly:]
			a, b := setOf(t, common, aOnly), setOf(t, common, bOnly)
			da, db := runPair(t, a, b, tc.cfg)
			sameKeys(t, "initiator need", da.Need, bOnly)
			sameKeys(t, "initiator have", da.Have, aOnly)
			sameKeys(t, "responder need", db.Need, aOnly)
			sameKeys(t, "responder have", db.Have, bOnly)
			if da.Rounds != db.Rounds || da.BytesSent != db.BytesRecv || da.BytesRecv != db.BytesSent {
				t.Fatalf("sides disagree: initiator %+v, responder %+v", counters(da), counters(db))
			}
			if tc.maxRounds > 0 && da.Rounds > tc.maxRounds {
				t.Errorf("%d rounds, want at most %d", da.Rounds, tc.maxRounds)
			}
			if m := tc.maxBytesEachWay; m > 0 && (da.BytesSent > m || da.BytesRecv > m) {
				t.Errorf("sent %d, received %d bytes, want at most %d each way", da.BytesSent, da.BytesRecv, m)
			}
			t.Logf("%d rounds, %d bytes sent, %d received", da.Rounds, da.BytesSent, da.BytesRecv)

			// Applying the diff makes the sets equal: a second session is one round.
			for _, k := range da.Need {
				a.Add(k)
			}
			for _, k := range db.Need {
				b.Add(k)
			}
			if a.Fingerprint() != b.Fingerprint() {
				t.Fatal("sets differ after applying the diff")
			}
			da2, _ := runPair(t, a, b, tc.cfg)
			if len(da2.Need)+len(da2.Have) != 0 || da2.Rounds != 1 {
				t.Fatalf("second session: %d need, %d have, %d rounds", len(da2.Need), len(da2.Have), da2.Rounds)
			}
		})
	}
}

func counters(d Diff) string {
	return fmt.Sprintf("rounds=%d sent=%d recv=%d", d.Rounds, d.BytesSent, d.BytesRecv)
}

// While a session runs, both sets keep receiving keys. Every difference that
// existed before and after must be found, and nothing reported may be false
// at the time it was reported.
func TestSessionWithConcurrentChanges(t *testing.T) {
	keys := genKeys(42, 60_000, false)
	common, aOnly, bOnly := keys[:40_000], keys[40_000:42_000], keys[42_000:44_000]
	aLater, bLater := keys[44_000:52_000], keys[52_000:60_000]
	a, b := setOf(t, common, aOnly), setOf(t, common, bOnly)
	cfg := DefaultConfig()
	cfg.MaxFrame = 4 * cfg.reserve() // many rounds, so the writers really interleave
	cfg.MaxRounds = 1000

	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, w := range []struct {
		s    *Set
		keys []Key
	}{{a, aLater}, {b, bLater}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for _, k := range w.keys {
				w.s.Add(k)
			}
		}()
	}
	close(start)
	da, db := runPair(t, a, b, cfg)
	wg.Wait()

	aAll := setOf(t, common, aOnly, aLater)
	bAll := setOf(t, common, bOnly, bLater)
	static := func(what string, got, want []Key, peerAll *Set) {
		t.Helper()
		found := setOf(t, got)
		for _, k := range want {
			if !found.Has(k) {
				t.Fatalf("%s: missed static difference %s", what, k)
			}
		}
		for _, k := range got {
			if !peerAll.Has(k) {
				t.Fatalf("%s: %s is not in the peer's set", what, k)
			}
		}
	}
	static("initiator need", da.Need, bOnly, bAll)
	static("responder need", db.Need, aOnly, aAll)
	for _, k := range da.Have {
		if !aAll.Has(k) {
			t.Fatalf("initiator have %s that it never had", k)
		}
	}
	aStart := setOf(t, common, aOnly)
	for _, k := range da.Need {
		if aStart.Has(k) {
			t.Fatalf("initiator needs %s that it had from the start", k)
		}
	}
	t.Logf("%d rounds; need %d/%d", da.Rounds, len(da.Need), len(db.Need))

	// The next session catches what arrived meanwhile.
	for _, k := range da.Need {
		a.Add(k)
	}
	for _, k := range db.Need {
		b.Add(k)
	}
	da2, db2 := runPair(t, a, b, cfg)
	for _, k := range da2.Need {
		a.Add(k)
	}
	for _, k := range db2.Need {
		b.Add(k)
	}
	if a.Fingerprint() != b.Fingerprint() || a.Len() != 60_000 {
		t.Fatalf("not converged: %d vs %d keys", a.Len(), b.Len())
	}
}

// peer answers each frame it reads with reply(frame); it stops at the first
// error (the other side gave up) and reports how many frames it read.
func peer(conn net.Conn, reply func(i int, f frame) []byte) chan int {
	n := make(chan int, 1)
	go func() {
		i := 0
		defer func() { n <- i }()
		for {
			p, _, err := readFrame(conn, 64<<20)
			if err != nil {
				return
			}
			f, err := decodeFrame(p, decodeLimits{maxRanges: 1 << 20, maxKeys: 1 << 20})
			if err != nil {
				return
			}
			i++
			out := reply(i, f)
			if out == nil {
				continue
			}
			if _, err := conn.Write(out); err != nil {
				return
			}
		}
	}()
	return n
}

func TestPeerThatNeverEndsHitsMaxRounds(t *testing.T) {
	a := setOf(t, genKeys(7, 1000, false))
	ca, cb := net.Pipe()
	defer ca.Close()
	// Whatever it receives, the peer claims a different fingerprint for the
	// first range it was asked about.
	done := peer(cb, func(i int, f frame) []byte {
		enc := newEncoder()
		if len(f.ranges) > 0 {
			r := f.ranges[0]
			enc.fingerprint(r.lower, r.upper, Fingerprint{byte(i)}, 1000)
		}
		return enc.finish(false)
	})
	cfg := DefaultConfig()
	cfg.MaxRounds = 10
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := Initiate(ctx, ca, a, cfg)
	if !errors.Is(err, ErrTooManyRounds) || !errors.Is(err, ErrLimit) {
		t.Fatalf("error %v, want ErrTooManyRounds", err)
	}
	if d.Rounds != 10 {
		t.Fatalf("%d rounds, want 10", d.Rounds)
	}
	ca.Close()
	<-done
}

func TestPeerCannotAnswerWhatWasNotAsked(t *testing.T) {
	keys := sortedKeys(genKeys(8, 2000, false))
	a := setOf(t, keys)
	mid := separator(keys[999], keys[1000])
	cases := []struct {
		name  string
		reply func(f frame) []byte
	}{
		{"range outside the asked one", func(f frame) []byte {
			enc := newEncoder()
			// Only [mid, +inf) was asked about; answer below it.
			enc.fingerprint(Lowest(), f.ranges[0].lower, Fingerprint{1}, 5)
			return enc.finish(false)
		}},
		{"range stretching past the asked one", func(f frame) []byte {
			enc := newEncoder()
			r := f.ranges[0]
			enc.fingerprint(keys[999], r.upper, Fingerprint{1}, 5)
			return enc.finish(false)
		}},
		{"empty frame announcing more", func(f frame) []byte {
			return newEncoder().finish(true)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := net.Pipe()
			defer ca.Close()
			first := true
			done := peer(cb, func(_ int, f frame) []byte {
				if first {
					// Claim that only the upper half differs, so that the
					// initiator asks about [mid, +inf) and nothing else.
					first = false
					enc := newEncoder()
					enc.fingerprint(mid, f.ranges[0].upper, Fingerprint{2}, 1000)
					return enc.finish(false)
				}
				return tc.reply(f)
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := Initiate(ctx, ca, a, DefaultConfig())
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v, want ErrProtocol", err)
			}
			ca.Close()
			<-done
		})
	}
}

// A responder fed malformed frames fails with a clear error and no panic.
func TestRespondRejectsMalformedFrames(t *testing.T) {
	valid := func() *encoder {
		e := newEncoder()
		e.fingerprint(Lowest(), Highest(), Fingerprint{1}, 3)
		return e
	}
	withPrefix := func(payload []byte) []byte {
		e := &encoder{buf: append(make([]byte, frameHeadroom), payload...)}
		return e.finish(false)
	}
	nan := []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f}
	inf := []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x7f}
	negInf := []byte{0, 0, 0, 0, 0, 0, 0xf0, 0xff}
	one := []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}
	two := []byte{0, 0, 0, 0, 0, 0, 0, 0x40}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"truncated frame", valid().finish(false)[:10], ErrProtocol},
		{"truncated length prefix", []byte{0x80}, ErrProtocol},
		{"oversized frame", []byte{0x80, 0x80, 0x80, 0x10}, ErrFrameTooLarge},
		{"length prefix too long", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrProtocol},
		{"zero-length frame", []byte{0}, ErrProtocol},
		{"bad version", withPrefix([]byte{2, 0}), ErrVersion},
		{"unknown flags", withPrefix([]byte{1, 0x80}), ErrProtocol},
		{"bad head byte", withPrefix([]byte{1, 0, 0x17}), ErrProtocol},
		{"unknown mode", withPrefix([]byte{1, 0, 5}), ErrProtocol},
		{"implicit lower on first range", withPrefix(cat([]byte{1, 0, 0x08}, inf, []byte{0})), ErrProtocol},
		{"NaN bound", withPrefix(cat([]byte{1, 0, 0}, nan, []byte{0}, inf, []byte{0})), ErrProtocol},
		{"infinite bound with a hash", withPrefix(cat([]byte{1, 0, 0}, negInf, []byte{2, 'a'}, inf, []byte{0})), ErrProtocol},
		{"unsorted bounds", withPrefix(cat([]byte{1, 0, 0}, two, []byte{0}, one, []byte{0})), ErrProtocol},
		{"empty range", withPrefix(cat([]byte{1, 0, 0}, one, []byte{0}, one, []byte{0})), ErrProtocol},
		{"overlapping ranges", withPrefix(cat([]byte{1, 0, 0}, one, []byte{0}, two, []byte{0}, []byte{0}, one, []byte{0}, two, []byte{0})), ErrProtocol},
		{"NaN key time", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{1}, nan, []byte{2, 'a'})), ErrProtocol},
		{"infinite key time", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{1}, inf, []byte{2, 'a'})), ErrProtocol},
		{"empty key hash", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{1}, one, []byte{0})), ErrProtocol},
		{"hash too long", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{1}, one, []byte{0x82, 0x02}, make([]byte, 129))), ErrProtocol},
		{"hex hash too long", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{1}, one, []byte{0x83, 0x01}, make([]byte, 65))), ErrProtocol},
		{"unsorted keys", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{2}, two, []byte{2, 'a'}, one, []byte{2, 'a'})), ErrProtocol},
		{"duplicate keys", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{2}, one, []byte{2, 'a'}, one, []byte{2, 'a'})), ErrProtocol},
		{"key outside its range", withPrefix(cat([]byte{1, 0, 2}, two, []byte{0}, inf, []byte{0}, []byte{1}, one, []byte{2, 'a'})), ErrProtocol},
		{"key count beyond the frame", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{0xff, 0xff, 0x03})), ErrProtocol},
		{"too many keys", withPrefix(cat([]byte{1, 0, 2}, negInf, []byte{0}, inf, []byte{0}, []byte{3}, one, []byte{2, 'a'}, one, []byte{2, 'b'}, one, []byte{2, 'c'})), ErrTooManyKeys},
		{"truncated fingerprint", withPrefix(cat([]byte{1, 0, 1}, negInf, []byte{0}, inf, []byte{0}, make([]byte, 10))), ErrProtocol},
		{"varint overflow", withPrefix(cat([]byte{1, 0, 1}, negInf, []byte{0}, inf, []byte{0}, make([]byte, 16), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})), ErrProtocol},
		{"empty frame announcing more", withPrefix([]byte{1, 1}), ErrProtocol},
	}
	cfg := DefaultConfig()
	cfg.MaxKeys = 2
	cfg.MaxFrame = 1 << 20
	b := setOf(t, genKeys(3, 100, false))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rw := &pipeRW{r: bytes.NewReader(tc.input), w: io.Discard}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := Respond(ctx, rw, b, cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

type pipeRW struct {
	r io.Reader
	w io.Writer
}

func (p *pipeRW) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeRW) Write(b []byte) (int, error) { return p.w.Write(b) }

func TestTooManyDifferences(t *testing.T) {
	keys := genKeys(9, 3000, false)
	a, b := setOf(t, keys[:1000]), setOf(t, keys[1000:])
	cfg := DefaultConfig()
	cfg.MaxKeys = 1500
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp := make(chan error, 1)
	go func() {
		_, err := Respond(ctx, cb, b, cfg)
		cb.Close() // unblocks the initiator if the responder gave up first
		resp <- err
	}()
	_, errA := Initiate(ctx, ca, a, cfg)
	ca.Close()
	errB := <-resp
	if !errors.Is(errA, ErrTooManyKeys) && !errors.Is(errB, ErrTooManyKeys) {
		t.Fatalf("errors %v / %v, want ErrTooManyKeys on one side", errA, errB)
	}
}

func TestSessionHonoursContext(t *testing.T) {
	a := setOf(t, genKeys(10, 100, false))
	t.Run("cancel", func(t *testing.T) {
		ca, cb := net.Pipe()
		defer ca.Close()
		defer cb.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The peer reads the first frame, then cancels instead of answering.
		done := peer(cb, func(int, frame) []byte {
			cancel()
			return nil
		})
		_, err := Initiate(ctx, ca, a, DefaultConfig())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		ca.Close()
		<-done
	})
	t.Run("deadline", func(t *testing.T) {
		ca, cb := net.Pipe()
		defer ca.Close()
		defer cb.Close()
		done := peer(cb, func(int, frame) []byte { return nil }) // never answers
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := Respond(ctx, ca, a, DefaultConfig())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want context.DeadlineExceeded", err)
		}
		ca.Close()
		<-done
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Initiate(ctx, &pipeRW{r: bytes.NewReader(nil), w: io.Discard}, a, DefaultConfig())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("deadline cleared on success", func(t *testing.T) {
		b := setOf(t, genKeys(10, 100, false))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ca, cb := net.Pipe()
		defer ca.Close()
		defer cb.Close()
		go func() { _, _ = Respond(ctx, cb, b, DefaultConfig()) }()
		if _, err := Initiate(ctx, ca, a, DefaultConfig()); err != nil {
			t.Fatal(err)
		}
		cancel() // must not affect the stream any more
		go func() { _, _ = cb.Write([]byte("x")) }()
		buf := make([]byte, 1)
		if _, err := io.ReadFull(ca, buf); err != nil {
			t.Fatalf("stream unusable after the session: %v", err)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero takes defaults", Config{}, true},
		{"defaults", DefaultConfig(), true},
		{"branch 1", Config{Branch: 1}, false},
		{"negative rounds", Config{MaxRounds: -1}, false},
		{"frame too small", Config{MaxFrame: 1000}, false},
		{"frame too small for the id lists", Config{IDListMax: 10_000, MaxFrame: 1 << 20}, false},
		{"ranges fewer than a split", Config{MaxRanges: 10}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.normalized()
			if (err == nil) != tc.ok {
				t.Fatalf("error %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}
