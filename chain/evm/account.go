package evm

import (
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/tyler-smith/go-bip39"

	"github.com/go-aleph/go-aleph/internal/secpkey"
	"github.com/go-aleph/go-aleph/message"
)

// Bounds on mnemonic input, far above any real phrase (24 words) or passphrase.
const (
	maxMnemonicText   = 1024
	maxPassphraseText = 1024
)

// Account is a secp256k1 key that signs Aleph messages with EIP-191. It signs for
// ETH unless WithChain picks another EVM chain code. It implements message.Signer.
type Account struct {
	key   *secp256k1.PrivateKey
	chain message.Chain
	addr  string // EIP-55, computed once
}

// NewAccount makes an account with a fresh key read from rand (crypto/rand when
// rand is nil).
func NewAccount(rand io.Reader) (*Account, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	key, err := secpkey.Generate(rand)
	if err != nil {
		return nil, fmt.Errorf("evm: generating key: %w", err)
	}
	return newAccount(key), nil
}

// AccountFromHex loads a private key written as 64 hex digits, with or without
// 0x; surrounding white space (a key file's newline) is ignored. The key must be
// in [1, n-1].
func AccountFromHex(privHex string) (*Account, error) {
	s := strings.TrimSpace(privHex)
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	key, err := secpkey.ParseHexDigits(s)
	// Errors never quote the input: it is secret.
	switch {
	case errors.Is(err, secpkey.ErrLength):
		return nil, fmt.Errorf("evm: private key is %d hex digits, want 64", len(s))
	case errors.Is(err, secpkey.ErrNotHex):
		return nil, errors.New("evm: private key is not hex")
	case err != nil:
		return nil, errors.New("evm: private key is out of range (zero or not below the curve order)")
	}
	return newAccount(key), nil
}

// AccountFromMnemonic derives the account at DefaultDerivationPath
// (m/44'/60'/0'/0/0) from a BIP-39 English mnemonic and optional passphrase.
func AccountFromMnemonic(phrase, passphrase string) (*Account, error) {
	return AccountFromMnemonicPath(phrase, passphrase, DefaultDerivationPath)
}

// AccountFromMnemonicPath derives the account at a BIP-32 path such as
// m/44'/60'/0'/0/3 from a BIP-39 English mnemonic and optional passphrase.
//
// Words may be separated by any white space; the seed is computed over the words
// joined by single spaces, as wallets do. The passphrase must be ASCII: BIP-39
// hashes its NFKD form, and this package has no Unicode normalizer, so a
// non-ASCII passphrase could silently give another wallet's keys.
func AccountFromMnemonicPath(phrase, passphrase, path string) (*Account, error) {
	if len(phrase) > maxMnemonicText {
		return nil, fmt.Errorf("evm: mnemonic is %d bytes, over %d", len(phrase), maxMnemonicText)
	}
	if len(passphrase) > maxPassphraseText {
		return nil, fmt.Errorf("evm: passphrase is %d bytes, over %d", len(passphrase), maxPassphraseText)
	}
	for i := 0; i < len(passphrase); i++ {
		if passphrase[i] >= utf8.RuneSelf {
			return nil, errors.New("evm: passphrase must be ASCII (BIP-39 NFKD normalization is not supported)")
		}
	}
	indexes, err := ParseDerivationPath(path)
	if err != nil {
		return nil, err
	}
	words := strings.Join(strings.Fields(phrase), " ")
	seed, err := bip39.NewSeedWithErrorChecking(words, passphrase)
	if err != nil {
		return nil, fmt.Errorf("evm: invalid BIP-39 mnemonic (want 12 to 24 English words with a valid checksum): %w", err)
	}
	defer clear(seed)
	key, err := derivePath(seed, indexes)
	if err != nil {
		return nil, fmt.Errorf("evm: deriving %s: %w", path, err)
	}
	return newAccount(key), nil
}

func newAccount(key *secp256k1.PrivateKey) *Account {
	var xy [64]byte
	copy(xy[:], key.PubKey().SerializeUncompressed()[1:])
	addr := pubkeyAddress(&xy)
	return &Account{key: key, chain: message.ChainETH, addr: checksumHex(&addr)}
}

// WithChain returns a copy of a that signs for chain code c (ARB, BASE, …) with
// the same key. Sign fails when c is not an EVM chain code.
func (a *Account) WithChain(c message.Chain) *Account {
	b := *a
	b.chain = c
	return &b
}

// Chain returns the chain code the account signs for (ETH by default).
func (a *Account) Chain() message.Chain { return a.chain }

// Address returns the EIP-55 checksummed address.
func (a *Account) Address() string { return a.addr }

// PrivateKeyHex returns the private key as "0x" + 64 lowercase hex digits.
func (a *Account) PrivateKeyHex() string {
	return "0x" + hex.EncodeToString(a.key.Serialize())
}

// PublicKeyCompressedHex returns the 33-byte compressed public key as "0x" + 66
// hex digits, like the Python SDK's get_public_key.
func (a *Account) PublicKeyCompressedHex() string {
	return "0x" + hex.EncodeToString(a.key.PubKey().SerializeCompressed())
}

// Sign signs a verification buffer and returns the envelope's signature field:
// "0x" + 130 lowercase hex digits of r‖s‖v, with RFC-6979 nonces (deterministic),
// low S, and v = 27 or 28.
func (a *Account) Sign(buffer []byte) (string, error) {
	if !IsEVMChain(a.chain) {
		return "", fmt.Errorf("evm: cannot sign for chain %.40q: not an EVM chain code", a.chain)
	}
	return a.SignText(buffer)
}

// SignText is EIP-191 personal_sign of text (the Python SDK's sign_raw), in the
// same form as Sign. text must be UTF-8: the Python SDK and pyaleph decode it
// before hashing, so other bytes could never be verified.
func (a *Account) SignText(text []byte) (string, error) {
	if !utf8.Valid(text) {
		return "", errors.New("evm: text to sign is not valid UTF-8")
	}
	hash := HashMessage(text)
	// SignCompact returns [27+recid]‖r‖s, with low S; Ethereum puts v last.
	compact := ecdsa.SignCompact(a.key, hash[:], false)
	var sig [SignatureSize]byte
	copy(sig[:64], compact[1:])
	sig[64] = compact[0]
	return "0x" + hex.EncodeToString(sig[:]), nil
}
