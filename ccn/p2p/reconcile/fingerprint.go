package reconcile

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
)

// Fingerprint summarises the items of a range: the first 16 bytes of
// sha256(sum ‖ uint64le(count)), where sum is the sum mod 2^256 of the item IDs.
type Fingerprint [16]byte

// String returns the fingerprint in hex.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// idOf is sha256(hash) read as a 256-bit little-endian number, in 4 limbs.
func idOf(hash string) accum {
	var buf [MaxHashLen]byte // on the stack: []byte(hash) would allocate
	h := sha256.Sum256(buf[:copy(buf[:], hash)])
	return accum{
		binary.LittleEndian.Uint64(h[0:]),
		binary.LittleEndian.Uint64(h[8:]),
		binary.LittleEndian.Uint64(h[16:]),
		binary.LittleEndian.Uint64(h[24:]),
	}
}

// accum is an item ID or a sum of them mod 2^256. Addition makes sums
// cacheable per chunk and combinable across chunks.
type accum [4]uint64

func (a *accum) add(id *accum) {
	var c uint64
	a[0], c = bits.Add64(a[0], id[0], 0)
	a[1], c = bits.Add64(a[1], id[1], c)
	a[2], c = bits.Add64(a[2], id[2], c)
	a[3], _ = bits.Add64(a[3], id[3], c)
}

func (a *accum) sub(id *accum) {
	var b uint64
	a[0], b = bits.Sub64(a[0], id[0], 0)
	a[1], b = bits.Sub64(a[1], id[1], b)
	a[2], b = bits.Sub64(a[2], id[2], b)
	a[3], _ = bits.Sub64(a[3], id[3], b)
}

func fingerprintOf(sum *accum, count int) Fingerprint {
	var buf [40]byte
	for i, limb := range sum {
		binary.LittleEndian.PutUint64(buf[i*8:], limb)
	}
	binary.LittleEndian.PutUint64(buf[32:], uint64(count))
	h := sha256.Sum256(buf[:])
	var f Fingerprint
	copy(f[:], h[:16])
	return f
}

// emptyFingerprint is the fingerprint of a range without items.
func emptyFingerprint() Fingerprint {
	var zero accum
	return fingerprintOf(&zero, 0)
}
