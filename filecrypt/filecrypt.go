// Package filecrypt encrypts files on the client before they are uploaded to an
// Aleph node, and decrypts them after download. The format is the standard age
// v1 file format (https://age-encryption.org/v1): X25519 recipients and a
// ChaCha20-Poly1305 payload in 64 KiB chunks, so any age implementation can
// decrypt it. docs/FILE-ENCRYPTION.md describes the format and the key
// derivation.
//
// The owner's key is not stored anywhere: DeriveIdentity computes an age X25519
// identity deterministically from the account's private key with HKDF-SHA256, so
// the same account decrypts its files on any machine. Other recipients are given
// as standard age1… public keys. No key material ever leaves the client; the
// STORE message only says that the file is encrypted (Metadata).
package filecrypt

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/btcsuite/btcd/btcutil/bech32"
	"golang.org/x/crypto/hkdf"

	"github.com/go-aleph/go-aleph/message"
)

// Format is the value of content.metadata.encryption in the STORE message of an
// encrypted file.
const Format = "age-v1"

// MetadataKey is the key of content.metadata that names the format.
const MetadataKey = "encryption"

// Metadata returns the STORE content.metadata entries of an encrypted file. They
// name the format only, never a key or a recipient.
func Metadata() map[string]any { return map[string]any{MetadataKey: Format} }

// Key derivation inputs (see docs/FILE-ENCRYPTION.md). Changing any of them
// changes every derived key, so a new derivation gets a new version.
const (
	// DerivationSalt is the HKDF salt.
	DerivationSalt = "aleph-file-encryption/v1"
	// derivationInfoPrefix starts the HKDF info, followed by "<chain>:<address>".
	derivationInfoPrefix = "age-x25519-identity:"
)

// SecretSize is the size of the account secret DeriveIdentity takes: the
// secp256k1 private key of an EVM account, the ed25519 seed of a Solana account.
const SecretSize = 32

// asciiHeader is the first line of every age v1 file; armorHeader starts the
// ASCII-armored form (`age -a`).
const (
	asciiHeader = "age-encryption.org/v1\n"
	armorHeader = armor.Header + "\n"
)

// Errors.
var (
	// ErrNotEncrypted is returned by Decrypt for input that is not an age v1 file.
	ErrNotEncrypted = errors.New("not an age v1 encrypted file")
	// ErrNoIdentity is returned by Decrypt when none of the identities is a
	// recipient of the file.
	ErrNoIdentity = errors.New("no identity can decrypt the file")
	// ErrNoRecipient is returned by Encrypt without recipients.
	ErrNoRecipient = errors.New("no recipient")
	// ErrBadSecret is returned by DeriveIdentity for a secret of the wrong size
	// or one that is all zeros.
	ErrBadSecret = errors.New("invalid account secret")
)

// DerivationInfo returns the HKDF info for an account: the key is bound to the
// chain and the address, so two chains using the same 32 bytes (an EVM and a
// Solana account from one key file) get different keys.
func DerivationInfo(chain message.Chain, address string) string {
	return derivationInfoPrefix + string(chain) + ":" + address
}

// DeriveIdentity returns the account's age X25519 identity: the scalar is
// HKDF-SHA256(ikm = secret, salt = DerivationSalt, info = DerivationInfo(chain,
// address)), 32 bytes, encoded as an age secret key. secret is SecretSize bytes.
func DeriveIdentity(chain message.Chain, address string, secret []byte) (*age.X25519Identity, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("derive identity: %w: %d bytes, want %d", ErrBadSecret, len(secret), SecretSize)
	}
	if bytes.Equal(secret, make([]byte, SecretSize)) {
		return nil, fmt.Errorf("derive identity: %w: all zeros", ErrBadSecret)
	}
	if chain == "" || address == "" {
		return nil, errors.New("derive identity: chain and address are required")
	}
	scalar := make([]byte, 32)
	r := hkdf.New(sha256.New, secret, []byte(DerivationSalt), []byte(DerivationInfo(chain, address)))
	if _, err := io.ReadFull(r, scalar); err != nil {
		return nil, fmt.Errorf("derive identity: %w", err)
	}
	s, err := EncodeSecretKey(scalar)
	if err != nil {
		return nil, fmt.Errorf("derive identity: %w", err)
	}
	id, err := age.ParseX25519Identity(s)
	if err != nil {
		return nil, fmt.Errorf("derive identity: %w", err)
	}
	return id, nil
}

// EncodeSecretKey encodes a 32-byte X25519 scalar as an age secret key,
// "AGE-SECRET-KEY-1…" (Bech32, upper case), which age.ParseX25519Identity and
// the age tool read.
func EncodeSecretKey(scalar []byte) (string, error) {
	if len(scalar) != 32 {
		return "", fmt.Errorf("encode secret key: %d bytes, want 32", len(scalar))
	}
	s, err := bech32.EncodeFromBase256("age-secret-key-", scalar)
	if err != nil {
		return "", fmt.Errorf("encode secret key: %w", err)
	}
	return strings.ToUpper(s), nil
}

// ParseRecipients parses age X25519 public keys ("age1…").
func ParseRecipients(keys []string) ([]age.Recipient, error) {
	out := make([]age.Recipient, 0, len(keys))
	for _, k := range keys {
		k = strings.TrimSpace(k)
		r, err := age.ParseX25519Recipient(k)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", short(k), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseIdentities reads an age identity file: AGE-SECRET-KEY-1… lines, with
// blank lines and # comments ignored, as age-keygen writes it.
func ParseIdentities(r io.Reader) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(r)
	if err != nil {
		return nil, fmt.Errorf("parse identities: %w", err)
	}
	return ids, nil
}

// Encrypt returns a writer that encrypts what is written to it into dst as an
// age v1 file for the recipients. Close must be called to write the last chunk;
// it does not close dst.
func Encrypt(dst io.Writer, recipients ...age.Recipient) (io.WriteCloser, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("encrypt: %w", ErrNoRecipient)
	}
	w, err := age.Encrypt(dst, recipients...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return w, nil
}

// EncryptStream copies src into dst encrypted for the recipients and returns
// the number of plaintext bytes.
func EncryptStream(dst io.Writer, src io.Reader, recipients ...age.Recipient) (int64, error) {
	w, err := Encrypt(dst, recipients...)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return n, fmt.Errorf("encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return n, fmt.Errorf("encrypt: %w", err)
	}
	return n, nil
}

// Decrypt reads the age header from src, unwraps the file key with one of the
// identities and returns a reader of the plaintext. A tampered header fails
// here; a tampered or truncated payload makes a Read fail before any
// unauthenticated byte of the damaged chunk is returned.
func Decrypt(src io.Reader, identities ...age.Identity) (io.Reader, error) {
	if len(identities) == 0 {
		return nil, fmt.Errorf("decrypt: %w", ErrNoIdentity)
	}
	var in io.Reader = bufio.NewReader(src)
	head, _ := in.(*bufio.Reader).Peek(len(armorHeader))
	switch {
	case bytes.HasPrefix(head, []byte(asciiHeader)):
	case bytes.HasPrefix(head, []byte(armorHeader)):
		// Files made with `age -a` are accepted too; Encrypt never writes them.
		in = armor.NewReader(in)
	default:
		return nil, fmt.Errorf("decrypt: %w", ErrNotEncrypted)
	}
	r, err := age.Decrypt(in, identities...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("decrypt: %w", ErrNoIdentity)
		}
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return &readErr{r: r}, nil
}

// DecryptStream copies the plaintext of src into dst and returns its size.
func DecryptStream(dst io.Writer, src io.Reader, identities ...age.Identity) (int64, error) {
	r, err := Decrypt(src, identities...)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(dst, r)
	if err != nil {
		return n, err
	}
	return n, nil
}

// readErr names decryption failures of the payload.
type readErr struct{ r io.Reader }

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		// Write errors of io.Copy's destination do not pass here, only the
		// payload's authentication and read errors.
		err = fmt.Errorf("decrypt: %w", err)
	}
	return n, err
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
