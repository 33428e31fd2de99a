// Package avalanche verifies and signs Aleph messages from Avalanche X-chain keys
// (chain code AVAX).
//
// The sender is "<chainId>-<bech32 address>", such as "X-avax1…". The signature is
// cb58: base58 (Bitcoin alphabet) of the 65-byte recoverable signature r‖s‖recid
// followed by the last 4 bytes of its sha256. The signed digest is
// sha256("\x1aAvalanche Signed Message:\n" ‖ uint32_be(len(buf)) ‖ buf), the public
// key is recovered from it, and "<chainId>-" + bech32("avax", hash160(compressed key))
// must equal the sender exactly.
//
// Like pyaleph, the address is always rebuilt with the human-readable part "avax",
// whatever the sender says, so testnet ("fuji") and C-chain ("0x…") senders are
// rejected. The chain id before the first '-' is taken as written.
package avalanche

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/mr-tron/base58"
	"golang.org/x/crypto/ripemd160" // deprecated upstream, but hash160 is what the chain uses

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

const (
	// HRP is the bech32 human-readable part of every address pyaleph accepts.
	HRP = "avax"
	// DefaultChainID is the chain id of the addresses accounts produce.
	DefaultChainID = "X"

	magic = "\x1aAvalanche Signed Message:\n"

	sigLen      = 65 // r‖s‖recid
	checksumLen = 4
	// maxSignatureLen bounds the base58 text before decoding (decoding is quadratic);
	// 69 bytes encode to at most 95 characters.
	maxSignatureLen = 128
)

// Verifier checks AVAX signatures. The zero value is ready to use.
type Verifier struct{}

// Register binds AVAX to the Avalanche verifier.
func Register(r *chain.Registry) {
	r.Register(message.ChainAVAX, Verifier{})
}

// Digest returns the hash an Avalanche wallet signs for buf.
func Digest(buf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(magic))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(buf)))
	h.Write(n[:])
	h.Write(buf)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Verify checks that m.Signature is a valid cb58 recoverable signature of m's
// verification buffer by the key behind m.Sender.
func (Verifier) Verify(m *message.Message) error {
	chainID, err := parseSender(m.Sender)
	if err != nil {
		return err
	}
	sig, err := decodeSignature(m.Signature)
	if err != nil {
		return err
	}
	digest := Digest(m.VerificationBuffer())
	// decred wants the Bitcoin compact layout: [27+recid+4]‖r‖s.
	var compact [sigLen]byte
	compact[0] = 27 + 4 + sig[64]
	copy(compact[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(compact[:], digest[:])
	if err != nil {
		return chain.SignatureError("signature", "cannot recover a public key: %v", err)
	}
	addr, err := address(chainID, pub)
	if err != nil {
		return chain.SignatureError("signature", "cannot encode the signer's address: %v", err)
	}
	if addr != m.Sender {
		return chain.SignatureError("signature", "signed by %s, not by the sender", addr)
	}
	return nil
}

// parseSender splits "<chainId>-avax1…" and returns the chain id.
func parseSender(sender string) (string, error) {
	if len(sender) > message.MaxSenderLength {
		return "", chain.SignatureError("sender", "longer than %d bytes", message.MaxSenderLength)
	}
	chainID, rest, ok := strings.Cut(sender, "-")
	if !ok {
		return "", chain.SignatureError("sender", "want <chainId>-<bech32 address>, found no '-'")
	}
	if !strings.HasPrefix(rest, HRP+"1") {
		return "", chain.SignatureError("sender", "want a bech32 address with human-readable part %q after %q", HRP, chainID+"-")
	}
	return chainID, nil
}

// decodeSignature decodes cb58 text into r‖s‖recid, checking the checksum and the
// recovery id.
func decodeSignature(s string) ([]byte, error) {
	if len(s) > maxSignatureLen {
		return nil, chain.SignatureError("signature", "%d characters, over the %d-character limit", len(s), maxSignatureLen)
	}
	raw, err := base58.Decode(s)
	if err != nil {
		return nil, chain.SignatureError("signature", "not base58: %v", err)
	}
	if len(raw) != sigLen+checksumLen {
		return nil, chain.SignatureError("signature", "decodes to %d bytes, want %d", len(raw), sigLen+checksumLen)
	}
	sig, sum := raw[:sigLen], raw[sigLen:]
	want := sha256.Sum256(sig)
	if !bytes.Equal(sum, want[32-checksumLen:]) {
		return nil, chain.SignatureError("signature", "cb58 checksum mismatch")
	}
	if sig[64] > 3 {
		return nil, chain.SignatureError("signature", "recovery id %d, want 0 to 3", sig[64])
	}
	return sig, nil
}

// EncodeSignature returns the cb58 text of a 65-byte r‖s‖recid signature.
func EncodeSignature(sig []byte) string {
	sum := sha256.Sum256(sig)
	out := make([]byte, 0, len(sig)+checksumLen)
	out = append(out, sig...)
	out = append(out, sum[32-checksumLen:]...)
	return base58.Encode(out)
}

// address returns "<chainId>-" + bech32("avax", hash160(compressed pub)).
func address(chainID string, pub *secp256k1.PublicKey) (string, error) {
	sha := sha256.Sum256(pub.SerializeCompressed())
	rh := ripemd160.New()
	rh.Write(sha[:])
	conv, err := bech32.ConvertBits(rh.Sum(nil), 8, 5, true)
	if err != nil {
		return "", err
	}
	enc, err := bech32.Encode(HRP, conv)
	if err != nil {
		return "", err
	}
	return chainID + "-" + enc, nil
}
