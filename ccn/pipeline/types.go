// Package pipeline takes messages from admission to their final state: it parses
// and verifies submissions, queues them durably, fetches non-inline content,
// applies the per-type semantics (posts and amends, aggregates, stores, VMs,
// forgets) under the permission rules, retries with jittered backoff, and
// announces each outcome on the event bus.
package pipeline

import (
	"context"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// SubmitOptions tune one submission.
type SubmitOptions struct {
	// Sync waits (up to Config.SyncTimeout) for the message to be processed or
	// rejected before returning.
	Sync bool
	// Origin is "api" (default) or "p2p".
	Origin string
}

// SubmitResult is what became of a submitted message.
type SubmitResult struct {
	ItemHash string
	// Status is pending (queued, or still queued after the sync timeout),
	// processed, rejected, forgotten, removing or removed.
	Status message.Status
	// Err is the reason for a rejection: a *message.Error with its protocol code.
	Err error
	// Details is extra JSON context for a rejection, or nil.
	Details []byte
}

// ContentFetcher gets the content of a storage or ipfs message by its item hash.
// Implementations must check that the bytes hash to itemHash. An error wrapping
// ErrContentUnavailable makes the message retry with CONTENT_UNAVAILABLE (3).
type ContentFetcher interface {
	FetchContent(ctx context.Context, itemType message.ItemType, itemHash string) ([]byte, error)
}

// Config tunes the pipeline. Zero fields take the defaults in DefaultConfig.
type Config struct {
	// MaxRetries is how many times a retryable failure is retried before the
	// message is rejected with its last error code (pyaleph: 10).
	MaxRetries int
	// MaxBackoff caps the jittered exponential retry delay (pyaleph: 300 s).
	MaxBackoff time.Duration
	// SyncTimeout bounds a sync submission's wait (pyaleph: 30 s).
	SyncTimeout time.Duration
	// BatchSize is how many pending messages one processing transaction takes.
	BatchSize int
	// IdleWait is how long the processor sleeps when the queue has nothing due
	// and nothing wakes it.
	IdleWait time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxRetries: 10, MaxBackoff: 300 * time.Second, SyncTimeout: 30 * time.Second, BatchSize: 256, IdleWait: time.Second}
}
