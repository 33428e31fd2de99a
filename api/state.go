package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/store"
)

// digestTimeout bounds one state digest computation.
const digestTimeout = 2 * time.Minute

// digestFlight shares one state digest computation between the requests that
// arrive while it runs: the digest reads the whole state, so concurrent
// requests must not multiply that work.
type digestFlight struct {
	mu  sync.Mutex
	cur *digestCall
}

type digestCall struct {
	done chan struct{}
	d    *store.StateDigest
	err  error
}

// get returns the digest of the computation in progress, or of a new one. The
// computation does not depend on any one request: it runs to completion (within
// digestTimeout) even if the request that started it goes away.
func (f *digestFlight) get(ctx context.Context, r store.Reader) (*store.StateDigest, error) {
	f.mu.Lock()
	c := f.cur
	if c == nil {
		c = &digestCall{done: make(chan struct{})}
		f.cur = c
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), digestTimeout)
			defer cancel()
			c.d, c.err = r.StateDigest(cctx)
			f.mu.Lock()
			f.cur = nil
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.d, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// digestSectionJSON is one section of the answer.
type digestSectionJSON struct {
	Count int64  `json:"count"`
	Hash  string `json:"hash"`
}

// stateDigest serves GET /api/v0/state/digest.
func (s *server) stateDigest(w http.ResponseWriter, r *http.Request) {
	d, err := s.digests.get(r.Context(), s.d.Store)
	if err != nil {
		s.internalError(w, r, "state digest", err)
		return
	}
	sections := make(map[string]digestSectionJSON, len(d.Sections))
	for name, sec := range d.Sections {
		sections[name] = digestSectionJSON{Count: sec.Count, Hash: sec.Hash}
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Digest   string                       `json:"digest"`
		Sections map[string]digestSectionJSON `json:"sections"`
	}{d.Digest, sections})
}
