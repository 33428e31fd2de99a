package evm

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// DefaultDerivationPath is the BIP-44 path of the first Ethereum account, used by
// the Python SDK, MetaMask and most wallets.
const DefaultDerivationPath = "m/44'/60'/0'/0/0"

// HardenedOffset is added to an index to make a hardened BIP-32 child.
const HardenedOffset uint32 = 1 << 31

// maxPathDepth is the deepest path accepted: BIP-32 serializes depth in one byte.
const maxPathDepth = 255

// maxPathText bounds the path text before parsing.
const maxPathText = 4096

// extendedKey is a BIP-32 private key with its chain code.
type extendedKey struct {
	key   secp256k1.ModNScalar
	chain [32]byte
}

// masterKey computes the BIP-32 master key: HMAC-SHA512("Bitcoin seed", seed).
func masterKey(seed []byte) (extendedKey, error) {
	if len(seed) < 16 || len(seed) > 64 {
		return extendedKey{}, fmt.Errorf("seed is %d bytes, BIP-32 wants 16 to 64", len(seed))
	}
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	return splitKey(mac.Sum(nil), nil)
}

// child derives child i (hardened when i ≥ HardenedOffset) of a private key:
// I = HMAC-SHA512(chain, data) with data = 0x00‖k‖i (hardened) or serP(k·G)‖i;
// the child key is IL + k mod n.
func (k *extendedKey) child(i uint32) (extendedKey, error) {
	var data [37]byte
	if i >= HardenedOffset {
		k.key.PutBytesUnchecked(data[1:33])
	} else {
		priv := secp256k1.NewPrivateKey(&k.key)
		copy(data[:33], priv.PubKey().SerializeCompressed())
	}
	binary.BigEndian.PutUint32(data[33:], i)
	mac := hmac.New(sha512.New, k.chain[:])
	mac.Write(data[:])
	c, err := splitKey(mac.Sum(nil), &k.key)
	if err != nil {
		return extendedKey{}, fmt.Errorf("child %s: %w", indexText(i), err)
	}
	return c, nil
}

// errInvalidKey is BIP-32's "the resulting key is invalid" (IL ≥ n or a zero
// key, with probability below 2^-127). The spec says to move on to the next
// index; we report it instead, so that a path always names one key.
var errInvalidKey = errors.New("derived key is invalid (IL ≥ n or zero key); use another index")

// splitKey turns I = IL‖IR into a key (IL, plus parent if not nil, mod n) and
// chain code IR.
func splitKey(i []byte, parent *secp256k1.ModNScalar) (extendedKey, error) {
	var out extendedKey
	if overflow := out.key.SetByteSlice(i[:32]); overflow {
		return extendedKey{}, errInvalidKey
	}
	if parent != nil {
		out.key.Add(parent)
	}
	if out.key.IsZero() {
		return extendedKey{}, errInvalidKey
	}
	copy(out.chain[:], i[32:])
	return out, nil
}

// ParseDerivationPath parses a BIP-32 path such as m/44'/60'/0'/0/3 into child
// indexes. A hardened step is marked with ', h or H; "m" alone is the master key.
func ParseDerivationPath(path string) ([]uint32, error) {
	if len(path) > maxPathText {
		return nil, fmt.Errorf("evm: derivation path is %d bytes, over %d", len(path), maxPathText)
	}
	parts := strings.Split(path, "/")
	if parts[0] != "m" {
		return nil, fmt.Errorf("evm: derivation path %.40q must start with m", path)
	}
	parts = parts[1:]
	if len(parts) > maxPathDepth {
		return nil, fmt.Errorf("evm: derivation path has %d steps, over %d", len(parts), maxPathDepth)
	}
	out := make([]uint32, 0, len(parts))
	for n, p := range parts {
		hardened := false
		if s := strings.TrimRight(p, "'hH"); len(s) == len(p)-1 {
			hardened, p = true, s
		}
		// ParseUint rejects signs, spaces and empty text; bitSize 31 keeps the
		// index below the hardened offset.
		v, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return nil, fmt.Errorf("evm: derivation path step %d (%.20q): want a number below 2^31, optionally followed by '", n+1, parts[n])
		}
		i := uint32(v)
		if hardened {
			i += HardenedOffset
		}
		out = append(out, i)
	}
	return out, nil
}

// derivePath derives the private key at indexes from a BIP-39 seed.
func derivePath(seed []byte, indexes []uint32) (*secp256k1.PrivateKey, error) {
	k, err := masterKey(seed)
	if err != nil {
		return nil, err
	}
	for _, i := range indexes {
		if k, err = k.child(i); err != nil {
			return nil, err
		}
	}
	return secp256k1.NewPrivateKey(&k.key), nil
}

func indexText(i uint32) string {
	if i >= HardenedOffset {
		return strconv.FormatUint(uint64(i-HardenedOffset), 10) + "'"
	}
	return strconv.FormatUint(uint64(i), 10)
}
