package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// batchTx is the store.Tx a processing batch works through. It makes the
// common path cost a few statements per batch instead of several per message:
//
//   - status reads are answered from the records of the batch's hashes, read
//     in one call up front (prefetch), and from the batch's own status writes;
//   - the writes of the common path (queue row deletes, statuses, messages,
//     posts without a latest amend) are held back and written with the store's
//     bulk methods.
//
// Held-back writes are flushed before any other call reaches the store and at
// the end of the batch, so every read sees every earlier write and the store
// receives the writes in an order equivalent to the calls'. A held-back
// write's error (a conflict, a database error) is returned by the call that
// flushes it, and fails the batch as it would have failed at the write.
//
// The status cache relies on statuses changing only through SetStatus inside a
// transaction (Enqueue runs outside Update), which store.Tx guarantees: the
// status record is written by SetStatus alone.
type batchTx struct {
	tx store.Tx
	// statuses holds the known status records, by hash; a record with an
	// empty Status means the hash has none.
	statuses map[string]store.StatusRecord

	// Held-back writes.
	pendings []int64
	sets     []store.StatusRecord
	messages []*store.Message
	posts    []*store.Post
}

var _ store.Tx = (*batchTx)(nil)

func newBatchTx(tx store.Tx) *batchTx {
	return &batchTx{tx: tx, statuses: map[string]store.StatusRecord{}}
}

// prefetch reads the status records of hashes in one call.
func (b *batchTx) prefetch(ctx context.Context, hashes []string) error {
	var want []string
	for _, h := range hashes {
		if _, ok := b.statuses[h]; !ok {
			want = append(want, h)
		}
	}
	if len(want) == 0 {
		return nil
	}
	recs, err := b.tx.GetStatuses(ctx, want)
	if err != nil {
		return fmt.Errorf("get statuses: %w", err)
	}
	for _, h := range want {
		rec, ok := recs[h]
		if !ok {
			rec = store.StatusRecord{ItemHash: h}
		}
		b.statuses[h] = rec
	}
	return nil
}

// flush writes the held-back writes with the bulk methods.
func (b *batchTx) flush(ctx context.Context) error {
	if len(b.pendings) > 0 {
		if err := b.tx.DeletePendings(ctx, b.pendings); err != nil {
			return fmt.Errorf("delete pending: %w", err)
		}
		b.pendings = b.pendings[:0]
	}
	if len(b.messages) > 0 {
		if err := b.tx.InsertMessages(ctx, b.messages); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
		b.messages = b.messages[:0]
	}
	if len(b.sets) > 0 {
		if err := b.tx.SetStatuses(ctx, b.sets); err != nil {
			return fmt.Errorf("set statuses: %w", err)
		}
		b.sets = b.sets[:0]
	}
	if len(b.posts) > 0 {
		if err := b.tx.InsertPosts(ctx, b.posts); err != nil {
			return fmt.Errorf("insert posts: %w", err)
		}
		b.posts = b.posts[:0]
	}
	return nil
}

// Statuses: answered and recorded here.

func (b *batchTx) GetStatus(ctx context.Context, itemHash string) (store.StatusRecord, error) {
	rec, ok := b.statuses[itemHash]
	if !ok {
		// Not read yet and not written by this batch: the store's record is
		// current whatever is held back.
		var err error
		rec, err = b.tx.GetStatus(ctx, itemHash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = store.StatusRecord{ItemHash: itemHash}
		case err != nil:
			return store.StatusRecord{}, err
		}
		b.statuses[itemHash] = rec
	}
	if rec.Status == "" {
		return store.StatusRecord{}, store.ErrNotFound
	}
	return rec, nil
}

func (b *batchTx) SetStatus(ctx context.Context, rec store.StatusRecord) error {
	if rec.ItemHash == "" || rec.Status == "" {
		return b.tx.SetStatus(ctx, rec) // the store's own error
	}
	if rec.ReceptionTime.IsZero() {
		// Keeps the stored reception time.
		cur, err := b.GetStatus(ctx, rec.ItemHash)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rec.ReceptionTime = cur.ReceptionTime
	}
	b.statuses[rec.ItemHash] = rec
	b.sets = append(b.sets, rec)
	return nil
}

func (b *batchTx) GetStatuses(ctx context.Context, hashes []string) (map[string]store.StatusRecord, error) {
	if err := b.prefetch(ctx, hashes); err != nil {
		return nil, err
	}
	out := make(map[string]store.StatusRecord, len(hashes))
	for _, h := range hashes {
		if rec := b.statuses[h]; rec.Status != "" {
			out[h] = rec
		}
	}
	return out, nil
}

func (b *batchTx) SetStatuses(ctx context.Context, recs []store.StatusRecord) error {
	for _, rec := range recs {
		if err := b.SetStatus(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// Held-back writes.

func (b *batchTx) DeletePending(ctx context.Context, id int64) error {
	b.pendings = append(b.pendings, id)
	return nil
}

func (b *batchTx) DeletePendings(ctx context.Context, ids []int64) error {
	b.pendings = append(b.pendings, ids...)
	return nil
}

func (b *batchTx) InsertMessage(ctx context.Context, m *store.Message) error {
	b.messages = append(b.messages, m)
	return nil
}

func (b *batchTx) InsertMessages(ctx context.Context, ms []*store.Message) error {
	b.messages = append(b.messages, ms...)
	return nil
}

func (b *batchTx) InsertPost(ctx context.Context, p *store.Post) error {
	if p != nil && p.LatestAmend != "" {
		// Reads the amend: written now, after everything before it.
		if err := b.flush(ctx); err != nil {
			return err
		}
		return b.tx.InsertPost(ctx, p)
	}
	b.posts = append(b.posts, p)
	return nil
}

func (b *batchTx) InsertPosts(ctx context.Context, ps []*store.Post) error {
	for _, p := range ps {
		if err := b.InsertPost(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// Everything else flushes, then goes to the store.

func (b *batchTx) GetMessage(ctx context.Context, itemHash string) (*store.Message, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetMessage(ctx, itemHash)
}

func (b *batchTx) SetMessageStatus(ctx context.Context, itemHash string, s message.Status) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.SetMessageStatus(ctx, itemHash, s)
}

func (b *batchTx) DeleteMessage(ctx context.Context, itemHash string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeleteMessage(ctx, itemHash)
}

func (b *batchTx) PutRejected(ctx context.Context, r *store.Rejected) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.PutRejected(ctx, r)
}

func (b *batchTx) DeleteRejected(ctx context.Context, itemHash string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeleteRejected(ctx, itemHash)
}

func (b *batchTx) GetForgotten(ctx context.Context, itemHash string) (*store.Forgotten, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetForgotten(ctx, itemHash)
}

func (b *batchTx) PutForgotten(ctx context.Context, f *store.Forgotten) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.PutForgotten(ctx, f)
}

func (b *batchTx) RetryPending(ctx context.Context, id int64, nextAttempt time.Time, retries int, code message.ErrorCode) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.RetryPending(ctx, id, nextAttempt, retries, code)
}

func (b *batchTx) SetPendingContent(ctx context.Context, id int64, content json.RawMessage) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.SetPendingContent(ctx, id, content)
}

func (b *batchTx) GetPost(ctx context.Context, itemHash string) (*store.Post, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetPost(ctx, itemHash)
}

func (b *batchTx) DeletePost(ctx context.Context, itemHash string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeletePost(ctx, itemHash)
}

func (b *batchTx) ListAmends(ctx context.Context, original string) ([]*store.Post, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.ListAmends(ctx, original)
}

func (b *batchTx) SetLatestAmend(ctx context.Context, original, amend string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.SetLatestAmend(ctx, original, amend)
}

func (b *batchTx) InsertAggregateElement(ctx context.Context, e *store.AggregateElement) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.InsertAggregateElement(ctx, e)
}

func (b *batchTx) GetAggregateElement(ctx context.Context, itemHash string) (*store.AggregateElement, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetAggregateElement(ctx, itemHash)
}

func (b *batchTx) DeleteAggregateElement(ctx context.Context, itemHash string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeleteAggregateElement(ctx, itemHash)
}

func (b *batchTx) ListAggregateElements(ctx context.Context, owner, key string) ([]*store.AggregateElement, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.ListAggregateElements(ctx, owner, key)
}

func (b *batchTx) GetAggregate(ctx context.Context, owner, key string) (*store.Aggregate, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetAggregate(ctx, owner, key)
}

func (b *batchTx) PutAggregate(ctx context.Context, a *store.Aggregate) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.PutAggregate(ctx, a)
}

func (b *batchTx) DeleteAggregate(ctx context.Context, owner, key string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeleteAggregate(ctx, owner, key)
}

func (b *batchTx) PutFile(ctx context.Context, f *store.File) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.PutFile(ctx, f)
}

func (b *batchTx) GetFile(ctx context.Context, hash string) (*store.File, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetFile(ctx, hash)
}

func (b *batchTx) InsertFilePin(ctx context.Context, p *store.FilePin) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.InsertFilePin(ctx, p)
}

func (b *batchTx) DeleteFilePins(ctx context.Context, itemHash, pinType string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeleteFilePins(ctx, itemHash, pinType)
}

func (b *batchTx) CountFilePins(ctx context.Context, fileHash string) (int, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	return b.tx.CountFilePins(ctx, fileHash)
}

func (b *batchTx) GetFileTag(ctx context.Context, tag string) (*store.FileTag, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetFileTag(ctx, tag)
}

func (b *batchTx) PutFileTag(ctx context.Context, t *store.FileTag) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.PutFileTag(ctx, t)
}

func (b *batchTx) DeleteFileTag(ctx context.Context, tag string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeleteFileTag(ctx, tag)
}

func (b *batchTx) LatestPinForTag(ctx context.Context, tag string) (*store.FilePin, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.LatestPinForTag(ctx, tag)
}

func (b *batchTx) GetVM(ctx context.Context, itemHash string) (*store.VM, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.GetVM(ctx, itemHash)
}

func (b *batchTx) InsertVM(ctx context.Context, v *store.VM) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.InsertVM(ctx, v)
}

func (b *batchTx) DeleteVM(ctx context.Context, itemHash string) error {
	if err := b.flush(ctx); err != nil {
		return err
	}
	return b.tx.DeleteVM(ctx, itemHash)
}

func (b *batchTx) VMsUsingRef(ctx context.Context, storeHash string) ([]string, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.VMsUsingRef(ctx, storeHash)
}

func (b *batchTx) VMUpdates(ctx context.Context, itemHash string) ([]string, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.VMUpdates(ctx, itemHash)
}

func (b *batchTx) ExpireGracePins(ctx context.Context, now time.Time) (int, error) {
	if err := b.flush(ctx); err != nil {
		return 0, err
	}
	return b.tx.ExpireGracePins(ctx, now)
}

func (b *batchTx) UnpinnedFiles(ctx context.Context, limit int) ([]*store.File, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	return b.tx.UnpinnedFiles(ctx, limit)
}

func (b *batchTx) DeleteFileIfUnpinned(ctx context.Context, hash string) (bool, error) {
	if err := b.flush(ctx); err != nil {
		return false, err
	}
	return b.tx.DeleteFileIfUnpinned(ctx, hash)
}
