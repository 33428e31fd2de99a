// Package store is the node's repository layer: the records a core channel node keeps
// (messages and their statuses, the pending queue, rejections, forgotten skeletons,
// posts, aggregates, file pins and tags, VMs) and the queries its API serves.
//
// The package defines types and interfaces only. Backends register by name
// (Register, Open): store/sqlstore provides "sqlite" (embedded, the default) and
// "postgres". Both run the same migrations and pass the same test suite
// (store/storetest).
//
// Processing semantics (amend rules, aggregate merging, forget cascades,
// permissions) live in ccn/pipeline, written against Tx. The store only keeps
// rows consistent and answers queries fast.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// ErrNotFound is returned by single-record getters when the record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when an insert hits an existing key it must not replace.
var ErrConflict = errors.New("store: conflict")

// Store is an open database.
type Store interface {
	Reader
	Queue
	// Update runs fn in one write transaction: it commits if fn returns nil and rolls
	// back otherwise. Writes are serialized; fn must not keep tx after it returns.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// Backend names the backend ("sqlite", "postgres").
	Backend() string
	Close() error
}

// Message is a processed (or removing) message as stored and served: the envelope,
// the content exactly as hashed, and columns denormalised from the content so that
// filters are index lookups.
type Message struct {
	message.Message
	// Content is the raw content JSON: item_content for inline messages, the fetched
	// bytes otherwise. The API serves it parsed, as "content".
	Content json.RawMessage
	// Size is the byte length of Content.
	Size int64
	// Owner is content.address.
	Owner string
	// ContentType is the POST content.type.
	ContentType string
	// ContentRef is the POST or STORE content.ref (for a POST ref object, its item_hash).
	ContentRef string
	// ContentKey is the AGGREGATE key name.
	ContentKey string
	// ContentItemHash is the STORE content.item_hash (the file hash).
	ContentItemHash string
	// PaymentType is "hold", "superfluid" or "credit" for STORE, PROGRAM and INSTANCE
	// (absent payment means hold), and "" for other types.
	PaymentType string
	// Tags are the content tags (POST/AGGREGATE content.content.tags, STORE
	// content.tags, PROGRAM/INSTANCE content.metadata.tags), strings only.
	Tags []string
	// Status is processed or removing.
	Status message.Status
	// ReceptionTime is when this node first received the message.
	ReceptionTime time.Time
}

// StatusRecord is the lifecycle record every known item hash has.
type StatusRecord struct {
	ItemHash      string
	Status        message.Status
	ReceptionTime time.Time
}

// Rejected is a rejected message with the reason, queryable through the API.
type Rejected struct {
	ItemHash string
	// Message is the envelope as received (raw JSON).
	Message   json.RawMessage
	ErrorCode message.ErrorCode
	// Details is JSON (an object or list) giving more context, or nil.
	Details       json.RawMessage
	ReceptionTime time.Time
}

// Forgotten is the skeleton kept for a forgotten message.
type Forgotten struct {
	ItemHash    string
	Type        message.Type
	Chain       message.Chain
	Sender      string
	Signature   string
	ItemType    message.ItemType
	Time        message.Time
	Channel     string
	Owner       string
	PaymentType string
	Size        int64
	// ForgottenBy lists the FORGET hashes that targeted it, in order.
	ForgottenBy []string
	// ForgottenAt is the envelope time of the first FORGET.
	ForgottenAt float64
}

// Pending is a message in the durable processing queue.
type Pending struct {
	ID int64
	// Message is the parsed, schema-checked envelope.
	Message message.Message
	// Raw is the envelope exactly as received, kept for rejection records.
	Raw json.RawMessage
	// Content is the fetched content for non-inline messages, nil until fetched.
	Content       json.RawMessage
	ReceptionTime time.Time
	// NextAttempt orders the queue: min(message time, reception time) at first,
	// then now + backoff after each retry.
	NextAttempt time.Time
	Retries     int
	// CheckSignature is false only for trusted on-chain sources; API and peer
	// messages are always checked.
	CheckSignature bool
	// Origin is "p2p", "api" or "onchain".
	Origin string
	// LastError is the error code of the last failed attempt, for the final rejection.
	LastError message.ErrorCode
}

// Post is a POST's derived record.
type Post struct {
	ItemHash string
	Owner    string
	// Type is the post type; "amend" for amends.
	Type string
	// Ref is content.ref (for amends, the original's hash).
	Ref string
	// Amends is the original's hash for an amend, "" otherwise.
	Amends  string
	Channel string
	// Content is the inner content.content.
	Content json.RawMessage
	// CreationTime is content.time.
	CreationTime float64
	// LatestAmend is, for an original, the hash of the amend with the greatest
	// content.time (ties: the smallest hash), or "" if none.
	LatestAmend string
	Tags        []string
}

// AggregateElement is one AGGREGATE message's contribution.
type AggregateElement struct {
	ItemHash     string
	Key          string
	Owner        string
	Content      json.RawMessage // a JSON object
	CreationTime float64         // content.time
}

// Aggregate is the compacted (key, owner) aggregate: the shallow merge of its
// elements' contents in (CreationTime, ItemHash) order.
type Aggregate struct {
	Key     string
	Owner   string
	Content json.RawMessage // a JSON object
	// CreationTime is the earliest element time, LastUpdateTime the latest.
	CreationTime   float64
	LastUpdateTime float64
	// OriginalHash is the earliest element, LastRevisionHash the latest.
	OriginalHash     string
	LastRevisionHash string
	// Dirty marks an aggregate whose Content must be recomputed from its elements.
	Dirty bool
}

// FilePin types.
const (
	PinMessage     = "message"
	PinContent     = "content"
	PinGracePeriod = "grace_period"
)

// File is a stored file known to the node.
type File struct {
	Hash string
	Size int64
	Type string // "file" or "dir"
}

// FilePin keeps a file alive.
type FilePin struct {
	FileHash string
	Type     string // PinMessage, PinContent, PinGracePeriod
	Owner    string
	ItemHash string // the pinning message, for message/content pins
	Ref      string
	Created  float64
	DeleteBy *time.Time // grace_period pins only
}

// OwnerFile is one file an owner's STORE messages pin, as
// /api/v0/addresses/{address}/files lists it.
type OwnerFile struct {
	FileHash string
	Size     int64
	Type     string  // "file" or "dir"
	Created  float64 // the STORE content.time
	ItemHash string  // the STORE message
}

// FileTag resolves a STORE ref (or item hash) to the latest file.
type FileTag struct {
	Tag         string
	Owner       string
	FileHash    string
	LastUpdated float64
}

// VM is a PROGRAM or INSTANCE record.
type VM struct {
	ItemHash   string
	Owner      string
	Type       string // "program" or "instance"
	AllowAmend bool
	// Replaces is the hash of the VM this one updates, or "".
	Replaces string
	// Refs are the item hashes of the STOREs the VM uses (code, runtime, data,
	// volumes, rootfs parent); a STORE in use cannot be forgotten (code 503).
	Refs    []string
	Content json.RawMessage
	Created float64
}

// Tx is a write transaction. Getters see the transaction's own writes. Status
// records change only through SetStatus and SetStatuses (callers may cache
// them for the length of a transaction).
type Tx interface {
	// Statuses.
	GetStatus(ctx context.Context, itemHash string) (StatusRecord, error)
	// SetStatus inserts or replaces the status record.
	SetStatus(ctx context.Context, rec StatusRecord) error

	// Messages.
	GetMessage(ctx context.Context, itemHash string) (*Message, error)
	// InsertMessage adds a processed message; ErrConflict if it exists.
	InsertMessage(ctx context.Context, m *Message) error
	// SetMessageStatus changes a stored message's status (processed ↔ removing).
	SetMessageStatus(ctx context.Context, itemHash string, s message.Status) error
	DeleteMessage(ctx context.Context, itemHash string) error

	// Rejections and forgotten skeletons.
	PutRejected(ctx context.Context, r *Rejected) error
	DeleteRejected(ctx context.Context, itemHash string) error
	GetForgotten(ctx context.Context, itemHash string) (*Forgotten, error)
	// PutForgotten inserts the skeleton, or appends f.ForgottenBy to an existing one.
	PutForgotten(ctx context.Context, f *Forgotten) error

	// Pending queue, inside a processing transaction.
	DeletePending(ctx context.Context, id int64) error
	// RetryPending records a failed attempt.
	RetryPending(ctx context.Context, id int64, nextAttempt time.Time, retries int, code message.ErrorCode) error
	// SetPendingContent stores fetched content.
	SetPendingContent(ctx context.Context, id int64, content json.RawMessage) error

	// Posts.
	GetPost(ctx context.Context, itemHash string) (*Post, error)
	InsertPost(ctx context.Context, p *Post) error
	DeletePost(ctx context.Context, itemHash string) error
	// ListAmends returns the amends of an original, in (CreationTime, ItemHash) order.
	ListAmends(ctx context.Context, original string) ([]*Post, error)
	SetLatestAmend(ctx context.Context, original, amend string) error

	// Aggregates.
	InsertAggregateElement(ctx context.Context, e *AggregateElement) error
	GetAggregateElement(ctx context.Context, itemHash string) (*AggregateElement, error)
	DeleteAggregateElement(ctx context.Context, itemHash string) error
	// ListAggregateElements returns the elements of (owner, key) in
	// (CreationTime, ItemHash) order.
	ListAggregateElements(ctx context.Context, owner, key string) ([]*AggregateElement, error)
	GetAggregate(ctx context.Context, owner, key string) (*Aggregate, error)
	PutAggregate(ctx context.Context, a *Aggregate) error
	DeleteAggregate(ctx context.Context, owner, key string) error

	// Files, pins and tags (STORE).
	PutFile(ctx context.Context, f *File) error
	GetFile(ctx context.Context, hash string) (*File, error)
	InsertFilePin(ctx context.Context, p *FilePin) error
	// DeleteFilePins removes the pins of type pinType held by itemHash.
	DeleteFilePins(ctx context.Context, itemHash, pinType string) error
	CountFilePins(ctx context.Context, fileHash string) (int, error)
	GetFileTag(ctx context.Context, tag string) (*FileTag, error)
	PutFileTag(ctx context.Context, t *FileTag) error
	DeleteFileTag(ctx context.Context, tag string) error
	// LatestStoreForTag returns the newest STORE message pin (by Created, then
	// item hash) among the message pins whose ref or item hash maps to tag, for
	// recomputing a tag after a FORGET; ErrNotFound when none is left.
	LatestPinForTag(ctx context.Context, tag string) (*FilePin, error)

	// VMs.
	GetVM(ctx context.Context, itemHash string) (*VM, error)
	InsertVM(ctx context.Context, v *VM) error
	DeleteVM(ctx context.Context, itemHash string) error
	// VMsUsingRef lists live VMs that use the STORE itemHash.
	VMsUsingRef(ctx context.Context, storeHash string) ([]string, error)
	// VMUpdates lists the VMs whose Replaces is itemHash.
	VMUpdates(ctx context.Context, itemHash string) ([]string, error)

	// Garbage collection of files (ccn-protocol.md §3.9).

	// ExpireGracePins deletes the grace_period pins whose DeleteBy is before now
	// and returns how many it deleted.
	ExpireGracePins(ctx context.Context, now time.Time) (int, error)
	// UnpinnedFiles lists up to limit files that no pin of any type holds.
	UnpinnedFiles(ctx context.Context, limit int) ([]*File, error)
	// DeleteFileIfUnpinned deletes the file row when no pin holds it, and
	// reports whether it did.
	DeleteFileIfUnpinned(ctx context.Context, hash string) (bool, error)

	// Bulk variants, for processing batches: each does what its single-row
	// method does for every element, in a few statements instead of one or
	// more per element.

	// GetStatuses returns the status records of the hashes that have one,
	// keyed by hash.
	GetStatuses(ctx context.Context, hashes []string) (map[string]StatusRecord, error)
	// SetStatuses is SetStatus for each record, in order: for a hash given
	// twice the later status wins and a zero ReceptionTime keeps the one before.
	SetStatuses(ctx context.Context, recs []StatusRecord) error
	// InsertMessages is InsertMessage for each message. It inserts the ones
	// whose hash is not stored yet; if some hash was stored (or is given
	// twice), it returns an error wrapping ErrConflict after inserting the
	// others.
	InsertMessages(ctx context.Context, ms []*Message) error
	// DeletePendings is DeletePending for each id.
	DeletePendings(ctx context.Context, ids []int64) error
	// InsertPosts is InsertPost for each post, with InsertMessages' rule for
	// conflicts.
	InsertPosts(ctx context.Context, ps []*Post) error
}

// Queue is the durable pending queue, outside processing transactions.
type Queue interface {
	// Enqueue durably adds pending messages, skipping any whose (sender, item_hash,
	// signature) is already queued, and sets their status to pending unless the
	// hash already has a status other than rejected; a hash set back from
	// rejected to pending loses its rejection record. It returns, for each
	// input, whether it was queued. When Enqueue returns, the rows are committed.
	Enqueue(ctx context.Context, ps []*Pending) ([]bool, error)
	// Due returns up to limit pending messages with NextAttempt ≤ now, in
	// (NextAttempt, ID) order.
	Due(ctx context.Context, now time.Time, limit int) ([]*Pending, error)
	// NextDue returns the earliest NextAttempt in the queue, or ok=false when empty.
	NextDue(ctx context.Context) (t time.Time, ok bool, err error)
	// PendingCount returns the queue length.
	PendingCount(ctx context.Context) (int64, error)
}

// SortOrder is -1 (newest first, the default) or 1 (oldest first).
type SortOrder int

// Sort orders.
const (
	Descending SortOrder = -1
	Ascending  SortOrder = 1
)

// Cursor is a position in a time-ordered listing: the last row's sort time and
// item hash (ties are broken by item hash ascending).
type Cursor struct {
	Time float64
	Hash string
}

// Page selects rows. With Cursor set (cursor mode) Number is ignored and Size is
// at most 200; otherwise Number is 1-based and Size 0 means no limit.
type Page struct {
	Size   int
	Number int
	Cursor *Cursor
}

// MessageFilter selects messages; empty fields do not filter. List fields match any
// of their values.
type MessageFilter struct {
	Hashes        []string
	Senders       []string // the "addresses" parameter
	Owners        []string // content.address
	Refs          []string
	ContentHashes []string
	ContentKeys   []string
	ContentTypes  []string
	Chains        []message.Chain
	Channels      []string
	Types         []message.Type
	Tags          []string // overlap
	PaymentTypes  []string
	// Statuses defaults to processed and removing.
	Statuses []message.Status
	// StartDate ≤ time < EndDate, in unix seconds; 0 means unbounded.
	StartDate, EndDate float64
	SortOrder          SortOrder
}

// PostFilter selects original posts (amends are folded into them).
type PostFilter struct {
	Owners    []string
	Hashes    []string // original hashes
	Refs      []string
	Types     []string // original types
	Tags      []string
	Channels  []string
	StartDate float64 // on last update time
	EndDate   float64
	SortOrder SortOrder
}

// PostView is an original post with its latest amend merged in.
type PostView struct {
	Original *Post
	// Latest is the latest amend's post record, or nil.
	Latest *Post
	// LatestMessage is the message of the latest version (amend or original).
	LatestMessage *Message
	// OriginalMessage is the original's message.
	OriginalMessage *Message
}

// AggregateFilter selects compacted aggregates.
type AggregateFilter struct {
	Owners []string
	Keys   []string
	// SortBy is "last_modified" (default) or "creation_time".
	SortBy    string
	SortOrder SortOrder
}

// AddressStats counts an address's processed messages by type.
type AddressStats struct {
	Address  string
	Messages int64
	ByType   map[message.Type]int64
}

// Reader answers the API's queries.
type Reader interface {
	GetStatus(ctx context.Context, itemHash string) (StatusRecord, error)
	GetMessage(ctx context.Context, itemHash string) (*Message, error)
	GetRejected(ctx context.Context, itemHash string) (*Rejected, error)
	GetForgotten(ctx context.Context, itemHash string) (*Forgotten, error)
	// PendingByHash lists the queued copies of an item hash.
	PendingByHash(ctx context.Context, itemHash string) ([]*Pending, error)

	// QueryMessages lists messages by (time, item_hash) in f.SortOrder. In cursor
	// mode it returns the cursor of the next page, nil at the end.
	QueryMessages(ctx context.Context, f MessageFilter, p Page) ([]*Message, *Cursor, error)
	// CountMessages counts the messages QueryMessages would list without paging.
	// Backends may answer from counters for unfiltered or simple filters.
	CountMessages(ctx context.Context, f MessageFilter) (int64, error)
	// MessageHashes lists item hashes with a status (all statuses when empty) by
	// reception time.
	MessageHashes(ctx context.Context, status message.Status, start, end float64, order SortOrder, p Page) ([]string, error)

	QueryPosts(ctx context.Context, f PostFilter, p Page) ([]*PostView, *Cursor, error)
	CountPosts(ctx context.Context, f PostFilter) (int64, error)

	// GetAggregates returns an owner's aggregates, restricted to keys when given,
	// with dirty ones recomputed. An empty result is not an error.
	GetAggregates(ctx context.Context, owner string, keys []string) ([]*Aggregate, error)
	QueryAggregates(ctx context.Context, f AggregateFilter, p Page) ([]*Aggregate, error)
	CountAggregates(ctx context.Context, f AggregateFilter) (int64, error)

	AddressStats(ctx context.Context, addresses []string) ([]*AddressStats, error)
	// Channels lists the distinct non-empty channels of processed messages.
	Channels(ctx context.Context) ([]string, error)
	// PostTypes and AddressChannels serve /addresses/{address}/….
	PostTypes(ctx context.Context, owner string) ([]string, error)
	AddressChannels(ctx context.Context, owner string) ([]string, error)
	GetFileTag(ctx context.Context, tag string) (*FileTag, error)
	CountFilePins(ctx context.Context, fileHash string) (int, error)
	// GetFile returns a file row, ErrNotFound when the node does not know it.
	GetFile(ctx context.Context, hash string) (*File, error)
	// GetStorePin returns the message pin a STORE message holds, ErrNotFound
	// when itemHash is not a processed STORE.
	GetStorePin(ctx context.Context, itemHash string) (*FilePin, error)
	// OwnerFiles lists the files the owner's STORE messages pin, by Created in
	// order (ties by item hash), with the total count and byte size of all of them.
	OwnerFiles(ctx context.Context, owner string, order SortOrder, p Page) (files []*OwnerFile, total int64, totalSize int64, err error)

	// SyncItems lists the anti-entropy set in (Time, ItemHash) order, after the
	// given key (nil: from the start), at most limit items (1..MaxSyncItems).
	// Used to load the in-memory index at start-up.
	SyncItems(ctx context.Context, after *SyncKey, limit int) ([]SyncKey, error)
	// StateDigest hashes the processed messages and the derived state,
	// deterministically: two nodes that processed the same messages get the
	// same digest whatever the arrival order.
	StateDigest(ctx context.Context) (*StateDigest, error)
}

// MaxSyncItems bounds one SyncItems page.
const MaxSyncItems = 100_000

// SyncKey is one item of the anti-entropy set: a processed, removing or
// forgotten message, keyed by its envelope time (exactly as stored) and hash.
type SyncKey struct {
	Time     float64
	ItemHash string
	// Forgotten marks a forgotten skeleton (a hash in both tables counts as forgotten).
	Forgotten bool
}

// Less orders keys by (Time, ItemHash), bytewise on the hash.
func (k SyncKey) Less(o SyncKey) bool {
	if k.Time != o.Time {
		return k.Time < o.Time
	}
	return k.ItemHash < o.ItemHash
}

// State digest sections (docs/PROTOCOL-DECISIONS.md, "State digest").
const (
	DigestStatuses   = "statuses"
	DigestAggregates = "aggregates"
	DigestPosts      = "posts"
	DigestPins       = "pins"
	DigestTags       = "tags"
	DigestVMs        = "vms"
)

// DigestSectionNames lists every section, in the order the digest hashes them.
var DigestSectionNames = []string{DigestAggregates, DigestPins, DigestPosts, DigestStatuses, DigestTags, DigestVMs}

// StateDigest summarizes a node's state: one hash per section and a digest over them.
type StateDigest struct {
	// Digest is the hex sha256 over the sections (DigestOf).
	Digest string
	// Sections are keyed by name (DigestSectionNames).
	Sections map[string]DigestSection
}

// DigestSection is the row count and the hex sha256 of one section's rows.
type DigestSection struct {
	Count int64
	Hash  string
}

// digestVersion starts the digest input; a change of encoding changes it.
const digestVersion = "aleph-state-digest/1\n"

// DigestOf is the digest of sections: hex sha256 of "aleph-state-digest/1\n"
// followed by "name count hash\n" for each given section in name order. A peer's
// answer can be checked with it.
func DigestOf(sections map[string]DigestSection) string {
	names := make([]string, 0, len(sections))
	for name := range sections {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	io.WriteString(h, digestVersion)
	for _, name := range names {
		s := sections[name]
		io.WriteString(h, name+" "+strconv.FormatInt(s.Count, 10)+" "+s.Hash+"\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Opener opens a backend from a data source name.
type Opener func(ctx context.Context, dsn string) (Store, error)

var backends = map[string]Opener{}

// Register makes a backend available to Open. It is meant to be called from the
// backend package's init, and panics on a duplicate name.
func Register(name string, open Opener) {
	if _, dup := backends[name]; dup {
		panic("store: backend registered twice: " + name)
	}
	backends[name] = open
}

// Open opens the backend named by the DSN's scheme: "postgres://…" or
// "postgresql://…" for PostgreSQL, "sqlite:///path/to/file.db" or a plain file
// path for SQLite. It runs the migrations before returning.
func Open(ctx context.Context, dsn string) (Store, error) {
	name := BackendFor(dsn)
	open, ok := backends[name]
	if !ok {
		return nil, errors.New("store: no backend " + name + " (import store/sqlstore)")
	}
	return open(ctx, dsn)
}

// BackendFor returns the backend name a DSN selects.
func BackendFor(dsn string) string {
	switch {
	case hasPrefix(dsn, "postgres://"), hasPrefix(dsn, "postgresql://"):
		return "postgres"
	default:
		return "sqlite"
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
