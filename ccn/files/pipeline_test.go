package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/message"
)

// TestPipeline runs STOREs through a real pipeline over the service: a STORE
// waits for its file (code 4) and is processed once it is uploaded, content
// of non-inline messages comes from the file store, and the collector keeps
// what STOREs pin until they are forgotten.
func TestPipeline(t *testing.T) {
	e := newEnv(t, envOpts{cfg: Config{GracePeriod: time.Hour}})
	p, err := pipeline.New(pipeline.Deps{Store: e.db, Verifier: all.NewRegistry(), Fetcher: e.svc, Files: e.svc, Now: e.clock.Now},
		pipeline.Config{MaxBackoff: time.Second, SyncTimeout: 5 * time.Second, FileTimeout: 5 * time.Second, GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	seed := sha256.Sum256([]byte("files pipeline test"))
	alice, err := evm.AccountFromHex(hex.EncodeToString(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	at := 0.0
	build := func(typ message.Type, c message.Content, noInline bool) (*message.Built, []byte) {
		t.Helper()
		at++
		b := &message.Builder{Signer: alice, NoInline: noInline, Now: func() time.Time { return e.clock.Now().Add(time.Duration(at) * time.Second) }}
		built, err := b.Build(e.ctx, typ, c, "TEST")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(built.Message)
		if err != nil {
			t.Fatal(err)
		}
		return built, raw
	}
	submit := func(raw []byte) pipeline.SubmitResult {
		t.Helper()
		r, err := p.Submit(e.ctx, raw, pipeline.SubmitOptions{Sync: true})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	file := []byte("a file a STORE pins")
	st, stRaw := build(message.TypeStore, &message.StoreContent{ItemType: message.ItemStorage, ItemHash: sha(file)}, true)
	// The STORE's own content is non-inline: upload it as a client would.
	if _, err := e.svc.AddStorage(e.ctx, bytes.NewReader(st.Content), 0, st.Message.ItemHash); err != nil {
		t.Fatal(err)
	}
	// The file is not here yet: the STORE waits with code 4.
	if r := submit(stRaw); r.Status != message.StatusPending {
		t.Fatalf("store before its file: %+v", r)
	}
	if ps, err := e.db.PendingByHash(e.ctx, st.Message.ItemHash); err != nil || len(ps) != 1 || ps[0].LastError != message.CodeFileUnavailable {
		t.Fatalf("queue: %+v, %v", ps, err)
	}
	if _, err := e.svc.AddStorage(e.ctx, bytes.NewReader(file), 0, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second) // past the retry's backoff
	p.Wake()
	if r := submit(stRaw); r.Status != message.StatusProcessed {
		t.Fatalf("store once its file is here: %+v", r)
	}

	// After the grace period only the pins of the STORE keep its file and
	// its content.
	e.clock.Advance(2 * time.Hour)
	if gs := e.gc(); gs.FilesDeleted != 0 {
		t.Errorf("gc deleted pinned files: %+v", gs)
	}
	for _, h := range []string{sha(file), st.Message.ItemHash} {
		if _, ok := e.local(h); !ok {
			t.Errorf("%s collected while pinned", h)
		}
	}

	_, fRaw := build(message.TypeForget, &message.ForgetContent{Hashes: []string{st.Message.ItemHash}, Aggregates: []string{}}, false)
	if r := submit(fRaw); r.Status != message.StatusProcessed {
		t.Fatalf("forget: %+v", r)
	}
	if gs := e.gc(); gs.FilesDeleted != 0 {
		t.Errorf("gc within the forget's grace period: %+v", gs)
	}
	e.clock.Advance(2 * time.Hour)
	if gs := e.gc(); gs.FilesDeleted != 2 {
		t.Errorf("gc after the forget's grace period: %+v", gs)
	}
	for _, h := range []string{sha(file), st.Message.ItemHash} {
		if _, ok := e.local(h); ok || e.row(h) != nil {
			t.Errorf("%s left after its STORE was forgotten", h)
		}
	}
}
