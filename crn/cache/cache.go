// Package cache is the compute node's bounded, content-addressed download cache:
// code, runtimes, data and immutable volumes kept on disk under their file hash
// (sha256 hex or CID). Concurrent requests for one file share one download,
// every download is re-hashed before it is kept and lands with an atomic rename,
// entries in use (held through a Handle) are never evicted, and the least
// recently used others go when the size bound is exceeded. The index is rebuilt
// from the directory on Open, so the cache survives restarts.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/client"
)

// Errors.
var (
	// ErrInvalidKey is wrapped for a key that is not a sha256 hex digest or a CID
	// usable as a file name.
	ErrInvalidKey = errors.New("invalid cache key")
	// ErrTooLarge is wrapped when a file would not fit in the cache even empty.
	ErrTooLarge = errors.New("file larger than the cache")
	// ErrClosed is returned by Get after Close.
	ErrClosed = errors.New("cache closed")
	// ErrHashMismatch is wrapped when fetched bytes do not hash to their key.
	ErrHashMismatch = client.ErrHashMismatch
)

// FetchFunc writes the whole file named by key to w. It must stop when ctx ends.
// The cache hashes what it writes and discards it unless it matches key.
type FetchFunc func(ctx context.Context, key string, w io.Writer) error

// Config configures a Cache.
type Config struct {
	// Dir holds the cache (created if missing): files/ and tmp/.
	Dir string
	// MaxBytes bounds the bytes kept (0: no bound). Entries in use may push the
	// total over it until they are released.
	MaxBytes int64
	// VerifyOnOpen re-hashes every kept file on Open and drops those that do not
	// match (slow for large runtimes; without it, corruption on disk is only
	// noticed by the consumer).
	VerifyOnOpen bool
	Log          *slog.Logger
	// Now is the clock for last-use times (time.Now when nil).
	Now func() time.Time
}

// Stats are counters of a Cache.
type Stats struct {
	Entries   int
	Bytes     int64
	InUse     int // entries with at least one open handle
	Hits      int64
	Misses    int64 // Gets that started or joined a download
	Downloads int64 // fetches started
	Failures  int64 // fetches that failed (error or hash mismatch)
	Evictions int64
}

type entry struct {
	key      string
	size     int64
	lastUsed time.Time
	refs     int
}

// flight is one download shared by the callers waiting for it.
type flight struct {
	done    chan struct{}
	cancel  context.CancelFunc
	waiters int // callers still waiting; the download is cancelled at 0
	err     error
}

// Cache is a bounded content-addressed file cache. It is safe for concurrent use.
type Cache struct {
	dir, files, tmp string
	max             int64
	log             *slog.Logger
	now             func() time.Time

	mu       sync.Mutex
	entries  map[string]*entry
	flights  map[string]*flight
	total    int64
	stats    Stats
	closed   bool
	wg       sync.WaitGroup
	onJoin   func(key string) // test hook: a caller joined a download
	closeCtx context.Context
	closeFn  context.CancelFunc
}

// Open opens (or creates) the cache in cfg.Dir, removes leftovers of
// interrupted downloads and rebuilds the index from the kept files (their
// modification time is their last use).
func Open(ctx context.Context, cfg Config) (*Cache, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open cache: empty directory")
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("open cache: negative size bound %d", cfg.MaxBytes)
	}
	c := &Cache{
		dir: cfg.Dir, files: filepath.Join(cfg.Dir, "files"), tmp: filepath.Join(cfg.Dir, "tmp"),
		max: cfg.MaxBytes, log: cfg.Log, now: cfg.Now,
		entries: map[string]*entry{}, flights: map[string]*flight{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	// Leftovers of interrupted downloads are incomplete by construction.
	if err := os.RemoveAll(c.tmp); err != nil {
		return nil, fmt.Errorf("open cache: clear %s: %w", c.tmp, err)
	}
	for _, d := range []string{c.files, c.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open cache: %w", err)
		}
	}
	des, err := os.ReadDir(c.files)
	if err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(c.files, name)
		if checkKey(name) != nil || !de.Type().IsRegular() {
			c.log.Warn("cache: removing a foreign file", "path", p)
			if err := os.RemoveAll(p); err != nil {
				return nil, fmt.Errorf("open cache: remove %s: %w", p, err)
			}
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("open cache: %w", err)
		}
		if cfg.VerifyOnOpen {
			if err := verifyPath(ctx, p, name); err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("open cache: %w", ctx.Err())
				}
				c.log.Warn("cache: dropping a corrupt file", "key", name, "err", err)
				if err := os.Remove(p); err != nil {
					return nil, fmt.Errorf("open cache: remove %s: %w", p, err)
				}
				continue
			}
		}
		c.entries[name] = &entry{key: name, size: fi.Size(), lastUsed: fi.ModTime()}
		c.total += fi.Size()
	}
	c.closeCtx, c.closeFn = context.WithCancel(context.Background())
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func verifyPath(ctx context.Context, p, key string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return client.VerifyFile(ctx, f, key)
}

// checkKey accepts a file hash (client.FileHashEngine) made only of ASCII
// letters and digits, so that it is a safe file name.
func checkKey(key string) error {
	if key == "" || len(key) > 128 || strings.IndexFunc(key, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return fmt.Errorf("%w %q", ErrInvalidKey, clip(key))
	}
	if _, err := client.FileHashEngine(key); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Handle is a cached file in use: it is not evicted until Release.
type Handle struct {
	c    *Cache
	key  string
	path string
	size int64
	once sync.Once
}

// Key returns the file hash.
func (h *Handle) Key() string { return h.key }

// Path returns the file's path. The file is read-only: do not modify it.
func (h *Handle) Path() string { return h.path }

// Size returns the file's size in bytes.
func (h *Handle) Size() int64 { return h.size }

// Release lets the entry be evicted again. Calling it more than once is harmless.
func (h *Handle) Release() {
	h.once.Do(func() {
		c := h.c
		c.mu.Lock()
		defer c.mu.Unlock()
		if e := c.entries[h.key]; e != nil && e.refs > 0 {
			e.refs--
			e.lastUsed = c.now()
		}
		c.evictLocked()
	})
}

// Get returns a handle on the file named key, fetching it with fetch when it
// is not kept. Concurrent Gets of one key share one fetch, which is cancelled
// only when every caller waiting for it has given up; a joining caller's fetch
// is not used. The fetched bytes are
// hashed: a mismatch is an error wrapping ErrHashMismatch and nothing is kept.
func (c *Cache) Get(ctx context.Context, key string, fetch FetchFunc) (*Handle, error) {
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("cache get: %w", err)
	}
	if fetch == nil {
		return nil, errors.New("cache get: nil fetch function")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if h := c.hitLocked(key); h != nil {
		c.stats.Hits++
		c.mu.Unlock()
		return h, nil
	}
	c.stats.Misses++
	fl := c.flights[key]
	if fl == nil {
		fctx, cancel := context.WithCancel(c.closeCtx)
		fl = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[key] = fl
		c.stats.Downloads++
		c.wg.Add(1)
		go c.download(fctx, key, fetch, fl)
	}
	fl.waiters++
	hook := c.onJoin
	c.mu.Unlock()
	if hook != nil {
		hook(key)
	}

	select {
	case <-fl.done:
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		select {
		case <-fl.done:
			// Finished meanwhile: the entry counts a reference for us; give it back.
			if e := c.entries[key]; fl.err == nil && e != nil && e.refs > 0 {
				e.refs--
				c.evictLocked()
			}
		default:
			fl.waiters--
			if fl.waiters == 0 {
				fl.cancel()
			}
		}
		return nil, fmt.Errorf("cache get %s: %w", key, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fl.waiters--
	if fl.err != nil {
		return nil, fl.err
	}
	// The download added the entry with one reference per waiter at that time;
	// take ours (hitLocked would add another).
	e := c.entries[key]
	if e == nil {
		// Evicted between the download and now: only possible when nobody held it.
		return nil, fmt.Errorf("cache get %s: evicted before use", key)
	}
	return c.handleLocked(e), nil
}

func (c *Cache) hitLocked(key string) *Handle {
	e := c.entries[key]
	if e == nil {
		return nil
	}
	e.refs++
	e.lastUsed = c.now()
	// Persist the last use for the index rebuilt on Open; best effort.
	_ = os.Chtimes(c.path(key), time.Time{}, e.lastUsed)
	return c.handleLocked(e)
}

func (c *Cache) handleLocked(e *entry) *Handle {
	return &Handle{c: c, key: e.key, path: c.path(e.key), size: e.size}
}

func (c *Cache) path(key string) string { return filepath.Join(c.files, key) }

// download runs fetch into a temporary file, verifies it and renames it into
// place, then hands the entry, with one reference per waiter, to the waiters.
func (c *Cache) download(ctx context.Context, key string, fetch FetchFunc, fl *flight) {
	defer c.wg.Done()
	defer fl.cancel()
	size, err := c.fetchFile(ctx, key, fetch)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.flights, key)
	if err != nil {
		c.stats.Failures++
		fl.err = fmt.Errorf("cache get %s: %w", key, err)
		close(fl.done)
		c.log.Warn("cache: download failed", "key", key, "err", err)
		return
	}
	e := &entry{key: key, size: size, lastUsed: c.now(), refs: fl.waiters}
	c.entries[key] = e
	c.total += size
	close(fl.done)
	c.evictLocked()
}

func (c *Cache) fetchFile(ctx context.Context, key string, fetch FetchFunc) (int64, error) {
	f, err := os.CreateTemp(c.tmp, key+".*.part")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(tmp)
		}
	}()
	v := newVerifier(ctx, key)
	lw := &limitWriter{w: f, max: c.max}
	ferr := fetch(ctx, key, io.MultiWriter(lw, v))
	verr := v.finish(ferr != nil || lw.over)
	switch {
	case lw.over:
		return 0, fmt.Errorf("%w: over %d bytes", ErrTooLarge, c.max)
	case ferr != nil:
		return 0, fmt.Errorf("fetch: %w", ferr)
	case verr != nil:
		return 0, verr
	}
	if err := f.Chmod(0o444); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, c.path(key)); err != nil {
		return 0, err
	}
	keep = true
	return lw.n, nil
}

// limitWriter fails once more than max bytes (0: no bound) are written.
type limitWriter struct {
	w    io.Writer
	max  int64
	n    int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.max > 0 && l.n+int64(len(p)) > l.max {
		l.over = true
		return 0, fmt.Errorf("%w: over %d bytes", ErrTooLarge, l.max)
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// evictLocked removes the least recently used entries nobody holds until the
// total fits the bound.
func (c *Cache) evictLocked() {
	if c.max <= 0 || c.total <= c.max {
		return
	}
	var idle []*entry
	for _, e := range c.entries {
		if e.refs == 0 {
			idle = append(idle, e)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].lastUsed.Before(idle[j].lastUsed) })
	for _, e := range idle {
		if c.total <= c.max {
			return
		}
		if err := os.Remove(c.path(e.key)); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Error("cache: evict", "key", e.key, "err", err)
			continue
		}
		delete(c.entries, e.key)
		c.total -= e.size
		c.stats.Evictions++
		c.log.Debug("cache: evicted", "key", e.key, "size", e.size)
	}
	if c.total > c.max {
		c.log.Warn("cache: over its bound while entries are in use", "bytes", c.total, "max", c.max)
	}
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.Bytes = len(c.entries), c.total
	for _, e := range c.entries {
		if e.refs > 0 {
			s.InUse++
		}
	}
	return s
}

// Contains reports whether key is kept (without fetching or touching it).
func (c *Cache) Contains(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[key] != nil
}

// Close cancels the downloads in progress and waits for them. Kept files stay
// for the next Open; handles already given out remain readable.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.closeFn()
	c.wg.Wait()
	return nil
}
