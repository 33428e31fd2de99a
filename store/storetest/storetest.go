// Package storetest is the backend-independent test suite of store.Store. A
// backend's tests call Run with a function that opens a fresh, empty store; every
// subtest gets its own store. The suite covers every method of store.Store,
// store.Tx, store.Queue and store.Reader: exact round trips (bytes of content,
// text of times), ErrNotFound and ErrConflict, status rules, the durable queue
// under concurrency, every message filter against a reference implementation,
// page and cursor pagination, counters, posts with amends, aggregates with
// dirty recompute, files, VMs, the anti-entropy listing, the state digest,
// rollback and context cancellation.
//
// Conventions the suite relies on beyond store.go's comments: a cursor with an
// empty Hash asks for the first page in cursor mode; deletes of missing records
// are no-ops; SetStatus with a zero ReceptionTime keeps the stored one.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// Opener opens a fresh, empty store for one subtest; it registers its own cleanup.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite against the backend open returns.
func Run(t *testing.T, open Opener) {
	groups := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Messages", testMessages},
		{"Statuses", testStatuses},
		{"Rejected", testRejected},
		{"Forgotten", testForgotten},
		{"Queue", testQueue},
		{"Query", testQuery},
		{"Hashes", testMessageHashes},
		{"Stats", testStats},
		{"Posts", testPosts},
		{"Aggregates", testAggregates},
		{"Files", testFiles},
		{"FileGC", testFileGC},
		{"StorePins", testStorePins},
		{"VMs", testVMs},
		{"SyncItems", testSyncItems},
		{"StateDigest", testStateDigest},
		{"Update", testUpdate},
		{"Context", testContext},
		{"Close", testClose},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.fn(t, open) })
	}
}

// timeout bounds every call the suite makes.
const timeout = 60 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// update runs fn in a transaction and fails the test on error.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := testCtx(t)
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// mustTime parses a JSON number into a message.Time, keeping its text.
func mustTime(t *testing.T, text string) message.Time {
	t.Helper()
	var mt message.Time
	if err := mt.UnmarshalJSON([]byte(text)); err != nil {
		t.Fatalf("time %q: %v", text, err)
	}
	return mt
}

// hashOf returns a deterministic 64-hex item hash for a label.
func hashOf(label string) string { return message.HashContent([]byte(label)) }

// baseTime is a fixed reception instant (no wall clock in the suite).
var baseTime = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

// msgOpts describe a message for newMessage.
type msgOpts struct {
	typ         message.Type
	chain       message.Chain
	sender      string
	owner       string
	channel     string
	timeText    string
	contentType string
	ref         string
	key         string
	itemHash    string // content item hash (STORE)
	payment     string
	tags        []string
	status      message.Status
	storage     bool // non-inline content
}

// newMessage builds a stored message whose content is a small JSON document
// mentioning label, with the item hash of that content.
func newMessage(t *testing.T, label string, o msgOpts) *store.Message {
	t.Helper()
	if o.typ == "" {
		o.typ = message.TypePost
	}
	if o.chain == "" {
		o.chain = message.ChainETH
	}
	if o.sender == "" {
		o.sender = "0xSender"
	}
	if o.owner == "" {
		o.owner = o.sender
	}
	if o.timeText == "" {
		o.timeText = "1700000000.5"
	}
	if o.status == "" {
		o.status = message.StatusProcessed
	}
	content := fmt.Sprintf(`{"address":%q,"time":%s,"label":%q, "note":"é ✓ <b>"}`, o.owner, o.timeText, label)
	m := &store.Message{
		Message: message.Message{
			Chain: o.chain, Sender: o.sender, Type: o.typ, Channel: o.channel, Time: mustTime(t, o.timeText),
			ItemHash: message.HashContent([]byte(content)), Signature: "0xsig-" + label,
		},
		Content: []byte(content), Size: int64(len(content)), Owner: o.owner, ContentType: o.contentType,
		ContentRef: o.ref, ContentKey: o.key, ContentItemHash: o.itemHash, PaymentType: o.payment,
		Tags: o.tags, Status: o.status, ReceptionTime: baseTime,
	}
	if o.storage {
		m.ItemType = message.ItemStorage
	} else {
		m.ItemType = message.ItemInline
		m.ItemContent = content
	}
	return m
}

// insert stores messages in one transaction.
func insert(t *testing.T, s store.Store, ms ...*store.Message) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, m := range ms {
			if err := tx.InsertMessage(ctx, m); err != nil {
				return fmt.Errorf("insert %s: %w", m.ItemHash, err)
			}
		}
		return nil
	})
}

// sameMessage fails unless got equals want field by field, with exact bytes
// and time text.
func sameMessage(t *testing.T, got, want *store.Message) {
	t.Helper()
	if got == nil {
		t.Fatalf("message %s: got nil", want.ItemHash)
	}
	type pair struct {
		name      string
		got, want any
	}
	checks := []pair{
		{"ItemHash", got.ItemHash, want.ItemHash},
		{"Chain", got.Chain, want.Chain},
		{"Sender", got.Sender, want.Sender},
		{"Type", got.Type, want.Type},
		{"Channel", got.Channel, want.Channel},
		{"Time text", got.Time.String(), want.Time.String()},
		{"Time seconds", got.Time.Seconds(), want.Time.Seconds()},
		{"ItemType", got.ItemType, want.ItemType},
		{"ItemContent", got.ItemContent, want.ItemContent},
		{"Signature", got.Signature, want.Signature},
		{"Content", string(got.Content), string(want.Content)},
		{"Size", got.Size, want.Size},
		{"Owner", got.Owner, want.Owner},
		{"ContentType", got.ContentType, want.ContentType},
		{"ContentRef", got.ContentRef, want.ContentRef},
		{"ContentKey", got.ContentKey, want.ContentKey},
		{"ContentItemHash", got.ContentItemHash, want.ContentItemHash},
		{"PaymentType", got.PaymentType, want.PaymentType},
		{"Tags", fmt.Sprint(got.Tags), fmt.Sprint(want.Tags)},
		{"Status", got.Status, want.Status},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("message %s: %s = %v, want %v", want.ItemHash, c.name, c.got, c.want)
		}
	}
	if !got.ReceptionTime.Equal(want.ReceptionTime) {
		t.Errorf("message %s: ReceptionTime = %v, want %v", want.ItemHash, got.ReceptionTime, want.ReceptionTime)
	}
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// noErr fails on a non-nil error.
func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
