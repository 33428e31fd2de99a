package substrate

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ChainSafe/go-schnorrkel"
	"github.com/tyler-smith/go-bip39"
	"golang.org/x/crypto/pbkdf2"

	"github.com/go-aleph/go-aleph/message"
)

// maxMnemonicLength bounds the mnemonic text; 24 English words are under 250 bytes.
const maxMnemonicLength = 1024

// Account is an sr25519 key that signs DOT messages.
type Account struct {
	secret *schnorrkel.SecretKey
	public [32]byte
	format uint16
	addr   string
}

// NewAccount makes an account from a 32-byte mini secret key read from rnd, or
// from crypto/rand when rnd is nil. Signing still draws its nonces from
// crypto/rand: sr25519 signatures are randomized.
func NewAccount(rnd io.Reader) (*Account, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var seed [schnorrkel.MiniSecretKeySize]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("substrate: read random seed: %w", err)
	}
	return accountFromMiniSecret(seed)
}

// AccountFromSeed makes an account from a substrate "secret seed": the 32-byte
// mini secret key as 64 hex digits, with or without 0x (what `subkey inspect`
// prints as "Secret seed"). The key is expanded as substrate's
// sr25519 Pair::from_seed does, in ed25519 mode.
func AccountFromSeed(seedHex string) (*Account, error) {
	s := strings.TrimSpace(seedHex)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	if len(s) != 2*schnorrkel.MiniSecretKeySize {
		return nil, fmt.Errorf("substrate: hex seed has %d digits, want %d", len(s), 2*schnorrkel.MiniSecretKeySize)
	}
	var seed [schnorrkel.MiniSecretKeySize]byte
	if _, err := hex.Decode(seed[:], []byte(s)); err != nil {
		// The text is secret: the error does not repeat it.
		return nil, errors.New("substrate: hex seed has a non-hex digit")
	}
	return accountFromMiniSecret(seed)
}

// AccountFromMnemonic makes an account from a BIP-39 English mnemonic the way
// substrate (and so the Python SDK's DOTAccount) does: unlike BIP-39 seeds, the
// mini secret is the first 32 bytes of PBKDF2-HMAC-SHA512 over the mnemonic's
// entropy, salted with "mnemonic" + password, 2048 rounds. No derivation path
// is applied.
func AccountFromMnemonic(phrase, password string) (*Account, error) {
	if len(phrase) > maxMnemonicLength || len(password) > maxMnemonicLength {
		return nil, fmt.Errorf("substrate: mnemonic or password over %d bytes", maxMnemonicLength)
	}
	entropy, err := bip39.EntropyFromMnemonic(phrase)
	if err != nil {
		// The words are secret; bip39's errors may quote one.
		return nil, errors.New("substrate: invalid mnemonic (unknown word, wrong word count or bad checksum)")
	}
	seed := pbkdf2.Key(entropy, []byte("mnemonic"+password), 2048, 64, sha512.New)
	var mini [schnorrkel.MiniSecretKeySize]byte
	copy(mini[:], seed)
	return accountFromMiniSecret(mini)
}

func accountFromMiniSecret(seed [schnorrkel.MiniSecretKeySize]byte) (*Account, error) {
	mini, err := schnorrkel.NewMiniSecretKeyFromRaw(seed)
	if err != nil {
		return nil, fmt.Errorf("substrate: mini secret key: %w", err)
	}
	secret := mini.ExpandEd25519()
	pub, err := secret.Public()
	if err != nil {
		return nil, fmt.Errorf("substrate: public key: %w", err)
	}
	a := &Account{secret: secret, public: pub.Encode()}
	return a.WithFormat(DefaultFormat)
}

// WithFormat returns a copy of a whose address uses SS58 format f (0 Polkadot,
// 2 Kusama, 42 generic Substrate, the default). Formats over MaxFormat and the
// reserved 46 and 47 are errors.
func (a *Account) WithFormat(f uint16) (*Account, error) {
	addr, err := EncodeSS58(f, a.public)
	if err != nil {
		return nil, fmt.Errorf("substrate: %w", err)
	}
	return &Account{secret: a.secret, public: a.public, format: f, addr: addr}, nil
}

// Chain returns DOT.
func (a *Account) Chain() message.Chain { return message.ChainDOT }

// Address returns the SS58 address, the sender of a's messages.
func (a *Account) Address() string { return a.addr }

// Format returns the SS58 format of Address.
func (a *Account) Format() uint16 { return a.format }

// PublicKey returns the 32-byte sr25519 public key.
func (a *Account) PublicKey() [32]byte { return a.public }

// Sign signs buffer, unwrapped, with signing context "substrate", and returns the
// envelope's signature field in the TypeScript SDK's form:
// {"curve":"sr25519","data":"0x<128 hex digits>"}.
func (a *Account) Sign(buffer []byte) (string, error) {
	sig, err := a.sign(buffer)
	if err != nil {
		return "", err
	}
	return `{"curve":"` + CurveSR25519 + `","data":"0x` + hex.EncodeToString(sig[:]) + `"}`, nil
}

func (a *Account) sign(buffer []byte) ([schnorrkel.SignatureSize]byte, error) {
	sig, err := a.secret.Sign(schnorrkel.NewSigningContext([]byte(signingContext), buffer))
	if err != nil {
		return [schnorrkel.SignatureSize]byte{}, fmt.Errorf("substrate: sign: %w", err)
	}
	return sig.Encode(), nil
}
