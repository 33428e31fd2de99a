package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// errTxDone is returned when a Tx is used after its Update returned.
var errTxDone = errors.New("sqlstore: transaction used after Update returned")

// tx is the store.Tx of one Update.
type tx struct {
	db   *DB
	q    *sql.Tx
	done bool
	// stmts are the transaction's statements, by SQL text: each text is bound
	// to the transaction once, from the writer's statement cache.
	stmts map[string]*sql.Stmt
}

var _ store.Tx = (*tx)(nil)

// use returns the transaction, or an error once Update has returned. Its
// statements go through the writer's statement cache, so that a hot method
// does not parse its SQL again at every call.
func (t *tx) use() (querier, error) {
	if t.done {
		return nil, errTxDone
	}
	return cachedTx{t}, nil
}

// stmt returns the statement for text, bound to the transaction.
func (t *tx) stmt(ctx context.Context, text string) (*sql.Stmt, error) {
	if s, ok := t.stmts[text]; ok {
		return s, nil
	}
	s, err := t.db.prepared(ctx, t.q, text)
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[text] = s
	return s, nil
}

// cachedTx is a querier running a transaction's statements prepared.
type cachedTx struct{ t *tx }

func (c cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := c.t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (c cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := c.t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (c cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := c.t.stmt(ctx, query)
	if err != nil {
		// A *sql.Row cannot carry an error of ours: let the transaction
		// report it by running the text unprepared.
		return c.t.q.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

func (t *tx) GetStatus(ctx context.Context, itemHash string) (store.StatusRecord, error) {
	q, err := t.use()
	if err != nil {
		return store.StatusRecord{}, err
	}
	return getStatus(ctx, q, itemHash)
}

func (t *tx) SetStatus(ctx context.Context, rec store.StatusRecord) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return setStatus(ctx, q, rec)
}

func (t *tx) GetMessage(ctx context.Context, itemHash string) (*store.Message, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getMessage(ctx, q, itemHash)
}

func (t *tx) InsertMessage(ctx context.Context, m *store.Message) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return insertMessage(ctx, q, m)
}

func (t *tx) SetMessageStatus(ctx context.Context, itemHash string, s message.Status) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return setMessageStatus(ctx, q, itemHash, s)
}

func (t *tx) DeleteMessage(ctx context.Context, itemHash string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return deleteMessage(ctx, q, itemHash)
}

func (t *tx) PutRejected(ctx context.Context, r *store.Rejected) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return putRejected(ctx, q, r)
}

func (t *tx) DeleteRejected(ctx context.Context, itemHash string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM rejected_messages WHERE item_hash = $1", itemHash)
	return wrap(err, "delete rejected")
}

func (t *tx) GetForgotten(ctx context.Context, itemHash string) (*store.Forgotten, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getForgotten(ctx, q, itemHash)
}

func (t *tx) PutForgotten(ctx context.Context, f *store.Forgotten) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return putForgotten(ctx, q, f)
}

func (t *tx) DeletePending(ctx context.Context, id int64) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM pending_messages WHERE id = $1", id)
	return wrap(err, "delete pending")
}

func (t *tx) RetryPending(ctx context.Context, id int64, nextAttempt time.Time, retries int, code message.ErrorCode) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	ok, err := execAffected(ctx, q, "UPDATE pending_messages SET next_attempt = $2, retries = $3, last_error = $4 WHERE id = $1",
		id, nanos(nextAttempt), retries, int(code))
	if err != nil {
		return wrap(err, "retry pending")
	}
	if !ok {
		return store.ErrNotFound
	}
	return nil
}

func (t *tx) SetPendingContent(ctx context.Context, id int64, content json.RawMessage) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	ok, err := execAffected(ctx, q, "UPDATE pending_messages SET content = $2 WHERE id = $1", id, nullRaw(content))
	if err != nil {
		return wrap(err, "set pending content")
	}
	if !ok {
		return store.ErrNotFound
	}
	return nil
}

func (t *tx) GetPost(ctx context.Context, itemHash string) (*store.Post, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getPost(ctx, q, itemHash)
}

func (t *tx) InsertPost(ctx context.Context, p *store.Post) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return insertPost(ctx, q, p)
}

func (t *tx) DeletePost(ctx context.Context, itemHash string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM posts WHERE item_hash = $1", itemHash)
	return wrap(err, "delete post")
}

func (t *tx) ListAmends(ctx context.Context, original string) ([]*store.Post, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return listAmends(ctx, q, original)
}

func (t *tx) SetLatestAmend(ctx context.Context, original, amend string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return setLatestAmend(ctx, q, original, amend)
}

func (t *tx) InsertAggregateElement(ctx context.Context, e *store.AggregateElement) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return insertAggregateElement(ctx, q, e)
}

func (t *tx) GetAggregateElement(ctx context.Context, itemHash string) (*store.AggregateElement, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getAggregateElement(ctx, q, itemHash)
}

func (t *tx) DeleteAggregateElement(ctx context.Context, itemHash string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM aggregate_elements WHERE item_hash = $1", itemHash)
	return wrap(err, "delete aggregate element")
}

func (t *tx) ListAggregateElements(ctx context.Context, owner, key string) ([]*store.AggregateElement, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return listAggregateElements(ctx, q, owner, key)
}

func (t *tx) GetAggregate(ctx context.Context, owner, key string) (*store.Aggregate, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getAggregate(ctx, q, owner, key)
}

func (t *tx) PutAggregate(ctx context.Context, a *store.Aggregate) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return putAggregate(ctx, q, a)
}

func (t *tx) DeleteAggregate(ctx context.Context, owner, key string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM aggregates WHERE owner = $1 AND key = $2", owner, key)
	return wrap(err, "delete aggregate")
}

func (t *tx) PutFile(ctx context.Context, f *store.File) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return putFile(ctx, q, f)
}

func (t *tx) GetFile(ctx context.Context, hash string) (*store.File, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getFile(ctx, q, hash)
}

func (t *tx) InsertFilePin(ctx context.Context, p *store.FilePin) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return insertFilePin(ctx, q, p)
}

func (t *tx) DeleteFilePins(ctx context.Context, itemHash, pinType string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM file_pins WHERE item_hash = $1 AND type = $2", itemHash, pinType)
	return wrap(err, "delete file pins")
}

func (t *tx) CountFilePins(ctx context.Context, fileHash string) (int, error) {
	q, err := t.use()
	if err != nil {
		return 0, err
	}
	return countFilePins(ctx, q, fileHash)
}

func (t *tx) GetFileTag(ctx context.Context, tag string) (*store.FileTag, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getFileTag(ctx, q, tag)
}

func (t *tx) PutFileTag(ctx context.Context, ft *store.FileTag) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return putFileTag(ctx, q, ft)
}

func (t *tx) DeleteFileTag(ctx context.Context, tag string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM file_tags WHERE tag = $1", tag)
	return wrap(err, "delete file tag")
}

func (t *tx) LatestPinForTag(ctx context.Context, tag string) (*store.FilePin, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return latestPinForTag(ctx, q, tag)
}

func (t *tx) GetVM(ctx context.Context, itemHash string) (*store.VM, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	return getVM(ctx, q, itemHash)
}

func (t *tx) InsertVM(ctx context.Context, v *store.VM) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	return insertVM(ctx, q, v)
}

func (t *tx) DeleteVM(ctx context.Context, itemHash string) error {
	q, err := t.use()
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, "DELETE FROM vms WHERE item_hash = $1", itemHash)
	return wrap(err, "delete vm")
}

func (t *tx) VMsUsingRef(ctx context.Context, storeHash string) ([]string, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT vm_hash FROM vm_refs WHERE ref = $1 ORDER BY vm_hash", storeHash)
	return collectStrings(rows, err, "vms using ref")
}

func (t *tx) VMUpdates(ctx context.Context, itemHash string) ([]string, error) {
	q, err := t.use()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT item_hash FROM vms WHERE replaces = $1 ORDER BY created, item_hash", itemHash)
	return collectStrings(rows, err, "vm updates")
}
