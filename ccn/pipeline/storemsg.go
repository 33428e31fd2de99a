package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// checkStore: the sender must be allowed to store for the owner; a ref that is
// an item hash must name a processed STORE (retry 200) that has no ref itself
// (201); an existing tag must belong to the owner (2); with a file provider,
// the file must be present, its row in this transaction (retry 4). APPLY
// records the message pin of the file and points the tag at the newest pin.
func (p *Pipeline) checkStore(ctx context.Context, tx store.Tx, it *item, c *message.StoreContent) (*plan, error) {
	m := &it.p.Message
	if err := authorize(ctx, tx, actOf(m, c.Address)); err != nil {
		return nil, err
	}
	if c.Ref != "" && message.IsItemHash(c.Ref) {
		target, err := tx.GetMessage(ctx, c.Ref)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, fail(message.CodeStoreRefNotFound, "content.ref", "STORE %s not found", chain.Clip(c.Ref))
		case err != nil:
			return nil, fmt.Errorf("get referenced store: %w", err)
		case target.Type != message.TypeStore:
			return nil, fail(message.CodeStoreRefNotFound, "content.ref", "%s is a %s, not a STORE", chain.Clip(c.Ref), target.Type)
		case target.ContentRef != "":
			return nil, fail(message.CodeStoreUpdateUpdate, "content.ref", "STORE %s is itself an update; refer to the original", chain.Clip(c.Ref))
		}
	}
	tag := storeTag(m.ItemHash, c.Address, c.Ref)
	existing, err := tx.GetFileTag(ctx, tag)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("get file tag: %w", err)
	case !strings.EqualFold(existing.Owner, c.Address):
		return nil, fail(message.CodePermissionDenied, "content.ref", "file tag %s belongs to %s", chain.Clip(tag), chain.Clip(existing.Owner))
	}
	if p.files != nil {
		if err := checkFile(ctx, tx, it, c); err != nil {
			return nil, err
		}
	}
	pin := &store.FilePin{FileHash: c.ItemHash, Type: store.PinMessage, Owner: c.Address, ItemHash: m.ItemHash, Ref: c.Ref, Created: c.Time}
	return &plan{apply: func(ctx context.Context, tx store.Tx, _ *store.Message) ([]events.Event, error) {
		if err := tx.InsertFilePin(ctx, pin); err != nil {
			return nil, fmt.Errorf("pin file: %w", err)
		}
		return nil, refreshTag(ctx, tx, tag)
	}}, nil
}

// checkFile requires the STORE's file: the provider made it present in the
// prepare stage, and its row is still there. The row is read in the
// transaction that inserts the pin, and the garbage collector deletes a row
// only when no pin holds it, in a transaction of its own: a file collected
// after prepare makes the STORE retry instead of pinning a file that is gone.
func checkFile(ctx context.Context, tx store.Tx, it *item, c *message.StoreContent) error {
	if it.fileErr != nil {
		return fileUnavailable(it.fileErr)
	}
	_, err := tx.GetFile(ctx, c.ItemHash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fileUnavailable(fmt.Errorf("file %s: no file row: %w", c.ItemHash, ErrFileUnavailable))
	case err != nil:
		return fmt.Errorf("get file: %w", err)
	}
	return nil
}

// fileUnavailable is the retryable FILE_UNAVAILABLE (4) failure for cause.
func fileUnavailable(cause error) *failure {
	return &failure{err: &message.Error{Code: message.CodeFileUnavailable, Field: "content.item_hash", Reason: "file unavailable", Err: cause}}
}

// refreshTag points tag at the newest message pin left for it, or deletes it.
func refreshTag(ctx context.Context, tx store.Tx, tag string) error {
	pin, err := tx.LatestPinForTag(ctx, tag)
	if errors.Is(err, store.ErrNotFound) {
		if err := tx.DeleteFileTag(ctx, tag); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete file tag: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("latest pin for tag: %w", err)
	}
	if err := tx.PutFileTag(ctx, &store.FileTag{Tag: tag, Owner: pin.Owner, FileHash: pin.FileHash, LastUpdated: pin.Created}); err != nil {
		return fmt.Errorf("put file tag: %w", err)
	}
	return nil
}
