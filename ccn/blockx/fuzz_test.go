package blockx

import (
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// FuzzDecode: any block a peer sends, as dag-pb or raw, decodes to links and
// file data or fails with an error, never a panic.
func FuzzDecode(f *testing.F) {
	// A UnixFS file node with one link, and a directory node.
	f.Add([]byte("\x12\x2c\x0a\x22\x12\x20"+string(make([]byte, 32))+"\x12\x00\x18\x05\x0a\x08\x08\x02\x18\x05\x20\x05"), true)
	f.Add([]byte("\x0a\x02\x08\x01"), true)
	f.Add([]byte("raw leaf bytes"), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, pb bool) {
		codec := uint64(cid.Raw)
		if pb {
			codec = cid.DagProtobuf
		}
		sum, err := mh.Sum(data, mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, err := blocks.NewBlockWithCid(data, cid.NewCidV1(codec, sum))
		if err != nil {
			t.Fatal(err)
		}
		n, err := decode(b)
		if err != nil {
			return
		}
		if n.file && uint64(len(n.data)) > uint64(len(data)) {
			t.Fatalf("file data of %d bytes from a block of %d", len(n.data), len(data))
		}
	})
}
