package cosmos

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/go-aleph/go-aleph/internal/secpkey"
	"github.com/go-aleph/go-aleph/message"
)

// maxHRPLen is bech32's limit (an address is at most 90 characters).
const maxHRPLen = 83

// Account is a Cosmos SDK secp256k1 key that signs Aleph messages (a
// message.Signer). Its address uses the human-readable part "cosmos" unless
// WithPrefix says otherwise.
type Account struct {
	key     *secp256k1.PrivateKey
	hrp     string
	address string
}

var _ message.Signer = (*Account)(nil)

// NewAccount generates a key from rand, which must be a cryptographically secure
// source such as crypto/rand.Reader.
func NewAccount(rand io.Reader) (*Account, error) {
	if rand == nil {
		return nil, errors.New("cosmos: nil random source")
	}
	key, err := secpkey.Generate(rand)
	if err != nil {
		return nil, fmt.Errorf("cosmos: generate key: %w", err)
	}
	return newAccount(key, DefaultHRP)
}

// AccountFromHex loads a key from 64 hex digits, with or without a "0x" prefix.
func AccountFromHex(s string) (*Account, error) {
	key, err := secpkey.ParseHex(s)
	if err != nil {
		return nil, fmt.Errorf("cosmos: private key: %w", err)
	}
	return newAccount(key, DefaultHRP)
}

// WithPrefix returns a copy of a whose address uses the human-readable part hrp
// ("osmo", "juno", …). The hrp must be lowercase printable ASCII without '1', since
// verifiers take the text before the first '1' as the hrp.
func (a *Account) WithPrefix(hrp string) (*Account, error) {
	if err := checkHRP(hrp); err != nil {
		return nil, fmt.Errorf("cosmos: prefix %q: %w", truncate(hrp, 90), err)
	}
	return newAccount(a.key, hrp)
}

func checkHRP(hrp string) error {
	if hrp == "" || len(hrp) > maxHRPLen {
		return fmt.Errorf("want 1 to %d characters", maxHRPLen)
	}
	for i := 0; i < len(hrp); i++ {
		c := hrp[i]
		switch {
		case c < 33 || c > 126:
			return fmt.Errorf("byte %#x is not printable ASCII", c)
		case c >= 'A' && c <= 'Z':
			return errors.New("must be lowercase")
		case c == '1':
			return errors.New("must not contain '1'")
		}
	}
	return nil
}

func newAccount(key *secp256k1.PrivateKey, hrp string) (*Account, error) {
	addr, err := address(hrp, key.PubKey().SerializeCompressed())
	if err != nil {
		return nil, fmt.Errorf("cosmos: address: %w", err)
	}
	return &Account{key: key, hrp: hrp, address: addr}, nil
}

// Chain returns CSDK.
func (a *Account) Chain() message.Chain { return message.ChainCSDK }

// Address returns the bech32 address, "cosmos1…" by default.
func (a *Account) Address() string { return a.address }

// HRP returns the human-readable part of the address.
func (a *Account) HRP() string { return a.hrp }

// PublicKey returns the 33-byte compressed public key.
func (a *Account) PublicKey() []byte { return a.key.PubKey().SerializeCompressed() }

// Sign signs the sign doc of buffer with the account's address as signer, and
// returns the compact JSON signature object, the envelope's signature value.
// RFC 6979 nonces make it deterministic, and S is always low.
func (a *Account) Sign(buffer []byte) (string, error) {
	if !utf8.Valid(buffer) {
		return "", errors.New("cosmos: sign: buffer is not valid UTF-8")
	}
	digest := sha256.Sum256(SignDoc(buffer, a.address))
	sig := ecdsa.Sign(a.key, digest[:])
	r, s := sig.R(), sig.S()
	var rs [sigLen]byte
	r.PutBytesUnchecked(rs[:32])
	s.PutBytesUnchecked(rs[32:])
	// base64 text needs no JSON escaping, so the object is written directly.
	return `{"signature":"` + base64.StdEncoding.EncodeToString(rs[:]) +
		`","pub_key":{"type":"` + PubKeyType + `","value":"` + base64.StdEncoding.EncodeToString(a.PublicKey()) +
		`"},"account_number":"0","sequence":"0"}`, nil
}
