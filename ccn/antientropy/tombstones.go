package antientropy

import (
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/store"
)

// Tombstones keeps the skeletons of messages forgotten on peers that this
// node never had, for the pipeline (pipeline.Tombstones): a FORGET synced from
// a peer names a target nobody can send any more, and its skeleton, signed by
// the target's sender, stands in for it. Bounded in count and age: a skeleton
// matters only until its FORGET is processed, which follows in the same
// session or the next.
type Tombstones struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	items map[string]tombstone
}

type tombstone struct {
	sk    *store.Forgotten
	added time.Time
}

// NewTombstones returns a store of at most max skeletons kept for ttl.
func NewTombstones(max int, ttl time.Duration, now func() time.Time) *Tombstones {
	if now == nil {
		now = time.Now
	}
	return &Tombstones{max: max, ttl: ttl, now: now, items: map[string]tombstone{}}
}

// Tombstone implements pipeline.Tombstones.
func (t *Tombstones) Tombstone(itemHash string) (*store.Forgotten, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts, ok := t.items[itemHash]
	if !ok || t.now().Sub(ts.added) > t.ttl {
		return nil, false
	}
	return ts.sk, true
}

// add keeps a skeleton whose signature the caller checked.
func (t *Tombstones) add(sk *store.Forgotten) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.items) >= t.max {
		for h, ts := range t.items {
			if now.Sub(ts.added) > t.ttl {
				delete(t.items, h)
			}
		}
		if len(t.items) >= t.max {
			return // full of fresh ones: the next session brings it again
		}
	}
	t.items[sk.ItemHash] = tombstone{sk: sk, added: now}
}
