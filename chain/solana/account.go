package solana

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/message"
)

// maxExportText is the longest base58 text of a 64-byte Phantom export.
const maxExportText = 88

// Account is an ed25519 key that signs SOL (default) or ES messages.
type Account struct {
	key   ed25519.PrivateKey // seed ‖ public key
	chain message.Chain
}

// NewAccount makes an account from a 32-byte seed read from rnd, or from
// crypto/rand when rnd is nil.
func NewAccount(rnd io.Reader) (*Account, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rnd, seed); err != nil {
		return nil, fmt.Errorf("solana: read random seed: %w", err)
	}
	return AccountFromSeed(seed)
}

// AccountFromSeed makes an account from a 32-byte ed25519 seed (the private key of
// RFC 8032 and of Solana keypair files' first half).
func AccountFromSeed(seed []byte) (*Account, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("solana: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return &Account{key: ed25519.NewKeyFromSeed(seed), chain: message.ChainSOL}, nil
}

// AccountFromHex makes an account from a seed written as 64 hex digits, with or
// without a 0x prefix.
func AccountFromHex(s string) (*Account, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	if len(s) != 2*ed25519.SeedSize {
		return nil, fmt.Errorf("solana: hex seed has %d digits, want %d", len(s), 2*ed25519.SeedSize)
	}
	seed, err := hex.DecodeString(s)
	if err != nil {
		// The text is secret: the error does not repeat it.
		return nil, errors.New("solana: hex seed has a non-hex digit")
	}
	return AccountFromSeed(seed)
}

// AccountFromBase58 makes an account from a base58 key: either the 64-byte form
// that Phantom and solana-keygen export (seed ‖ public key; the public key must
// match the seed) or a bare 32-byte seed.
func AccountFromBase58(s string) (*Account, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxExportText {
		return nil, fmt.Errorf("solana: base58 key has %d characters, want 1 to %d", len(s), maxExportText)
	}
	b, err := base58.Decode(s)
	if err != nil {
		return nil, errors.New("solana: base58 key has a character outside the base58 alphabet")
	}
	switch len(b) {
	case ed25519.SeedSize:
		return AccountFromSeed(b)
	case ed25519.PrivateKeySize:
		a, err := AccountFromSeed(b[:ed25519.SeedSize])
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a.PublicKey(), b[ed25519.SeedSize:]) {
			return nil, errors.New("solana: base58 key's public half does not belong to its seed")
		}
		return a, nil
	}
	return nil, fmt.Errorf("solana: base58 key decodes to %d bytes, want %d or %d",
		len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
}

// WithChain returns a copy of a that signs for chain c: SOL or ES (Eclipse, the
// Python SDK's SVMAccount). Sign fails for any other chain.
func (a *Account) WithChain(c message.Chain) *Account {
	return &Account{key: a.key, chain: c}
}

// Chain returns the chain code a signs for.
func (a *Account) Chain() message.Chain { return a.chain }

// Address returns the base58 public key, the sender of a's messages.
func (a *Account) Address() string { return base58.Encode(a.PublicKey()) }

// PublicKey returns the 32-byte ed25519 public key.
func (a *Account) PublicKey() ed25519.PublicKey {
	return ed25519.PublicKey(bytes.Clone(a.key[ed25519.SeedSize:]))
}

// ExportBase58 returns the key as Phantom exports it: base58(seed ‖ public key).
// It is the secret key; handle it as such.
func (a *Account) ExportBase58() string { return base58.Encode(a.key) }

// Sign signs buffer and returns the envelope's signature field in the TypeScript
// SDK's compact form: {"signature":"<base58>","publicKey":"<base58>"}.
func (a *Account) Sign(buffer []byte) (string, error) {
	if a.chain != message.ChainSOL && a.chain != message.ChainES {
		return "", fmt.Errorf("solana: cannot sign for chain %q, only SOL and ES", a.chain)
	}
	sig := ed25519.Sign(a.key, buffer)
	// base58 text needs no JSON escaping.
	return `{"signature":"` + base58.Encode(sig) + `","publicKey":"` + a.Address() + `"}`, nil
}
