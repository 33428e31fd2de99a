package api

import (
	"encoding/json"
	"sync"
	"time"
)

// countCache remembers large pagination totals for a short while, as pyaleph's
// Redis count cache does (TTL 300 s there). Counting 100,000 matching rows costs
// milliseconds on every page, and a total a few seconds old is good enough to
// paginate. Totals under min are never cached, so small listings, and every test
// that inserts a message and counts it, stay exact.
type countCache struct {
	ttl time.Duration
	min int64
	now func() time.Time

	mu sync.Mutex
	m  map[string]countEntry
}

// countKey names a listing and its filter; it is the cache key, as JSON.
type countKey struct {
	Kind   string
	Filter any
}

type countEntry struct {
	n  int64
	at time.Time
}

// maxCountEntries bounds the cache: it is cleared when full, so hostile filter
// variety cannot grow it.
const maxCountEntries = 4096

func newCountCache(ttl time.Duration, min int64, now func() time.Time) *countCache {
	return &countCache{ttl: ttl, min: min, now: now, m: map[string]countEntry{}}
}

// get returns the cached total for the filter key, or calls count and caches
// the result when it is large.
func (c *countCache) get(key any, count func() (int64, error)) (int64, error) {
	if c == nil || c.ttl <= 0 {
		return count()
	}
	b, err := json.Marshal(key)
	if err != nil {
		return count()
	}
	k := string(b)
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.n, nil
	}
	n, err := count()
	if err != nil || n < c.min {
		return n, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCountEntries {
		clear(c.m)
	}
	c.m[k] = countEntry{n: n, at: now}
	c.mu.Unlock()
	return n, nil
}
