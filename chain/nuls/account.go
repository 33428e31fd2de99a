package nuls

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/go-aleph/go-aleph/internal/secpkey"
	"github.com/go-aleph/go-aleph/message"
)

// Account is a NULS2 key that signs Aleph messages (a message.Signer) with its
// chain-1 address.
type Account struct {
	key     *secp256k1.PrivateKey
	address string
}

var _ message.Signer = (*Account)(nil)

// NewAccount generates a key from rand, which must be a cryptographically secure
// source such as crypto/rand.Reader.
func NewAccount(rand io.Reader) (*Account, error) {
	if rand == nil {
		return nil, errors.New("nuls: nil random source")
	}
	key, err := secpkey.Generate(rand)
	if err != nil {
		return nil, fmt.Errorf("nuls: generate key: %w", err)
	}
	return newAccount(key)
}

// AccountFromHex loads a key from 64 hex digits, with or without a "0x" prefix.
func AccountFromHex(s string) (*Account, error) {
	key, err := secpkey.ParseHex(s)
	if err != nil {
		return nil, fmt.Errorf("nuls: private key: %w", err)
	}
	return newAccount(key)
}

func newAccount(key *secp256k1.PrivateKey) (*Account, error) {
	addr, err := address(MainnetChainID, key.PubKey())
	if err != nil {
		return nil, fmt.Errorf("nuls: address: %w", err)
	}
	return &Account{key: key, address: addr}, nil
}

// Chain returns NULS2.
func (a *Account) Chain() message.Chain { return message.ChainNULS2 }

// Address returns the chain-1 address, "NULSd…".
func (a *Account) Address() string { return a.address }

// PublicKey returns the 33-byte compressed public key.
func (a *Account) PublicKey() []byte { return a.key.PubKey().SerializeCompressed() }

// Sign returns base64([27+recid]‖r‖s) over buffer, the envelope's signature value.
// RFC 6979 nonces make it deterministic, and S is always low.
func (a *Account) Sign(buffer []byte) (string, error) {
	digest := Digest(buffer)
	sig := ecdsa.SignCompact(a.key, digest[:], true) // [27+4+recid]‖r‖s
	sig[0] -= 4
	return base64.StdEncoding.EncodeToString(sig), nil
}
