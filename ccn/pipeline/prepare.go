package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// item is one pending message on its way through a batch.
type item struct {
	p *store.Pending
	// raw is the content bytes: item_content, or the fetched content.
	raw []byte
	// content is raw decoded and validated.
	content message.Content
	// fetched is set when raw was fetched in this attempt (and is worth keeping
	// in the queue if the message retries).
	fetched bool
	// fail is a failure found while preparing (signature, content); the message
	// is then rejected or retried, unless it turns out to be a duplicate.
	fail *failure
	// fileErr is why the file provider could not make a STORE's file present;
	// CHECK turns it into FILE_UNAVAILABLE (4) after the checks that reject.
	fileErr error
}

// verifiedAtAdmission reports whether a queue row came through Submit, which
// verified its signature before enqueueing it.
func verifiedAtAdmission(origin string) bool {
	return origin == "api" || origin == "p2p"
}

// prepare does the per-message work that needs no transaction, in parallel:
// signature checks for rows not verified at admission, content fetches, and
// content decoding; then it makes the files of the STOREs present.
func (p *Pipeline) prepare(ctx context.Context, due []*store.Pending) []*item {
	items := make([]*item, len(due))
	for i, pm := range due {
		items[i] = &item{p: pm}
	}
	workers := max(runtime.GOMAXPROCS(0), fetchConcurrency)
	if workers > len(items) {
		workers = len(items)
	}
	next := make(chan *item)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				p.prepareOne(ctx, it)
			}
		}()
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
	p.ensureFiles(ctx, items)
	return items
}

// ensureFiles asks the file provider for the files of the batch's STOREs,
// concurrently and under one deadline (Config.FileTimeout), so that a slow
// fetch holds the batch up by that long at most; a STORE whose file is not
// there by then keeps the error in fileErr and retries with code 4.
func (p *Pipeline) ensureFiles(ctx context.Context, items []*item) {
	if p.files == nil {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, p.cfg.FileTimeout)
	defer cancel()
	sem := make(chan struct{}, fileConcurrency)
	var wg sync.WaitGroup
	for _, it := range items {
		c, ok := it.content.(*message.StoreContent)
		if !ok || it.fail != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-fctx.Done():
				it.fileErr = fmt.Errorf("wait for file %s: %w", c.ItemHash, fctx.Err())
				return
			}
			if _, err := p.files.EnsureFile(fctx, filestore.Engine(c.ItemType), c.ItemHash); err != nil {
				it.fileErr = fmt.Errorf("file %s: %w", c.ItemHash, err)
			}
		}()
	}
	wg.Wait()
}

func (p *Pipeline) prepareOne(ctx context.Context, it *item) {
	m := &it.p.Message
	if it.p.CheckSignature && !verifiedAtAdmission(it.p.Origin) {
		if err := p.verifier.Verify(m); err != nil {
			it.fail = asFailureOr(err, message.CodeInvalidSignature)
			return
		}
	}
	switch {
	case m.ItemType == message.ItemInline:
		it.raw = []byte(m.ItemContent)
	case it.p.Content != nil:
		it.raw = it.p.Content
	default:
		raw, f := p.fetch(ctx, m)
		if f != nil {
			it.fail = f
			return
		}
		it.raw, it.fetched = raw, true
	}
	c, err := m.DecodeContent(it.raw)
	if err != nil {
		it.fail = asFailureOr(err, message.CodeInvalidFormat)
		return
	}
	it.content = c
}

// fetch gets non-inline content through the fetcher. Unavailable content, a
// missing fetcher and a storage hash mismatch are CONTENT_UNAVAILABLE (3),
// retried; other fetcher errors are INTERNAL_ERROR (-1), retried too.
func (p *Pipeline) fetch(ctx context.Context, m *message.Message) ([]byte, *failure) {
	if p.fetcher == nil {
		return nil, fail(message.CodeContentUnavailable, "item_hash", "no content fetcher for %s content", m.ItemType)
	}
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	raw, err := p.fetcher.FetchContent(fctx, m.ItemType, m.ItemHash)
	switch {
	case err == nil:
	case errors.Is(err, ErrContentUnavailable), errors.Is(err, context.DeadlineExceeded):
		return nil, &failure{err: &message.Error{Code: message.CodeContentUnavailable, Field: "item_hash", Reason: "content unavailable", Err: err}}
	default:
		return nil, internalFailure(err)
	}
	if m.ItemType == message.ItemStorage && message.HashContent(raw) != m.ItemHash {
		return nil, fail(message.CodeContentUnavailable, "item_hash", "fetched content does not hash to the item hash")
	}
	return raw, nil
}

// asFailureOr keeps err's protocol code, or gives it code when it has none.
func asFailureOr(err error, code message.ErrorCode) *failure {
	if f, ok := asFailure(err); ok {
		return f
	}
	return &failure{err: &message.Error{Code: code, Reason: err.Error()}}
}
