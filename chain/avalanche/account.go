package avalanche

import (
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/go-aleph/go-aleph/internal/secpkey"
	"github.com/go-aleph/go-aleph/message"
)

// Account is an Avalanche X-chain key that signs Aleph messages (a message.Signer).
type Account struct {
	key     *secp256k1.PrivateKey
	address string
}

var _ message.Signer = (*Account)(nil)

// NewAccount generates a key from rand, which must be a cryptographically secure
// source such as crypto/rand.Reader.
func NewAccount(rand io.Reader) (*Account, error) {
	if rand == nil {
		return nil, errors.New("avalanche: nil random source")
	}
	key, err := secpkey.Generate(rand)
	if err != nil {
		return nil, fmt.Errorf("avalanche: generate key: %w", err)
	}
	return newAccount(key)
}

// AccountFromHex loads a key from 64 hex digits, with or without a "0x" prefix.
func AccountFromHex(s string) (*Account, error) {
	key, err := secpkey.ParseHex(s)
	if err != nil {
		return nil, fmt.Errorf("avalanche: private key: %w", err)
	}
	return newAccount(key)
}

func newAccount(key *secp256k1.PrivateKey) (*Account, error) {
	addr, err := address(DefaultChainID, key.PubKey())
	if err != nil {
		return nil, fmt.Errorf("avalanche: address: %w", err)
	}
	return &Account{key: key, address: addr}, nil
}

// Chain returns AVAX.
func (a *Account) Chain() message.Chain { return message.ChainAVAX }

// Address returns the X-chain address, "X-avax1…".
func (a *Account) Address() string { return a.address }

// PublicKey returns the 33-byte compressed public key.
func (a *Account) PublicKey() []byte { return a.key.PubKey().SerializeCompressed() }

// Sign returns the cb58 recoverable signature of buffer, the envelope's signature
// value. RFC 6979 nonces make it deterministic, and S is always low.
func (a *Account) Sign(buffer []byte) (string, error) {
	digest := Digest(buffer)
	compact := ecdsa.SignCompact(a.key, digest[:], true) // [27+4+recid]‖r‖s
	sig := make([]byte, sigLen)
	copy(sig, compact[1:])
	sig[64] = compact[0] - 27 - 4
	return EncodeSignature(sig), nil
}
