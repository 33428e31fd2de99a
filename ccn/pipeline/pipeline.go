package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/store"
)

// Timing constants that are not (yet) configuration.
const (
	// fetchTimeout bounds one content fetch: a message whose content does not come
	// in time retries with code 3 and does not hold its batch up any longer.
	fetchTimeout = 10 * time.Second
	// fetchConcurrency is how many contents one batch fetches at once.
	fetchConcurrency = 8
	// fileConcurrency is how many STORE files one batch asks the file
	// provider for at once; most are local and answer at once, and the
	// provider bounds its own fetches from elsewhere.
	fileConcurrency = 64
	// errorWait is the pause after a batch failed on a database error.
	errorWait = time.Second
	// minWait avoids spinning when the queue reports a due message that Due does
	// not return (clock precision at the boundary).
	minWait = 10 * time.Millisecond
)

// Deps are the parts a pipeline works with.
type Deps struct {
	// Store keeps the queue and every record; required.
	Store store.Store
	// Verifier checks signatures at admission; required.
	Verifier *chain.Registry
	// Fetcher gets the content of storage and ipfs messages. Nil makes such
	// messages retry with CONTENT_UNAVAILABLE (3) until they are rejected.
	Fetcher ContentFetcher
	// Files makes STORE files present. Nil keeps the old behaviour: a STORE
	// pins its file without checking that the node has it.
	Files FileProvider
	// Bus receives every outcome; nil means a private bus (sync submissions
	// still work, nobody else hears the events).
	Bus *events.Bus
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// Announce, when set, is called with each message Submit queues from the
	// API, once it is durably queued: the node gossips it. It must not block
	// nor modify raw.
	Announce func(raw []byte)
	// Tombstones, when set, resolve FORGET targets this node never had.
	Tombstones Tombstones
}

func (p *Pipeline) tombstone(h string) (*store.Forgotten, bool) {
	if p.tombs == nil {
		return nil, false
	}
	return p.tombs.Tombstone(h)
}

// Pipeline admits messages (Submit) and processes the queue (Run).
type Pipeline struct {
	store    store.Store
	verifier *chain.Registry
	fetcher  ContentFetcher
	files    FileProvider
	announce func(raw []byte)
	tombs    Tombstones
	bus      *events.Bus
	now      func() time.Time
	log      *slog.Logger
	cfg      Config

	wake    chan struct{}
	running atomic.Bool
	// rnd draws the retry jitter: a value in [0, n). Tests may replace it.
	rnd func(n int64) int64
	// testHookAwait, when set, is called as a sync submission starts waiting.
	testHookAwait func(itemHash string)
	// syncWaiters counts the sync submissions in progress.
	syncWaiters atomic.Int64
}

// New checks the dependencies and configuration and returns a pipeline. Zero
// Config fields take DefaultConfig's values; negative ones are an error.
func New(d Deps, cfg Config) (*Pipeline, error) {
	if d.Store == nil {
		return nil, errors.New("pipeline: no store")
	}
	if d.Verifier == nil {
		return nil, errors.New("pipeline: no signature verifier")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		store: d.Store, verifier: d.Verifier, fetcher: d.Fetcher, files: d.Files, announce: d.Announce, tombs: d.Tombstones, bus: d.Bus,
		now: d.Now, log: d.Log, cfg: cfg, wake: make(chan struct{}, 1),
	}
	if p.bus == nil {
		p.bus = events.NewBus()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// withDefaults fills zero fields from DefaultConfig and refuses negative ones.
func (c Config) withDefaults() (Config, error) {
	def := DefaultConfig()
	if c.MaxRetries < 0 || c.MaxBackoff < 0 || c.SyncTimeout < 0 || c.BatchSize < 0 || c.IdleWait < 0 || c.BatchWait < 0 || c.FileTimeout < 0 || c.GracePeriod < 0 {
		return c, errors.New("pipeline: negative configuration value")
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = def.MaxRetries
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = def.MaxBackoff
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = def.SyncTimeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = def.BatchSize
	}
	if c.IdleWait == 0 {
		c.IdleWait = def.IdleWait
	}
	if c.BatchWait == 0 {
		c.BatchWait = def.BatchWait
	}
	if c.FileTimeout == 0 {
		c.FileTimeout = def.FileTimeout
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = def.GracePeriod
	}
	return c, nil
}

// Config returns the effective configuration.
func (p *Pipeline) Config() Config { return p.cfg }

// Wake makes Run look at the queue now instead of at its next due time. Submit
// calls it; so can whatever else enqueues (chain sync) or a test that moved its
// clock.
func (p *Pipeline) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run processes the queue until ctx ends, then returns nil after finishing the
// batch in progress (a batch whose content fetches were cut short is left
// untouched in the queue). It takes up to BatchSize due messages at a time and
// applies them in one transaction; when the queue has nothing due it sleeps
// until the next due time, IdleWait at most, or until Wake. After a partial
// batch of several messages (a stream of arrivals), the next batch starts
// BatchWait after it started, so that a stream is processed in fuller batches;
// a message arriving on an idle pipeline is processed at once. Only one Run
// may be active at a time.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: already running")
	}
	defer p.running.Store(false)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var (
		// lastStart is when the last batch started, on the machine's clock
		// (pacing is scheduling, like the timers, not protocol time), and
		// lastN its size.
		lastStart time.Time
		lastN     int
	)
	for {
		if ctx.Err() != nil {
			return nil
		}
		// Space the batches of a stream, unless a sync submission waits (its
		// caller's next message depends on this batch): one arriving during
		// the pause ends it.
		for d := batchPause(lastN, p.cfg.BatchSize, time.Since(lastStart), p.cfg.BatchWait, p.syncWaiters.Load() > 0); d > 0; {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
				d = 0
			case <-p.wake:
				d = batchPause(lastN, p.cfg.BatchSize, time.Since(lastStart), p.cfg.BatchWait, p.syncWaiters.Load() > 0)
			}
		}
		lastStart = time.Now()
		n, err := p.processOnce(ctx)
		lastN = n
		wait := p.cfg.IdleWait
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			p.log.Error("pipeline: processing failed", "err", err)
			wait = min(errorWait, wait)
		case n >= p.cfg.BatchSize:
			continue // more may be due
		default:
			next, ok, err := p.store.NextDue(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				p.log.Error("pipeline: reading the next due time", "err", err)
				break
			}
			if ok {
				d := next.Sub(p.now())
				if d <= 0 && n > 0 {
					continue
				}
				wait = min(wait, max(d, minWait))
			}
		}
		timer.Reset(wait) // since Go 1.23 a Reset timer never delivers a stale tick
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// batchPause is how long Run waits before its next batch when the last one
// took lastN messages and started since ago: the rest of batchWait after a
// partial batch of at least two (a stream); nothing after a full batch (more
// is due), after a single message or none (an idle pipeline answers at once),
// or while a sync submission waits for its outcome.
func batchPause(lastN, batchSize int, since, batchWait time.Duration, syncWaiting bool) time.Duration {
	if syncWaiting || lastN < 2 || lastN >= batchSize {
		return 0
	}
	return max(batchWait-since, 0)
}

// processOnce takes one batch of due messages, prepares them (signatures where
// needed, content fetch and decoding) in parallel, and applies them in one
// transaction, publishing the outcomes after the commit. It returns how many
// messages it took.
//
// When the batch transaction fails (a database error), it is rolled back and
// its messages are applied again one transaction each, so that a message that
// keeps failing the database cannot hold the others back; such a message is
// retried with INTERNAL_ERROR (-1), and rejected after MaxRetries.
func (p *Pipeline) processOnce(ctx context.Context) (int, error) {
	due, err := p.store.Due(ctx, p.now(), p.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("pipeline: read due messages: %w", err)
	}
	if len(due) == 0 {
		return 0, nil
	}
	items := p.prepare(ctx, due)
	if ctx.Err() != nil {
		return 0, nil // shutting down: leave the batch for next time
	}
	actx := context.WithoutCancel(ctx)
	evs, err := p.applyBatch(actx, items)
	if err == nil {
		p.publish(evs)
		return len(due), nil
	}
	p.log.Warn("pipeline: batch failed, applying its messages one by one", "size", len(items), "err", err)
	for _, it := range items {
		evs, err := p.applyBatch(actx, []*item{it})
		if err != nil {
			p.log.Error("pipeline: message failed on a database error", "item_hash", it.p.Message.ItemHash, "err", err)
			evs, err = p.applyInternal(actx, it, err)
			if err != nil {
				return len(due), fmt.Errorf("pipeline: record failure of %s: %w", it.p.Message.ItemHash, err)
			}
		}
		p.publish(evs)
	}
	return len(due), nil
}

func (p *Pipeline) publish(evs []events.Event) {
	for _, e := range evs {
		p.bus.Publish(e)
	}
}
