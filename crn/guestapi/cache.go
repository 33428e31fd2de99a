package guestapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Cache defaults (crn-compute.md §2.8: Redis SET … EX 604800).
const (
	DefaultTTL           = 7 * 24 * time.Hour
	DefaultMaxValueSize  = 1 << 20  // one value
	DefaultMaxKeysPerVM  = 1024     // live keys of one VM
	DefaultMaxBytesPerVM = 16 << 20 // keys + values of one VM
	DefaultSweepInterval = time.Hour
	// MaxKeyLength bounds a key in bytes; keys are \w+ and real ones are short.
	MaxKeyLength = 256
)

// Cache errors, matched with errors.Is.
var (
	ErrValueTooLarge = errors.New("value too large")
	ErrQuota         = errors.New("cache quota exceeded")
)

// rootBucket holds one sub-bucket per VM, named by its item hash: the per-VM
// key prefix of upstream's Redis, which also makes dropping a VM's keys one call.
var rootBucket = []byte("guestapi-cache")

// CacheConfig sets the cache's limits and clock. Zero fields take the defaults.
type CacheConfig struct {
	TTL           time.Duration
	MaxValueSize  int
	MaxKeysPerVM  int
	MaxBytesPerVM int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

func (c CacheConfig) withDefaults() CacheConfig {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxValueSize <= 0 {
		c.MaxValueSize = DefaultMaxValueSize
	}
	if c.MaxKeysPerVM <= 0 {
		c.MaxKeysPerVM = DefaultMaxKeysPerVM
	}
	if c.MaxBytesPerVM <= 0 {
		c.MaxBytesPerVM = DefaultMaxBytesPerVM
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Cache is the programs' key-value cache, shared by every VM of a node and
// kept in one bbolt file. Each value is stored with its expiry; expired values
// are invisible at once and removed by Sweep. It is safe for concurrent use.
type Cache struct {
	db  *bolt.DB
	cfg CacheConfig
	// swept is signalled after each sweep of Run; tests wait on it.
	swept func()
}

// OpenCache opens (creating if needed) the cache file at path.
func OpenCache(path string, cfg CacheConfig) (*Cache, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(rootBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	return &Cache{db: db, cfg: cfg.withDefaults()}, nil
}

// Close closes the file.
func (c *Cache) Close() error { return c.db.Close() }

// Config returns the effective configuration.
func (c *Cache) Config() CacheConfig { return c.cfg }

// entry layout: 8-byte big-endian expiry (unix nanoseconds), then the value.
func encodeEntry(expiry time.Time, value []byte) []byte {
	b := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(b, uint64(expiry.UnixNano()))
	copy(b[8:], value)
	return b
}

// live reports whether a stored entry has not expired at now. Short entries
// (a damaged file) count as expired, so Sweep removes them.
func live(entry []byte, now time.Time) bool {
	return len(entry) >= 8 && int64(binary.BigEndian.Uint64(entry)) > now.UnixNano()
}

// Get returns the value of key for vm; ok is false when it is absent or expired.
func (c *Cache) Get(vm, key string) (value []byte, ok bool, err error) {
	now := c.cfg.Now()
	err = c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(rootBucket).Bucket([]byte(vm))
		if b == nil {
			return nil
		}
		e := b.Get([]byte(key))
		if e == nil || !live(e, now) {
			return nil
		}
		value, ok = append([]byte(nil), e[8:]...), true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("cache get: %w", err)
	}
	return value, ok, nil
}

// Set stores value under key for vm with the configured TTL. It fails with
// ErrValueTooLarge over MaxValueSize, and with ErrQuota when the VM would hold
// more than MaxKeysPerVM live keys or MaxBytesPerVM bytes of keys and values.
func (c *Cache) Set(vm, key string, value []byte) error {
	if len(value) > c.cfg.MaxValueSize {
		return fmt.Errorf("cache set: %w: %d bytes, over the %d-byte limit", ErrValueTooLarge, len(value), c.cfg.MaxValueSize)
	}
	now := c.cfg.Now()
	err := c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(rootBucket).CreateBucketIfNotExists([]byte(vm))
		if err != nil {
			return err
		}
		// Usage of the VM's other live keys; a quota of 1024 keys keeps the scan short.
		keys, size := 0, 0
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if string(k) == key || !live(v, now) {
				continue
			}
			keys++
			size += len(k) + len(v) - 8
		}
		if keys+1 > c.cfg.MaxKeysPerVM {
			return fmt.Errorf("%w: the VM already holds %d keys, the limit", ErrQuota, keys)
		}
		if size+len(key)+len(value) > c.cfg.MaxBytesPerVM {
			return fmt.Errorf("%w: the VM would hold %d bytes, over the %d-byte limit", ErrQuota, size+len(key)+len(value), c.cfg.MaxBytesPerVM)
		}
		return b.Put([]byte(key), encodeEntry(now.Add(c.cfg.TTL), value))
	})
	if err != nil {
		return fmt.Errorf("cache set: %w", err)
	}
	return nil
}

// Delete removes key for vm and reports how many live keys it removed (0 or 1),
// as Redis DEL does.
func (c *Cache) Delete(vm, key string) (int, error) {
	now := c.cfg.Now()
	n := 0
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(rootBucket).Bucket([]byte(vm))
		if b == nil {
			return nil
		}
		e := b.Get([]byte(key))
		if e == nil {
			return nil
		}
		if live(e, now) {
			n = 1
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return 0, fmt.Errorf("cache delete: %w", err)
	}
	return n, nil
}

// Keys returns vm's live keys that match the glob pattern (see ValidPattern),
// sorted.
func (c *Cache) Keys(vm, pattern string) ([]string, error) {
	now := c.cfg.Now()
	out := []string{}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(rootBucket).Bucket([]byte(vm))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if live(v, now) && globMatch(pattern, string(k)) {
				out = append(out, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cache keys: %w", err)
	}
	sort.Strings(out) // bbolt already orders keys; kept explicit for the contract
	return out, nil
}

// DropVM removes every key of vm, for a program that is forgotten.
func (c *Cache) DropVM(vm string) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(rootBucket).DeleteBucket([]byte(vm))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("cache drop %s: %w", vm, err)
	}
	return nil
}

// Sweep deletes expired entries, and VM buckets left empty, and returns how
// many entries it deleted.
func (c *Cache) Sweep() (int, error) {
	now := c.cfg.Now()
	n := 0
	err := c.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(rootBucket)
		var empty [][]byte
		err := root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			cur := b.Cursor()
			for k, v := cur.First(); k != nil; {
				if live(v, now) {
					k, v = cur.Next()
					continue
				}
				// Next after Delete can skip an item in bbolt; Seek past the deleted key.
				deleted := append([]byte(nil), k...)
				if err := cur.Delete(); err != nil {
					return err
				}
				n++
				k, v = cur.Seek(deleted)
			}
			if k, _ := cur.First(); k == nil {
				empty = append(empty, append([]byte(nil), name...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range empty {
			if err := root.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("cache sweep: %w", err)
	}
	return n, nil
}

// Run sweeps every interval (DefaultSweepInterval when zero) until ctx ends.
func (c *Cache) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := c.Sweep()
		if err != nil {
			c.cfg.Log.Warn("guest api cache sweep failed", "err", err)
		} else if n > 0 {
			c.cfg.Log.Debug("guest api cache swept", "expired", n)
		}
		if c.swept != nil {
			c.swept()
		}
	}
}
