package api

import (
	"errors"
	"testing"
	"time"
)

func TestCountCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newCountCache(30*time.Second, 100, func() time.Time { return now })
	calls := 0
	counter := func(n int64) func() (int64, error) {
		return func() (int64, error) { calls++; return n, nil }
	}
	// Small totals are always counted.
	for range 3 {
		if n, _ := c.get("small", counter(5)); n != 5 {
			t.Fatalf("small total %d", n)
		}
	}
	if calls != 3 {
		t.Errorf("small totals counted %d times, want 3", calls)
	}
	// Large totals are counted once per TTL, per filter.
	calls = 0
	c.get("large", counter(500))
	if n, _ := c.get("large", counter(999)); n != 500 || calls != 1 {
		t.Errorf("cached large total: got %d after %d counts", n, calls)
	}
	if n, _ := c.get("other", counter(700)); n != 700 || calls != 2 {
		t.Errorf("a different filter shares the cache entry")
	}
	now = now.Add(31 * time.Second)
	if n, _ := c.get("large", counter(999)); n != 999 || calls != 3 {
		t.Errorf("expired entry not recounted: %d", n)
	}
	// Errors pass through and are not cached.
	if _, err := c.get("err", func() (int64, error) { return 0, errors.New("boom") }); err == nil {
		t.Error("error swallowed")
	}
	// A nil cache or zero TTL counts every time.
	var nilCache *countCache
	calls = 0
	nilCache.get("x", counter(1000))
	nilCache.get("x", counter(1000))
	if calls != 2 {
		t.Error("nil cache should not cache")
	}
}

func TestCountCacheIsBounded(t *testing.T) {
	c := newCountCache(time.Minute, 0, time.Now)
	for i := range maxCountEntries + 10 {
		c.get(i, func() (int64, error) { return 1, nil })
	}
	if len(c.m) > maxCountEntries {
		t.Errorf("cache grew to %d entries", len(c.m))
	}
}
