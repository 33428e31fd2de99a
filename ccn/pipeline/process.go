package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// plan is what a type handler's CHECK decided for a message: the writes its
// APPLY will make. CHECK only reads and may fail with a protocol error; once
// APPLY starts, only a database error can stop it (and aborts the batch), so a
// message that fails writes nothing.
type plan struct {
	// forget, when set, means the message is forgotten on arrival (its target
	// was forgotten before it came): no message row, this skeleton instead.
	forget *store.Forgotten
	// apply makes the type's derived writes after the message row is in, and
	// returns extra events (the targets a FORGET erased).
	apply func(ctx context.Context, tx store.Tx, sm *store.Message) ([]events.Event, error)
}

// applyBatch handles items in order in one transaction and returns the events
// to publish once it committed. The handlers work through a batchTx, which
// reads the batch's statuses at once and writes the common path in bulk.
func (p *Pipeline) applyBatch(ctx context.Context, items []*item) ([]events.Event, error) {
	var evs []events.Event
	hashes := make([]string, len(items))
	for i, it := range items {
		hashes[i] = it.p.Message.ItemHash
	}
	err := p.store.Update(ctx, func(tx store.Tx) error {
		evs = evs[:0]
		bt := newBatchTx(tx)
		if err := bt.prefetch(ctx, hashes); err != nil {
			return err
		}
		for _, it := range items {
			e, err := p.handle(ctx, bt, it)
			if err != nil {
				return fmt.Errorf("message %s: %w", it.p.Message.ItemHash, err)
			}
			evs = append(evs, e...)
		}
		if err := bt.flush(ctx); err != nil {
			return fmt.Errorf("write batch: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// applyInternal records a database failure of one message as a retryable
// INTERNAL_ERROR, in a transaction of its own.
func (p *Pipeline) applyInternal(ctx context.Context, it *item, cause error) ([]events.Event, error) {
	var evs []events.Event
	err := p.store.Update(ctx, func(tx store.Tx) error {
		st, err := getStatus(ctx, tx, it.p.Message.ItemHash)
		if err != nil {
			return err
		}
		evs, err = p.failed(ctx, tx, it, st, internalFailure(cause))
		return err
	})
	return evs, err
}

func getStatus(ctx context.Context, tx store.Tx, hash string) (store.StatusRecord, error) {
	st, err := tx.GetStatus(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.StatusRecord{ItemHash: hash}, nil
	}
	if err != nil {
		return st, fmt.Errorf("get status: %w", err)
	}
	return st, nil
}

// handle processes one pending message inside the batch transaction (§3.4).
func (p *Pipeline) handle(ctx context.Context, tx store.Tx, it *item) ([]events.Event, error) {
	m := &it.p.Message
	st, err := getStatus(ctx, tx, m.ItemHash)
	if err != nil {
		return nil, err
	}
	switch st.Status {
	case message.StatusProcessed, message.StatusRemoving:
		return p.confirm(ctx, tx, it)
	case message.StatusForgotten, message.StatusRemoved:
		return p.dropForgotten(ctx, tx, it, st)
	}
	if it.fail != nil {
		return p.failed(ctx, tx, it, st, it.fail)
	}
	pl, err := p.check(ctx, tx, it)
	if err != nil {
		if f, ok := asFailure(err); ok {
			return p.failed(ctx, tx, it, st, f)
		}
		return nil, err
	}
	return p.apply(ctx, tx, it, st, pl)
}

// confirm handles a copy of a processed message: the same signature confirms
// it, another one is rejected with code 1 (the processed status stays).
func (p *Pipeline) confirm(ctx context.Context, tx store.Tx, it *item) ([]events.Event, error) {
	m := &it.p.Message
	stored, err := tx.GetMessage(ctx, m.ItemHash)
	if err != nil {
		return nil, fmt.Errorf("get processed message: %w", err)
	}
	if err := tx.DeletePending(ctx, it.p.ID); err != nil {
		return nil, fmt.Errorf("delete pending: %w", err)
	}
	if stored.Signature != m.Signature {
		e := message.Errorf(message.CodeInvalidSignature, "signature", "differs from the signature of the processed message")
		return []events.Event{{Kind: events.Rejected, ItemHash: m.ItemHash, Code: e.Code, Err: e}}, nil
	}
	return []events.Event{{Kind: events.Confirmed, ItemHash: m.ItemHash, Message: stored}}, nil
}

// dropForgotten handles a copy of a forgotten (or removed) message: it is
// dropped and reported as rejected with FORGOTTEN_DUPLICATE (504), or with
// code 1 when its signature differs; the status stays forgotten.
func (p *Pipeline) dropForgotten(ctx context.Context, tx store.Tx, it *item, st store.StatusRecord) ([]events.Event, error) {
	m := &it.p.Message
	e := message.Errorf(message.CodeForgottenDuplicate, "item_hash", "message was %s", st.Status)
	if st.Status == message.StatusForgotten {
		sk, err := tx.GetForgotten(ctx, m.ItemHash)
		switch {
		case err == nil && sk.Signature != m.Signature:
			e = message.Errorf(message.CodeInvalidSignature, "signature", "differs from the signature of the forgotten message")
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("get forgotten: %w", err)
		}
	}
	if err := tx.DeletePending(ctx, it.p.ID); err != nil {
		return nil, fmt.Errorf("delete pending: %w", err)
	}
	return []events.Event{{Kind: events.Rejected, ItemHash: m.ItemHash, Code: e.Code, Err: e}}, nil
}

// failed retries a message that failed with a retryable code and has retries
// left, with full-jitter backoff; otherwise it rejects it with that code. The
// rejection record and status are only written when the hash has no status or
// is pending or rejected, so a processed copy is never overwritten.
func (p *Pipeline) failed(ctx context.Context, tx store.Tx, it *item, st store.StatusRecord, f *failure) ([]events.Event, error) {
	m := &it.p.Message
	code := f.err.Code
	if code.Retryable() && it.p.Retries < p.cfg.MaxRetries {
		next := p.now().Add(backoff(it.p.Retries, p.cfg.MaxBackoff, p.rnd))
		if err := tx.RetryPending(ctx, it.p.ID, next, it.p.Retries+1, code); err != nil {
			return nil, fmt.Errorf("retry pending: %w", err)
		}
		if it.fetched {
			if err := tx.SetPendingContent(ctx, it.p.ID, it.raw); err != nil {
				return nil, fmt.Errorf("keep fetched content: %w", err)
			}
		}
		return []events.Event{{Kind: events.Retry, ItemHash: m.ItemHash, Code: code, Details: f.details, Err: f.err}}, nil
	}
	if err := tx.DeletePending(ctx, it.p.ID); err != nil {
		return nil, fmt.Errorf("delete pending: %w", err)
	}
	switch st.Status {
	case "", message.StatusPending, message.StatusRejected:
		if err := p.recordRejection(ctx, tx, it.p, st, code, f.details); err != nil {
			return nil, err
		}
	}
	return []events.Event{{Kind: events.Rejected, ItemHash: m.ItemHash, Code: code, Details: f.details, Err: f.err}}, nil
}

// recordRejection writes the rejection record and the rejected status.
func (p *Pipeline) recordRejection(ctx context.Context, tx store.Tx, pm *store.Pending, st store.StatusRecord, code message.ErrorCode, details json.RawMessage) error {
	raw := pm.Raw
	if len(raw) == 0 {
		raw, _ = json.Marshal(&pm.Message) // never fails
	}
	reception := receptionTime(st, pm)
	if err := tx.PutRejected(ctx, &store.Rejected{
		ItemHash: pm.Message.ItemHash, Message: raw, ErrorCode: code, Details: details, ReceptionTime: reception,
	}); err != nil {
		return fmt.Errorf("put rejected: %w", err)
	}
	if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: pm.Message.ItemHash, Status: message.StatusRejected, ReceptionTime: reception}); err != nil {
		return fmt.Errorf("set status rejected: %w", err)
	}
	return nil
}

// apply writes a message that passed its checks: the message row, its status,
// the content pin of non-inline content, then the type's derived records.
func (p *Pipeline) apply(ctx context.Context, tx store.Tx, it *item, st store.StatusRecord, pl *plan) ([]events.Event, error) {
	m := &it.p.Message
	reception := receptionTime(st, it.p)
	if err := tx.DeletePending(ctx, it.p.ID); err != nil {
		return nil, fmt.Errorf("delete pending: %w", err)
	}
	// A hash rejected before (a bad copy, or an earlier attempt) loses its old
	// rejection record. Enqueue deletes it when it sets the hash back to
	// pending; a hash still rejected here had another copy rejected while
	// this one waited in the queue.
	if st.Status != message.StatusPending {
		if err := tx.DeleteRejected(ctx, m.ItemHash); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("delete old rejection: %w", err)
		}
	}
	if pl.forget != nil {
		if err := tx.PutForgotten(ctx, pl.forget); err != nil {
			return nil, fmt.Errorf("put forgotten: %w", err)
		}
		if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: m.ItemHash, Status: message.StatusForgotten, ReceptionTime: reception}); err != nil {
			return nil, fmt.Errorf("set status forgotten: %w", err)
		}
		return []events.Event{{Kind: events.Forgotten, ItemHash: m.ItemHash}}, nil
	}
	sm := storedMessage(m, it.raw, it.content, reception)
	if err := tx.InsertMessage(ctx, sm); err != nil {
		return nil, fmt.Errorf("insert message: %w", err)
	}
	if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: m.ItemHash, Status: message.StatusProcessed, ReceptionTime: reception}); err != nil {
		return nil, fmt.Errorf("set status processed: %w", err)
	}
	if m.ItemType != message.ItemInline {
		if err := pinContent(ctx, tx, sm, it.content.Base().Time); err != nil {
			return nil, err
		}
	}
	evs := []events.Event{{Kind: events.Processed, ItemHash: m.ItemHash, Message: sm}}
	if pl.apply != nil {
		more, err := pl.apply(ctx, tx, sm)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
	}
	return evs, nil
}

// pinContent records the file holding a non-inline message's content and pins
// it with a content pin, as upstream does.
func pinContent(ctx context.Context, tx store.Tx, sm *store.Message, created float64) error {
	if _, err := tx.GetFile(ctx, sm.ItemHash); errors.Is(err, store.ErrNotFound) {
		if err := tx.PutFile(ctx, &store.File{Hash: sm.ItemHash, Size: sm.Size, Type: "file"}); err != nil {
			return fmt.Errorf("put content file: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("get content file: %w", err)
	}
	if err := tx.InsertFilePin(ctx, &store.FilePin{
		FileHash: sm.ItemHash, Type: store.PinContent, Owner: sm.Owner, ItemHash: sm.ItemHash, Created: created,
	}); err != nil {
		return fmt.Errorf("pin content: %w", err)
	}
	return nil
}

// receptionTime is when the node first saw the hash: the status record's time,
// else the queue row's.
func receptionTime(st store.StatusRecord, pm *store.Pending) time.Time {
	if !st.ReceptionTime.IsZero() {
		return st.ReceptionTime
	}
	return pm.ReceptionTime
}

// check runs the type handler's CHECK (permissions, dependencies).
func (p *Pipeline) check(ctx context.Context, tx store.Tx, it *item) (*plan, error) {
	switch c := it.content.(type) {
	case *message.PostContent:
		return p.checkPost(ctx, tx, it, c)
	case *message.AggregateContent:
		return p.checkAggregate(ctx, tx, it, c)
	case *message.StoreContent:
		return p.checkStore(ctx, tx, it, c)
	case *message.ProgramContent:
		return p.checkVM(ctx, tx, it, vmOf(c))
	case *message.InstanceContent:
		return p.checkVM(ctx, tx, it, vmOfInstance(c))
	case *message.ForgetContent:
		return p.checkForget(ctx, tx, it, c)
	}
	return nil, fail(message.CodeInvalidFormat, "type", "no handler for %T", it.content)
}

// actOf describes a message for the permission rules.
func actOf(m *message.Message, owner string) act {
	return act{Sender: m.Sender, Owner: owner, Chain: m.Chain, Channel: m.Channel, Type: m.Type}
}
