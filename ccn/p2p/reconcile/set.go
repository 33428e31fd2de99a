package reconcile

import (
	"slices"
	"sort"
	"sync"
)

// Chunk sizes of the sorted list. A range fingerprint sums whole chunks from
// their cached sums and at most two partial chunks item by item, so it costs
// O(chunks + chunkMax).
const (
	chunkMax = 512
	chunkMin = chunkMax / 8 // below this, a chunk merges with its neighbour
)

type entry struct {
	key Key
	id  accum
}

type chunk struct {
	items []entry // sorted, never empty while the chunk is in a Set
	sum   accum   // sum of the items' IDs
}

func newChunk() *chunk { return &chunk{items: make([]entry, 0, chunkMax)} }

// pos is a position in a Set: item i of chunk c. Positions are normalised: i is
// below the chunk's length, and the end of the set is {len(chunks), 0}.
type pos struct{ c, i int }

// Set is a concurrency-safe in-memory sorted set with additive fingerprints.
// Reads (fingerprints, ranges) may run while Add is called from another
// goroutine. The zero value is not usable; call NewSet.
type Set struct {
	mu     sync.RWMutex
	chunks []*chunk
	n      int
	sum    accum
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{} }

// Add inserts k. It returns false when k is already present or is not valid
// (see Key.Validate).
func (s *Set) Add(k Key) bool {
	if k.Validate() != nil {
		return false
	}
	if k.Time == 0 {
		k.Time = 0 // -0 and +0 are one key: store one spelling
	}
	e := entry{key: k, id: idOf(k.Hash)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.chunks) == 0 {
		c := newChunk()
		c.items = append(c.items, e)
		c.sum = e.id
		s.chunks = append(s.chunks, c)
		s.n, s.sum = 1, e.id
		return true
	}
	ci := s.findChunk(k)
	if ci == len(s.chunks) {
		ci-- // after the last key: the last chunk takes it
	}
	c := s.chunks[ci]
	i := searchChunk(c, k)
	if i < len(c.items) && c.items[i].key.Compare(k) == 0 {
		return false
	}
	s.n++
	s.sum.add(&e.id)
	if len(c.items) >= chunkMax {
		if ci == len(s.chunks)-1 && i == len(c.items) {
			// Appending after the newest key is the common case: a fresh chunk
			// keeps the older ones full instead of half full.
			nc := newChunk()
			nc.items = append(nc.items, e)
			nc.sum = e.id
			s.chunks = append(s.chunks, nc)
			return true
		}
		s.split(ci)
		if i > len(c.items) {
			i -= len(c.items)
			ci++
			c = s.chunks[ci]
		}
	}
	c.items = slices.Insert(c.items, i, e)
	c.sum.add(&e.id)
	return true
}

// split moves the upper half of chunk ci into a new chunk after it.
func (s *Set) split(ci int) {
	c := s.chunks[ci]
	half := len(c.items) / 2
	nc := newChunk()
	nc.items = append(nc.items, c.items[half:]...)
	for i := range nc.items {
		nc.sum.add(&nc.items[i].id)
		c.sum.sub(&nc.items[i].id)
	}
	clear(c.items[half:]) // drop references to the moved hashes
	c.items = c.items[:half]
	s.chunks = slices.Insert(s.chunks, ci+1, nc)
}

// Remove deletes k and reports whether it was present.
func (s *Set) Remove(k Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ci := s.findChunk(k)
	if ci == len(s.chunks) {
		return false
	}
	c := s.chunks[ci]
	i := searchChunk(c, k)
	if c.items[i].key.Compare(k) != 0 {
		return false
	}
	id := c.items[i].id
	c.sum.sub(&id)
	s.sum.sub(&id)
	s.n--
	c.items = slices.Delete(c.items, i, i+1)
	switch {
	case len(c.items) == 0:
		s.chunks = slices.Delete(s.chunks, ci, ci+1)
	case len(c.items) < chunkMin && ci+1 < len(s.chunks) && len(c.items)+len(s.chunks[ci+1].items) <= chunkMax*3/4:
		next := s.chunks[ci+1]
		c.items = append(c.items, next.items...)
		c.sum.add(&next.sum)
		s.chunks = slices.Delete(s.chunks, ci+1, ci+2)
	}
	return true
}

// Has reports whether k is in the set.
func (s *Set) Has(k Key) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hasLocked(k)
}

func (s *Set) hasLocked(k Key) bool {
	ci := s.findChunk(k)
	if ci == len(s.chunks) {
		return false
	}
	c := s.chunks[ci]
	i := searchChunk(c, k)
	return c.items[i].key.Compare(k) == 0
}

// Len returns the number of keys.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// Fingerprint returns the fingerprint of the whole set, for quick equality
// checks and metrics.
func (s *Set) Fingerprint() Fingerprint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fingerprintOf(&s.sum, s.n)
}

// RangeFingerprint returns the fingerprint and the number of the keys k with
// lower <= k < upper.
func (s *Set) RangeFingerprint(lower, upper Key) (Fingerprint, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if lower.Compare(upper) >= 0 {
		return emptyFingerprint(), 0
	}
	a, b := s.seek(lower), s.seek(upper)
	sum := s.sumBetween(a, b)
	n := s.countBetween(a, b)
	return fingerprintOf(&sum, n), n
}

// Keys returns the keys k with lower <= k < upper, in order, at most limit of
// them (limit <= 0: all).
func (s *Set) Keys(lower, upper Key, limit int) []Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if lower.Compare(upper) >= 0 {
		return nil
	}
	a, b := s.seek(lower), s.seek(upper)
	n := s.countBetween(a, b)
	if limit > 0 && n > limit {
		n = limit
	}
	out := make([]Key, 0, n)
	for p := a; p != b && len(out) < n; p = s.next(p) {
		out = append(out, s.at(p).key)
	}
	return out
}

// findChunk returns the first chunk whose last key is >= k, or len(chunks).
func (s *Set) findChunk(k Key) int {
	return sort.Search(len(s.chunks), func(i int) bool {
		c := s.chunks[i]
		return c.items[len(c.items)-1].key.Compare(k) >= 0
	})
}

func searchChunk(c *chunk, k Key) int {
	return sort.Search(len(c.items), func(i int) bool { return c.items[i].key.Compare(k) >= 0 })
}

// seek returns the position of the first key >= k.
func (s *Set) seek(k Key) pos {
	ci := s.findChunk(k)
	if ci == len(s.chunks) {
		return pos{ci, 0}
	}
	return pos{ci, searchChunk(s.chunks[ci], k)}
}

func (s *Set) at(p pos) *entry { return &s.chunks[p.c].items[p.i] }

func (s *Set) next(p pos) pos {
	p.i++
	if p.i == len(s.chunks[p.c].items) {
		return pos{p.c + 1, 0}
	}
	return p
}

// prev returns the position before p; p must not be the first position.
func (s *Set) prev(p pos) pos {
	if p.i > 0 {
		return pos{p.c, p.i - 1}
	}
	return pos{p.c - 1, len(s.chunks[p.c-1].items) - 1}
}

// advance moves p forward by n items; there must be at least n items after p.
func (s *Set) advance(p pos, n int) pos {
	for n > 0 {
		rest := len(s.chunks[p.c].items) - p.i
		if n < rest {
			return pos{p.c, p.i + n}
		}
		n -= rest
		p = pos{p.c + 1, 0}
	}
	return p
}

func before(a, b pos) bool { return a.c < b.c || (a.c == b.c && a.i < b.i) }

// countBetween returns the number of items in [a, b).
func (s *Set) countBetween(a, b pos) int {
	if !before(a, b) {
		return 0
	}
	if a.c == b.c {
		return b.i - a.i
	}
	n := len(s.chunks[a.c].items) - a.i
	for c := a.c + 1; c < b.c; c++ {
		n += len(s.chunks[c].items)
	}
	if b.c < len(s.chunks) {
		n += b.i
	}
	return n
}

// sumBetween returns the sum of the IDs of the items in [a, b).
func (s *Set) sumBetween(a, b pos) accum {
	var sum accum
	if !before(a, b) {
		return sum
	}
	if a.c == b.c {
		s.partialSum(&sum, a.c, a.i, b.i)
		return sum
	}
	s.partialSum(&sum, a.c, a.i, len(s.chunks[a.c].items))
	for c := a.c + 1; c < b.c; c++ {
		sum.add(&s.chunks[c].sum)
	}
	if b.c < len(s.chunks) {
		s.partialSum(&sum, b.c, 0, b.i)
	}
	return sum
}

// partialSum adds the IDs of items [from, to) of chunk c to sum, through the
// cached chunk sum when that touches fewer items.
func (s *Set) partialSum(sum *accum, c, from, to int) {
	ch := s.chunks[c]
	items := ch.items
	if to-from <= len(items)-(to-from) {
		for i := from; i < to; i++ {
			sum.add(&items[i].id)
		}
		return
	}
	sum.add(&ch.sum)
	for i := 0; i < from; i++ {
		sum.sub(&items[i].id)
	}
	for i := to; i < len(items); i++ {
		sum.sub(&items[i].id)
	}
}
