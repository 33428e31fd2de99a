package tezos

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/crypto/blake2b"

	"github.com/go-aleph/go-aleph/message"
)

// Account is a tz1 (ed25519) key that signs TEZOS messages the way the Python SDK
// does: raw signing, ed25519 over blake2b-256 of the verification buffer.
//
// Micheline signing is not offered: its payload embeds the envelope time, and a
// message.Signer only receives the buffer.
type Account struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

var _ message.Signer = (*Account)(nil)

// NewAccount generates a key from random, or from crypto/rand when random is nil.
func NewAccount(random io.Reader) (*Account, error) {
	if random == nil {
		random = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(random, seed); err != nil {
		return nil, fmt.Errorf("tezos: generate key: %w", err)
	}
	return AccountFromSeed(seed)
}

// AccountFromSeed builds the account of a 32-byte ed25519 seed (pytezos's secret exponent).
func AccountFromSeed(seed []byte) (*Account, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("tezos: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return &Account{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
}

// AccountFromSecretKey builds the account of an "edsk…" secret key, in either its
// 54-character seed form or its 98-character seed-and-public-key form. In the long
// form the public half must match the seed.
func AccountFromSecretKey(edsk string) (*Account, error) {
	enc, raw, err := decode(edsk, kindSecretKey)
	if err != nil {
		return nil, fmt.Errorf("tezos: secret key: %w", err)
	}
	a, err := AccountFromSeed(raw[:ed25519.SeedSize])
	if err != nil {
		return nil, err
	}
	if enc.size == ed25519.PrivateKeySize && !bytes.Equal(raw[ed25519.SeedSize:], a.pub) {
		return nil, fmt.Errorf("tezos: secret key: public half does not match the seed")
	}
	return a, nil
}

// Chain returns TEZOS.
func (a *Account) Chain() message.Chain { return message.ChainTEZOS }

// Address returns the tz1 address.
func (a *Account) Address() string { return addressOf(curveEd25519, a.pub) }

// PublicKey returns the "edpk…" public key.
func (a *Account) PublicKey() string {
	return lookup(kindPublicKey, curveEd25519, ed25519.PublicKeySize).encode(a.pub)
}

// SecretKey returns the 54-character "edsk…" seed form of the secret key.
func (a *Account) SecretKey() string {
	return lookup(kindSecretKey, curveEd25519, ed25519.SeedSize).encode(a.priv.Seed())
}

// Sign returns the signature field for buffer: compact JSON
// {"signature":"edsig…","publicKey":"edpk…"}, raw signing.
func (a *Account) Sign(buffer []byte) (string, error) {
	digest := blake2b.Sum256(buffer)
	sig := ed25519.Sign(a.priv, digest[:])
	out, err := json.Marshal(struct {
		Signature string `json:"signature"`
		PublicKey string `json:"publicKey"`
	}{
		Signature: lookup(kindSignature, curveEd25519, ed25519.SignatureSize).encode(sig),
		PublicKey: a.PublicKey(),
	})
	if err != nil {
		return "", fmt.Errorf("tezos: encode signature: %w", err)
	}
	return string(out), nil
}
