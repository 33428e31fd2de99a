package sqlstore

import (
	"context"

	"github.com/go-aleph/go-aleph/store"
)

// GetStatus returns the status record of an item hash, or store.ErrNotFound.
func (db *DB) GetStatus(ctx context.Context, itemHash string) (store.StatusRecord, error) {
	return getStatus(ctx, db.reads(), itemHash)
}

// GetMessage returns a stored message, or store.ErrNotFound.
func (db *DB) GetMessage(ctx context.Context, itemHash string) (*store.Message, error) {
	return getMessage(ctx, db.reads(), itemHash)
}

// GetRejected returns a rejection record, or store.ErrNotFound.
func (db *DB) GetRejected(ctx context.Context, itemHash string) (*store.Rejected, error) {
	return getRejected(ctx, db.reads(), itemHash)
}

// GetForgotten returns a forgotten skeleton, or store.ErrNotFound.
func (db *DB) GetForgotten(ctx context.Context, itemHash string) (*store.Forgotten, error) {
	return getForgotten(ctx, db.reads(), itemHash)
}

// GetFileTag returns a file tag, or store.ErrNotFound.
func (db *DB) GetFileTag(ctx context.Context, tag string) (*store.FileTag, error) {
	return getFileTag(ctx, db.reads(), tag)
}

// CountFilePins returns the number of pins (of any type) on a file.
func (db *DB) CountFilePins(ctx context.Context, fileHash string) (int, error) {
	return countFilePins(ctx, db.reads(), fileHash)
}

// reads is the querier of the constant-text reads.
func (db *DB) reads() querier { return cachedReader{db} }
