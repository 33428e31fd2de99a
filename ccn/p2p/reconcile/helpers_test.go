package reconcile

import (
	"context"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"
)

// genKeys returns n distinct random keys with item-hash-like hashes. With
// sameTime every key has one time, so only hashes order them.
func genKeys(seed uint64, n int, sameTime bool) []Key {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	keys := make([]Key, n)
	var h [32]byte
	for i := range keys {
		for j := 0; j < len(h); j += 8 {
			v := r.Uint64()
			for b := range 8 {
				h[j+b] = byte(v >> (8 * b))
			}
		}
		t := 1.6e9
		if !sameTime {
			t += float64(r.IntN(1e8)) / 100
		}
		keys[i] = Key{Time: t, Hash: hex.EncodeToString(h[:])}
	}
	return keys
}

func setOf(t testing.TB, keys ...[]Key) *Set {
	t.Helper()
	s := NewSet()
	for _, ks := range keys {
		for _, k := range ks {
			s.Add(k)
		}
	}
	return s
}

func sortedKeys(ks []Key) []Key {
	out := slices.Clone(ks)
	slices.SortFunc(out, Key.Compare)
	return out
}

func sameKeys(t *testing.T, what string, got, want []Key) {
	t.Helper()
	want = sortedKeys(want)
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].Compare(want[i]) != 0 {
			t.Fatalf("%s: key %d is %s, want %s", what, i, got[i], want[i])
		}
	}
}

type result struct {
	d   Diff
	err error
}

// runPair runs Initiate(a) against Respond(b) over net.Pipe and checks that
// both leave the stream right after the session by exchanging a trailer.
func runPair(t *testing.T, a, b *Set, cfg Config) (Diff, Diff) {
	t.Helper()
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp := make(chan result, 1)
	go func() {
		d, err := Respond(ctx, cb, b, cfg)
		if err == nil {
			err = trailer(cb, "from responder", "from initiator")
		}
		resp <- result{d, err}
	}()
	da, err := Initiate(ctx, ca, a, cfg)
	if err != nil {
		t.Fatalf("initiate: %v", err)
	}
	if err := trailer(ca, "from initiator", "from responder"); err != nil {
		t.Fatalf("initiator trailer: %v", err)
	}
	r := <-resp
	if r.err != nil {
		t.Fatalf("respond: %v", r.err)
	}
	return da, r.d
}

// trailer writes send and reads want concurrently (net.Pipe is synchronous).
func trailer(c net.Conn, send, want string) error {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte(send))
		werr <- err
	}()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if string(buf) != want {
		return &trailerError{got: string(buf), want: want}
	}
	return nil
}

type trailerError struct{ got, want string }

func (e *trailerError) Error() string { return "trailer " + e.got + ", want " + e.want }
