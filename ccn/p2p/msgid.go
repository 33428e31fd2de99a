package p2p

import (
	"encoding/binary"
	"math/bits"
	"strconv"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
)

// MessageID is the gossipsub message ID of Aleph's p2p-service: Rust's
// DefaultHasher (SipHash-1-3 with zero keys) over the payload as a Vec<u8>,
// i.e. over le64(len) ‖ data, as a decimal string. Content-addressed IDs also
// make two nodes that publish the same message share one ID. Not verified
// against the Rust service (unreachable from here): see docs/P2P.md.
func MessageID(m *pb.Message) string {
	return strconv.FormatUint(rustHash(m.GetData()), 10)
}

func rustHash(data []byte) uint64 {
	buf := make([]byte, 8, 8+len(data))
	binary.LittleEndian.PutUint64(buf, uint64(len(data)))
	return sipHash(1, 3, 0, 0, append(buf, data...))
}

// sipHash is SipHash-c-d (c compression rounds, d finalisation rounds) with
// key (k0, k1).
func sipHash(c, d int, k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		for range c {
			round()
		}
		v0 ^= m
		msg = msg[8:]
	}
	var last [8]byte
	copy(last[:], msg)
	b := binary.LittleEndian.Uint64(last[:]) | uint64(n)<<56
	v3 ^= b
	for range c {
		round()
	}
	v0 ^= b
	v2 ^= 0xff
	for range d {
		round()
	}
	return v0 ^ v1 ^ v2 ^ v3
}
