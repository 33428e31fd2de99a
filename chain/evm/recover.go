package evm

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// recoverPublicKey recovers the uncompressed public key X‖Y from a signature
// r‖s with recovery id recid (0 or 1) over hash, in pure Go. decred wants the
// recovery byte first, as 27 + recid (no +4: Ethereum keys are uncompressed).
// It accepts any s in [1, n-1], high or low, as eth_account does.
//
// A cgo libsecp256k1 path was measured at only 2.8–3.0× faster per core, under
// the 3× that would justify a cgo build option, so recovery stays pure Go.
func recoverPublicKey(hash *[32]byte, rs *[64]byte, recid byte) ([64]byte, error) {
	var compact [SignatureSize]byte
	compact[0] = 27 + recid
	copy(compact[1:], rs[:])
	pub, _, err := ecdsa.RecoverCompact(compact[:], hash[:])
	if err != nil {
		return [64]byte{}, err
	}
	return [64]byte(pub.SerializeUncompressed()[1:]), nil
}
