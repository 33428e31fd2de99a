// Package loadgen makes signed messages in bulk for load programs and
// end-to-end tests: deterministic ETH accounts, POSTs signed in parallel on
// every core, wrapped as POST /api/v0/messages request bodies.
package loadgen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/message"
)

// Accounts returns n deterministic ETH accounts.
func Accounts(n int) ([]*evm.Account, error) {
	accts := make([]*evm.Account, n)
	for i := range accts {
		seed := sha256.Sum256(fmt.Appendf(nil, "go-aleph loadgen %d", i))
		a, err := evm.AccountFromHex(hex.EncodeToString(seed[:]))
		if err != nil {
			return nil, fmt.Errorf("loadgen account %d: %w", i, err)
		}
		accts[i] = a
	}
	return accts, nil
}

// Post is one signed POST and its request body.
type Post struct {
	Message *message.Message
	// Body is {"sync": syncMode, "message": …}, ready for POST /api/v0/messages.
	Body []byte
}

// Posts signs n POSTs on channel, round-robin over accounts distinct signers.
func Posts(n, accounts int, channel string, syncMode bool) ([]Post, error) {
	if accounts < 1 {
		return nil, errors.New("loadgen: need at least one account")
	}
	accts, err := Accounts(accounts)
	if err != nil {
		return nil, err
	}
	out := make([]Post, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				b := &message.Builder{Signer: accts[i%accounts]}
				c := &message.PostContent{Type: "load", Content: json.RawMessage(fmt.Sprintf(`{"i":%d,"body":"go-aleph load message"}`, i))}
				built, err := b.Build(context.Background(), message.TypePost, c, channel)
				if err != nil {
					errs[w] = fmt.Errorf("loadgen post %d: %w", i, err)
					return
				}
				body, err := json.Marshal(struct {
					Sync    bool             `json:"sync"`
					Message *message.Message `json:"message"`
				}{syncMode, built.Message})
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = Post{Message: built.Message, Body: body}
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
