// Package all assembles every chain verifier into one registry, and makes the
// deterministic accounts that a development network prints and funds.
package all

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/chain/avalanche"
	"github.com/go-aleph/go-aleph/chain/cosmos"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/chain/nuls"
	"github.com/go-aleph/go-aleph/chain/solana"
	"github.com/go-aleph/go-aleph/chain/substrate"
	"github.com/go-aleph/go-aleph/chain/tezos"
	"github.com/go-aleph/go-aleph/message"
)

// NewRegistry returns a registry with a verifier for every chain the protocol can
// verify. AURORA, STT and legacy NULS have none, so their messages are rejected
// with code 0, as upstream rejects them.
func NewRegistry() *chain.Registry {
	r := chain.NewRegistry()
	for _, register := range []func(*chain.Registry){
		evm.Register, solana.Register, substrate.Register, cosmos.Register,
		nuls.Register, tezos.Register, avalanche.Register,
	} {
		register(r)
	}
	return r
}

// DevAccount is a well-known development account. Never use one on a real network.
type DevAccount struct {
	Chain   message.Chain
	Address string
	Secret  string // the importable private key (hex for ETH, base58 for SOL)
	Signer  message.Signer
}

// DevAccounts returns n ETH and n SOL accounts derived from fixed seeds, so that a
// local network has the same funded accounts on every start, as anvil does.
func DevAccounts(n int) ([]DevAccount, error) {
	out := make([]DevAccount, 0, 2*n)
	for i := range n {
		seed := sha256.Sum256(fmt.Appendf(nil, "go-aleph dev account %d", i))
		e, err := evm.AccountFromHex(hex.EncodeToString(seed[:]))
		if err != nil {
			return nil, fmt.Errorf("dev eth account %d: %w", i, err)
		}
		out = append(out, DevAccount{Chain: message.ChainETH, Address: e.Address(), Secret: e.PrivateKeyHex(), Signer: e})
	}
	for i := range n {
		seed := sha256.Sum256(fmt.Appendf(nil, "go-aleph dev sol account %d", i))
		s, err := solana.AccountFromSeed(seed[:])
		if err != nil {
			return nil, fmt.Errorf("dev sol account %d: %w", i, err)
		}
		out = append(out, DevAccount{Chain: message.ChainSOL, Address: s.Address(), Secret: s.ExportBase58(), Signer: s})
	}
	return out, nil
}
