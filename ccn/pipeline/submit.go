package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// Submit admits one message (§3.2). It parses the envelope and inline content;
// a parse error is returned as the error (a *message.Error, code 0) and nothing
// is recorded. It then verifies the signature in the caller's goroutine, so
// concurrent submissions verify in parallel: a bad or missing signature is
// recorded as rejected (unless the hash already has a status other than
// rejected) and returned as a rejected result.
//
// A hash that is already pending, processed, removing, forgotten or removed is
// not queued again; its status is returned (with Sync, a pending one is waited
// for). Otherwise the message is queued durably (Store.Enqueue group-commits
// concurrent submissions) and the processor is woken. Async submissions return
// pending once the queue row is committed; sync ones wait up to
// Config.SyncTimeout for the outcome: processed, rejected (with Err and
// Details), forgotten, or pending on a retry, at the timeout or when ctx ends.
//
// Other errors (database, context) are returned as plain errors.
func (p *Pipeline) Submit(ctx context.Context, raw []byte, opts SubmitOptions) (SubmitResult, error) {
	m, err := message.Parse(raw)
	if err != nil {
		return SubmitResult{}, err
	}
	origin := opts.Origin
	if origin == "" {
		origin = "api"
	}
	if !verifiedAtAdmission(origin) {
		return SubmitResult{}, fmt.Errorf("pipeline: submit: unknown origin %q", origin)
	}
	res := SubmitResult{ItemHash: m.ItemHash}
	raw = bytes.Clone(raw)
	if err := p.verifier.Verify(m); err != nil {
		return p.rejectAtAdmission(ctx, m, raw, err)
	}
	var outcome <-chan events.Event
	if opts.Sync {
		ch, cancel := p.bus.Await(m.ItemHash)
		defer cancel()
		outcome = ch
		// While a caller waits for an outcome, Run does not space batches.
		p.syncWaiters.Add(1)
		defer p.syncWaiters.Add(-1)
	}
	st, err := p.store.GetStatus(ctx, m.ItemHash)
	switch {
	case err == nil && st.Status == message.StatusPending:
		if opts.Sync {
			return p.await(ctx, res, outcome)
		}
		res.Status = st.Status
		return res, nil
	case err == nil && st.Status != message.StatusRejected:
		res.Status = st.Status
		return res, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return SubmitResult{}, fmt.Errorf("pipeline: submit: read status: %w", err)
	}
	now := p.now()
	next := m.Time.Std()
	if now.Before(next) {
		next = now
	}
	pm := &store.Pending{
		Message: *m, Raw: raw, ReceptionTime: now, NextAttempt: next,
		CheckSignature: true, Origin: origin,
	}
	if _, err := p.store.Enqueue(ctx, []*store.Pending{pm}); err != nil {
		return SubmitResult{}, fmt.Errorf("pipeline: submit: enqueue: %w", err)
	}
	p.Wake()
	if origin == "api" && p.announce != nil {
		p.announce(raw)
	}
	if !opts.Sync {
		res.Status = message.StatusPending
		return res, nil
	}
	return p.await(ctx, res, outcome)
}

// await waits for the outcome of a queued message: the first event, or pending
// when the sync timeout or ctx ends the wait first.
func (p *Pipeline) await(ctx context.Context, res SubmitResult, outcome <-chan events.Event) (SubmitResult, error) {
	timer := time.NewTimer(p.cfg.SyncTimeout)
	defer timer.Stop()
	if p.testHookAwait != nil {
		p.testHookAwait(res.ItemHash)
	}
	select {
	case e := <-outcome:
		r := ResultOf(e)
		r.ItemHash = res.ItemHash
		return r, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	res.Status = message.StatusPending
	return res, nil
}

// rejectAtAdmission records a message whose signature failed and returns the
// rejected result.
func (p *Pipeline) rejectAtAdmission(ctx context.Context, m *message.Message, raw []byte, verr error) (SubmitResult, error) {
	code := message.CodeOf(verr)
	if code == message.CodeInternalError {
		code = message.CodeInvalidSignature
		verr = message.Wrap(code, "signature", verr)
	}
	rej := &store.Rejected{ItemHash: m.ItemHash, Message: raw, ErrorCode: code, ReceptionTime: p.now()}
	err := p.store.Update(ctx, func(tx store.Tx) error {
		st, err := getStatus(ctx, tx, rej.ItemHash)
		switch {
		case err != nil:
			return err
		case st.Status != "" && st.Status != message.StatusRejected:
			return nil // never overwrite a live status
		case !st.ReceptionTime.IsZero():
			rej.ReceptionTime = st.ReceptionTime
		}
		if err := tx.PutRejected(ctx, rej); err != nil {
			return fmt.Errorf("put rejected: %w", err)
		}
		if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: rej.ItemHash, Status: message.StatusRejected, ReceptionTime: rej.ReceptionTime}); err != nil {
			return fmt.Errorf("set status rejected: %w", err)
		}
		return nil
	})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("pipeline: submit: record rejection: %w", err)
	}
	return SubmitResult{ItemHash: m.ItemHash, Status: message.StatusRejected, Err: verr}, nil
}

// SubmitMany admits a batch of messages from one source, as Submit does each
// (never Sync), but verifies them in parallel and queues them in one durable
// write: anti-entropy moves thousands at a time. Known hashes are answered
// from their status before any signature check. It returns one result per
// input, in order; a message that does not parse gets its *message.Error in
// Err and an empty Status. Other errors (database, context) fail the batch.
func (p *Pipeline) SubmitMany(ctx context.Context, raws [][]byte, origin string) ([]SubmitResult, error) {
	if !verifiedAtAdmission(origin) {
		return nil, fmt.Errorf("pipeline: submit: unknown origin %q", origin)
	}
	res := make([]SubmitResult, len(raws))
	queue := make([]*store.Pending, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws))
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(raws) || errs[w] != nil {
					return
				}
				queue[i], errs[w] = p.admitOne(ctx, raws[i], origin, &res[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var batch []*store.Pending
	var at []int
	for i, pm := range queue {
		if pm != nil {
			batch = append(batch, pm)
			at = append(at, i)
		}
	}
	if len(batch) == 0 {
		return res, nil
	}
	if _, err := p.store.Enqueue(ctx, batch); err != nil {
		return nil, fmt.Errorf("pipeline: submit: enqueue: %w", err)
	}
	for _, i := range at {
		res[i].Status = message.StatusPending
	}
	p.Wake()
	return res, nil
}

// admitOne is SubmitMany's per-message work: parse, verify (recording a
// rejection), and check the status; it returns the queue row, or nil when
// the message is not to be queued (res says why).
func (p *Pipeline) admitOne(ctx context.Context, raw []byte, origin string, res *SubmitResult) (*store.Pending, error) {
	m, err := message.Parse(raw)
	if err != nil {
		res.Err = err
		return nil, nil
	}
	res.ItemHash = m.ItemHash
	raw = bytes.Clone(raw)
	// Unlike Submit, whose verdict gossip forwards on, a batch's messages go
	// nowhere: a hash this node knows is answered from its status without the
	// signature check (a forged copy of a known message changes nothing), which
	// spares the recovery for the many copies anti-entropy brings twice.
	st, err := p.store.GetStatus(ctx, m.ItemHash)
	switch {
	case err == nil && st.Status != message.StatusRejected:
		res.Status = st.Status
		return nil, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("pipeline: submit: read status: %w", err)
	}
	if err := p.verifier.Verify(m); err != nil {
		r, err := p.rejectAtAdmission(ctx, m, raw, err)
		if err != nil {
			return nil, err
		}
		*res = r
		return nil, nil
	}
	now := p.now()
	next := m.Time.Std()
	if now.Before(next) {
		next = now
	}
	return &store.Pending{Message: *m, Raw: raw, ReceptionTime: now, NextAttempt: next,
		CheckSignature: true, Origin: origin}, nil
}
