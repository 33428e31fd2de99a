package files

import (
	"context"
	"fmt"
	"sync"
)

// hashLocks are per-hash mutexes that a waiter can give up on. The upload
// paths and EnsureFile hold a hash's lock across "bytes in the filestore, then
// file row and grace pin in the database"; the garbage collector holds it
// across "row deleted, then bytes deleted". Nobody takes one inside a
// database transaction, so they never wait on each other in a cycle.
type hashLocks struct {
	mu sync.Mutex
	m  map[string]*hashLock
}

type hashLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters
}

// entry returns the lock of hash, counting the caller in.
func (l *hashLocks) entry(hash string) *hashLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*hashLock{}
	}
	e := l.m[hash]
	if e == nil {
		e = &hashLock{ch: make(chan struct{}, 1)}
		l.m[hash] = e
	}
	e.refs++
	return e
}

// lock takes the lock of hash, or fails when ctx ends first. The returned
// function releases it.
func (l *hashLocks) lock(ctx context.Context, hash string) (func(), error) {
	e := l.entry(hash)
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; l.release(hash, e) }, nil
	case <-ctx.Done():
		l.release(hash, e)
		return nil, fmt.Errorf("wait for %s: %w", hash, ctx.Err())
	}
}

// tryLock takes the lock of hash if it is free.
func (l *hashLocks) tryLock(hash string) (func(), bool) {
	e := l.entry(hash)
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; l.release(hash, e) }, true
	default:
		l.release(hash, e)
		return nil, false
	}
}

func (l *hashLocks) release(hash string, e *hashLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, hash)
	}
}

// size is the number of hashes locked or waited for (tests).
func (l *hashLocks) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
