// Package pipeline takes messages from admission to their final state: it parses
// and verifies submissions, queues them durably, fetches non-inline content,
// applies the per-type semantics (posts and amends, aggregates, stores, VMs,
// forgets) under the permission rules, retries with jittered backoff, and
// announces each outcome on the event bus.
//
// # Admission and processing
//
// Submit parses and verifies a message in the caller's goroutine, so that API
// handlers verify on every core, then queues it (ccn-protocol.md §3.2). Run is
// the single processor: it takes due messages in batches of Config.BatchSize,
// prepares them in parallel (content fetch and decoding), and applies each
// batch in one store transaction. Every type handler is split in a CHECK, which
// only reads and may fail with a protocol error, and an APPLY, which writes and
// can only fail on a database error; a message that fails therefore writes
// nothing, and the others of its batch go on. A database error rolls the batch
// back; its messages are then applied one per transaction, so a message that
// keeps failing retries alone with INTERNAL_ERROR (-1). Events are published
// after the commit.
//
// # Batches cost a few statements
//
// The handlers see the batch transaction through a batchTx: the statuses of
// the batch's hashes are read with one call, and the writes of the common
// path (queue row deletes, statuses, messages with their tags and counters,
// posts) are held back and written with the store's bulk methods, before any
// other read or write and at the end of the batch, so every read still sees
// every earlier write. A stream of arrivals is gathered into fuller batches
// (Config.BatchWait): fewer statements and, on SQLite, fewer index pages
// written per message.
//
// # Order independence
//
// Messages arrive in any order, so the derived state must not depend on it.
// Dependencies retry (101, 200, 300, 301, 501) until their target comes; the
// latest amend is the greatest content.time, ties broken by the smallest item
// hash; aggregates merge in (content.time, item hash) order; file tags point at
// the newest pin by the store's (created, item hash) order. An amend, or a VM
// update, whose target was forgotten before it arrived is forgotten on arrival
// (with the target's forgotten_by), as the FORGET would have cascaded to it
// had it come first; upstream retries it until it is rejected with 101 or 300.
//
// What stays order-dependent, as upstream: permissions granted or revoked by a
// security aggregate apply from when it is processed; a FORGET of aggregate
// keys erases the elements known when it is processed; a STORE that a VM uses
// can be forgotten if the FORGET comes before the VM (otherwise 503); the order
// of forgotten_by and forgotten_at (the first FORGET) follow processing order.
//
// # Decisions where upstream is silent or unsafe
//
//   - Only the owner, or a delegate whose matching entry lists "security" in
//     aggregate_keys, may write the "security" aggregate (upstream lets any
//     delegate with AGGREGATE rights rewrite it). Code 2.
//   - A delegation entry with a malformed field (a list that is not a list of
//     strings, a chain that is not a string) does not match.
//   - A FORGET of an already forgotten hash is accepted and appended to its
//     forgotten_by (upstream retries it and rejects it with 501). A refusal (2,
//     502, 503) wins over missing targets (501), so it is rejected at once.
//   - A FORGET is authorised per target with the FORGET's sender and chain and
//     the target's owner, type, channel, post type and key; an amend target is
//     judged against its original post, as its creation was.
//   - An AGGREGATE key given as {"name": k} is stored as upstream stores it,
//     Python's str() of the dict: {'name': 'k'}.
//   - Signature failures at admission are recorded but not published on the
//     bus: a forged copy must not answer the sync wait of a genuine one.
//   - A copy of a removed message is dropped like one of a forgotten message
//     (504).
//
// # Not enforced here
//
// Balances and costs are not checked: codes 5 (BALANCE_INSUFFICIENT),
// 6 (CREDIT_INSUFFICIENT) and 202 (INVALID_PAYMENT_METHOD) are never produced,
// and no cost rows are written; the special POSTs that feed balances and
// credits (balances-update, aleph_credit_*) are stored as plain posts.
//
// # STORE files
//
// With a file provider (Deps.Files, the file service), a STORE is processed
// only once its file is present: the prepare stage asks the provider for the
// files of a batch's STOREs concurrently, all under one deadline
// (Config.FileTimeout), and CHECK requires the file row in the processing
// transaction; a STORE whose file is not there retries with FILE_UNAVAILABLE
// (4), after the permission and ref checks, so that a refusal is not delayed.
// The garbage collector deletes a file row only when no pin holds it, in a
// transaction of its own, and transactions are serialized: either the STORE's
// message pin lands first and the file stays, or the row is gone and the
// STORE retries. Without a provider a STORE records its message pin and file
// tag whether or not the node has the file, and code 4 is never produced.
package pipeline

import (
	"context"
	"time"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
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

// FileProvider makes the file of a STORE message present before the message
// is processed (ccn/files implements it). An error wrapping
// ErrFileUnavailable makes the message retry with FILE_UNAVAILABLE (4).
type FileProvider interface {
	EnsureFile(ctx context.Context, engine filestore.Engine, hash string) (*store.File, error)
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
	// BatchWait spaces the batches of a stream: after a batch of at least two
	// but fewer than BatchSize messages, the next one starts BatchWait after
	// it started. Fuller batches cost fewer statements and page writes per
	// message. A message arriving on an idle pipeline is not delayed, and no
	// batch is while a sync submission waits for its outcome.
	BatchWait time.Duration
	// FileTimeout bounds how long a batch waits for the files of its STOREs
	// (Deps.Files): they are made present concurrently, and a STORE whose file
	// is not there in time retries with FILE_UNAVAILABLE (4) while the rest
	// of the batch goes on. A fetch that takes longer may go on in the file
	// provider and be ready at the retry.
	FileTimeout time.Duration
	// GracePeriod is how long a file whose last pin a FORGET removed is kept,
	// under a grace-period pin (pyaleph storage.grace_period: 24 h); the file
	// service's garbage collector deletes it after that.
	GracePeriod time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxRetries: 10, MaxBackoff: 300 * time.Second, SyncTimeout: 30 * time.Second, BatchSize: 256,
		IdleWait: time.Second, BatchWait: 50 * time.Millisecond, FileTimeout: 60 * time.Second,
		GracePeriod: 24 * time.Hour}
}
