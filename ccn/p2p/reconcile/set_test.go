package reconcile

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// naiveFingerprint computes a range fingerprint from scratch.
func naiveFingerprint(keys []Key, lower, upper Key) (Fingerprint, int) {
	var sum accum
	n := 0
	for _, k := range keys {
		if k.Compare(lower) >= 0 && k.Compare(upper) < 0 {
			id := idOf(k.Hash)
			sum.add(&id)
			n++
		}
	}
	return fingerprintOf(&sum, n), n
}

// The chunked set behaves like a sorted slice under random adds and removes
// in the middle, and its range fingerprints match a naive computation.
func TestSetMatchesModel(t *testing.T) {
	cases := []struct {
		name     string
		n        int
		sameTime bool
		removes  bool
	}{
		{"adds", 20_000, false, false},
		{"adds and removes", 20_000, false, true},
		{"equal times", 5_000, true, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			pool := genKeys(uint64(100+i), tc.n, tc.sameTime)
			s := NewSet()
			model := map[Key]bool{}
			for range 3 * tc.n {
				k := pool[r.IntN(len(pool))]
				if tc.removes && r.IntN(3) == 0 {
					if got, want := s.Remove(k), model[k]; got != want {
						t.Fatalf("Remove(%s) = %v, want %v", k, got, want)
					}
					delete(model, k)
					continue
				}
				if got, want := s.Add(k), !model[k]; got != want {
					t.Fatalf("Add(%s) = %v, want %v", k, got, want)
				}
				model[k] = true
			}
			want := make([]Key, 0, len(model))
			for k := range model {
				want = append(want, k)
			}
			want = sortedKeys(want)
			if s.Len() != len(want) {
				t.Fatalf("Len = %d, want %d", s.Len(), len(want))
			}
			got := s.Keys(Lowest(), Highest(), 0)
			if !slices.Equal(got, want) {
				t.Fatal("keys differ from the model")
			}
			for _, k := range pool[:200] {
				if s.Has(k) != model[k] {
					t.Fatalf("Has(%s) = %v", k, !model[k])
				}
			}
			if fp, _ := naiveFingerprint(want, Lowest(), Highest()); s.Fingerprint() != fp {
				t.Fatal("whole-set fingerprint differs")
			}
			for range 300 {
				lo, hi := pool[r.IntN(len(pool))], pool[r.IntN(len(pool))]
				if r.IntN(4) == 0 {
					lo = separator(Key{Time: lo.Time - 1}, lo) // a bound that is not a key
				}
				if lo.Compare(hi) > 0 {
					lo, hi = hi, lo
				}
				gotFP, gotN := s.RangeFingerprint(lo, hi)
				wantFP, wantN := naiveFingerprint(want, lo, hi)
				if gotFP != wantFP || gotN != wantN {
					t.Fatalf("range [%s, %s): %d items %s, want %d items %s", lo, hi, gotN, gotFP, wantN, wantFP)
				}
			}
		})
	}
}

func TestSetFingerprintIgnoresInsertOrder(t *testing.T) {
	keys := genKeys(5, 5000, false)
	a := setOf(t, keys)
	rev := slices.Clone(keys)
	slices.Reverse(rev)
	b := setOf(t, rev)
	sorted := setOf(t, sortedKeys(keys))
	if a.Fingerprint() != b.Fingerprint() || a.Fingerprint() != sorted.Fingerprint() {
		t.Fatal("fingerprint depends on insertion order")
	}
	b.Remove(keys[17])
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("fingerprint did not change after a removal")
	}
	b.Add(keys[17])
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("fingerprint not restored after re-adding")
	}
	if NewSet().Fingerprint() != emptyFingerprint() {
		t.Fatal("empty set fingerprint")
	}
}

func TestSetRejectsInvalidKeys(t *testing.T) {
	s := NewSet()
	for _, k := range []Key{
		{Time: math.NaN(), Hash: "a"},
		{Time: math.Inf(1), Hash: "a"},
		{Time: math.Inf(-1), Hash: "a"},
		{Time: 1},
		{Time: 1, Hash: strings.Repeat("a", MaxHashLen+1)},
	} {
		if s.Add(k) {
			t.Errorf("Add(%v) accepted an invalid key", k)
		}
	}
	if !s.Add(Key{Time: math.Copysign(0, -1), Hash: "a"}) || s.Add(Key{Time: 0, Hash: "a"}) {
		t.Error("-0 and +0 must be the same time")
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d, want 1", s.Len())
	}
}

func TestSeparator(t *testing.T) {
	cases := []struct{ a, b, want Key }{
		{Key{1, "ff"}, Key{2, "00"}, Key{2, ""}},
		{Key{1, "abc1"}, Key{1, "abd0"}, Key{1, "abd0"}}, // odd prefix "abd" rounded to even for hex
		{Key{1, "ab"}, Key{1, "abc"}, Key{1, "abc"}},
		{Key{1, "a"}, Key{1, "b"}, Key{1, "b"}},
		{Key{1, "xy1"}, Key{1, "xy2zz"}, Key{1, "xy2"}},
	}
	for _, tc := range cases {
		got := separator(tc.a, tc.b)
		if got != tc.want {
			t.Errorf("separator(%s, %s) = %s, want %s", tc.a, tc.b, got, tc.want)
		}
		if tc.a.Compare(got) >= 0 || got.Compare(tc.b) > 0 {
			t.Errorf("separator(%s, %s) = %s is not between them", tc.a, tc.b, got)
		}
	}
	keys := sortedKeys(genKeys(6, 2000, true))
	for i := 1; i < len(keys); i++ {
		s := separator(keys[i-1], keys[i])
		if keys[i-1].Compare(s) >= 0 || s.Compare(keys[i]) > 0 {
			t.Fatalf("separator(%s, %s) = %s", keys[i-1], keys[i], s)
		}
	}
}

// Readers run while a writer adds keys; run with -race.
func TestSetConcurrentReadsAndWrites(t *testing.T) {
	keys := genKeys(11, 20_000, false)
	s := setOf(t, keys[:10_000])
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for _, k := range keys[10_000:] {
			s.Add(k)
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 2000 {
			lo := keys[i]
			_, n := s.RangeFingerprint(lo, Highest())
			if n > s.Len() {
				t.Errorf("range count %d above Len", n)
				return
			}
			_ = s.Keys(lo, Highest(), 10)
		}
	}()
	wg.Wait()
	if s.Len() != 20_000 {
		t.Fatalf("Len = %d", s.Len())
	}
}
