package p2p

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// LoadOrCreateKey returns the node's identity key from path, creating an
// Ed25519 key there (mode 0600) the first time. A file holding an RSA key in
// PKCS#8 DER, as pyaleph's --gen-keys writes it (node-secret.pkcs8.der), is
// accepted too, so an operator can keep an existing peer ID.
func LoadOrCreateKey(path string) (crypto.PrivKey, error) {
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		return parseKey(raw, path)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("p2p: read identity key: %w", err)
	}
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: generate identity key: %w", err)
	}
	enc, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("p2p: encode identity key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("p2p: create key dir: %w", err)
	}
	// Write then rename, so that a crash never leaves half a key.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, enc, 0o600); err != nil {
		return nil, fmt.Errorf("p2p: write identity key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("p2p: write identity key: %w", err)
	}
	return priv, nil
}

func parseKey(raw []byte, path string) (crypto.PrivKey, error) {
	if len(raw) > 16<<10 {
		return nil, fmt.Errorf("p2p: identity key %s: %d bytes is too large for a key", path, len(raw))
	}
	// A DER SEQUENCE: a PKCS#8 key (pyaleph's RSA keys).
	if bytes.HasPrefix(raw, []byte{0x30}) {
		if std, err := x509.ParsePKCS8PrivateKey(raw); err == nil {
			priv, _, err := crypto.KeyPairFromStdKey(std)
			if err != nil {
				return nil, fmt.Errorf("p2p: identity key %s: %w", path, err)
			}
			return priv, nil
		}
	}
	priv, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("p2p: identity key %s is neither a libp2p key nor PKCS#8 DER: %w", path, err)
	}
	return priv, nil
}
