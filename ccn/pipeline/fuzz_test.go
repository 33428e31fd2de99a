package pipeline

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// fuzzSeeds are valid messages of every type, to mutate.
func fuzzSeeds(t testing.TB) [][]byte {
	alice := account(t, "alice")
	orig := build(t, "orig", alice, message.TypePost, post("x", `{"a":[1,2,{"b":null}]}`), "ch", 0)
	s1 := build(t, "s1", alice, message.TypeStore, storeContent("f", ""), "", 1)
	return [][]byte{
		orig.raw,
		build(t, "amend", alice, message.TypePost, amend(orig.hash, `{}`), "", 1).raw,
		build(t, "agg", alice, message.TypeAggregate, aggregate("k", `{"a":1}`), "", 2).raw,
		s1.raw,
		build(t, "prog", alice, message.TypeProgram, program(s1.hash, s1.hash, true, true, ""), "", 3).raw,
		build(t, "inst", alice, message.TypeInstance, instance(s1.hash, 10), "", 4).raw,
		build(t, "forget", alice, message.TypeForget, forget(orig.hash), "", 5).raw,
	}
}

// checkSubmit submits data and checks the contract: a parse error is a
// *message.Error, a result has a known status, nothing panics.
func checkSubmit(t testing.TB, e *env, data []byte) {
	t.Helper()
	r, err := e.p.Submit(e.ctx, data, SubmitOptions{})
	if err != nil {
		var me *message.Error
		if !errors.As(err, &me) {
			t.Fatalf("Submit(%q): error %v (%T) is not a *message.Error", data, err, err)
		}
		return
	}
	switch r.Status {
	case message.StatusPending, message.StatusProcessed, message.StatusForgotten, message.StatusRemoving, message.StatusRemoved:
	case message.StatusRejected:
		if message.CodeOf(r.Err) == message.CodeInternalError {
			t.Fatalf("Submit(%q): rejected without a protocol code: %v", data, r.Err)
		}
	default:
		t.Fatalf("Submit(%q): status %q", data, r.Status)
	}
}

func mutate(rng *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	switch rng.IntN(5) {
	case 0: // flip bytes
		for range 1 + rng.IntN(4) {
			if len(b) > 0 {
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			}
		}
	case 1: // truncate
		if len(b) > 0 {
			b = b[:rng.IntN(len(b))]
		}
	case 2: // duplicate a slice
		if len(b) > 2 {
			i, j := rng.IntN(len(b)), rng.IntN(len(b))
			if i > j {
				i, j = j, i
			}
			b = append(b[:j:j], append(b[i:j], b[j:]...)...)
		}
	case 3: // change an unsigned field: stays valid
		b = bytes.Replace(b, []byte(`"channel":`), []byte(`"channel":"x","c":`), 1)
	case 4: // insert a JSON token
		toks := []string{`null`, `{}`, `[]`, `"\u0000"`, `1e999`, `-0`, `"`, `\`, `{"`, `}`}
		i := rng.IntN(len(b) + 1)
		b = append(b[:i:i], append([]byte(toks[rng.IntN(len(toks))]), b[i:]...)...)
	}
	return b
}

// TestSubmitRandomBytes feeds random bytes and mutated messages to Submit and
// processes what gets queued: no panic, no non-protocol error.
func TestSubmitRandomBytes(t *testing.T) {
	e := newEnv(t, envOpts{})
	seeds := fuzzSeeds(t)
	rng := rand.New(rand.NewPCG(99, 1))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		var data []byte
		if i%4 == 0 {
			data = make([]byte, rng.IntN(300))
			for j := range data {
				data[j] = byte(rng.IntN(256))
			}
		} else {
			data = mutate(rng, seeds[rng.IntN(len(seeds))])
		}
		checkSubmit(t, e, data)
		if i%50 == 0 {
			e.drain()
		}
	}
	for _, s := range seeds {
		checkSubmit(t, e, s)
	}
	e.settle()
}

func FuzzSubmit(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"chain":"ETH","sender":"0x","type":"POST","time":1,"item_type":"inline","item_content":"{}","item_hash":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}`))
	// A fuzzing session can run for hours.
	e := newEnv(f, envOpts{timeout: 24 * time.Hour})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSubmit(t, e, data)
		if _, err := e.p.processOnce(e.ctx); err != nil {
			t.Fatalf("process: %v", err)
		}
	})
}
