// Package unixfs computes IPFS-compatible content identifiers: the CID that
// `ipfs add` prints for a file, under the chunking profiles Aleph nodes meet in
// practice (kubo's CIDv0 default, kubo's --cid-version=1, and IPIP-499's
// unixfs-v1-2025). Sum, Import and Verify run boxo's balanced importer, so the
// encoding is boxo's own; this package pins the parameters, streams the input in
// constant memory when the blocks are not wanted, and verifies a reader against an
// expected CID (item_type "ipfs" in the protocol). Build, for storing blocks,
// produces boxo's blocks byte for byte with its own encoder (tested against boxo
// on every layout edge), hashing leaves on several cores.
package unixfs

import (
	"errors"
	"fmt"

	chunker "github.com/ipfs/boxo/chunker"
	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// Profile pins every parameter that changes a file's CID. Files only: no
// directories, no mode or mtime metadata (both would change the CID).
type Profile struct {
	Name       string
	CIDVersion int   // 0 or 1
	ChunkSize  int64 // fixed-size chunker, bytes
	MaxLinks   int   // links per dag-pb node of the balanced layout
	RawLeaves  bool  // leaves are raw blocks (codec 0x55) instead of dag-pb UnixFS nodes
}

// The profiles. Values match boxo's uio.UnixFS_v0_2015 and uio.UnixFS_v1_2025
// (checked in the tests) and testdata/cids.json. They are constant tables: copy,
// do not modify.
var (
	// KuboV0 is `ipfs add` with kubo's defaults (through v0.39): CIDv0.
	KuboV0 = Profile{Name: "kubo-default-cidv0", CIDVersion: 0, ChunkSize: 256 << 10, MaxLinks: 174, RawLeaves: false}
	// KuboV1 is `ipfs add --cid-version=1`: raw leaves, but still 256 KiB and 174 links.
	KuboV1 = Profile{Name: "kubo-cidv1-raw-leaves", CIDVersion: 1, ChunkSize: 256 << 10, MaxLinks: 174, RawLeaves: true}
	// V1_2025 is IPIP-499's unixfs-v1-2025 profile: 1 MiB chunks, 1024 links.
	V1_2025 = Profile{Name: "unixfs-v1-2025", CIDVersion: 1, ChunkSize: 1 << 20, MaxLinks: 1024, RawLeaves: true}
)

// Bounds for custom profiles. MaxLinks is capped so an inner node (about 47 bytes
// per link) stays far below the 2 MiB block limit; below 2 links the balanced
// layout never terminates.
const (
	minLinks = 2
	maxLinks = 8192
)

// Profiles returns the three named profiles (a fresh slice).
func Profiles() []Profile {
	return []Profile{KuboV0, KuboV1, V1_2025}
}

// ProfileByName returns the named profile ("kubo-default-cidv0",
// "kubo-cidv1-raw-leaves" or "unixfs-v1-2025").
func ProfileByName(name string) (Profile, error) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unixfs: unknown profile %q", name)
}

// Validate reports whether p can be imported: CID version 0 or 1, CIDv0 without
// raw leaves, a chunk size in (0, chunker.ChunkSizeLimit], and 2–8192 links.
func (p Profile) Validate() error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("unixfs: %w", err)
	}
	return nil
}

func (p Profile) validate() error {
	switch {
	case p.CIDVersion != 0 && p.CIDVersion != 1:
		return fmt.Errorf("profile %q: cid version %d: %w", p.Name, p.CIDVersion, ErrInvalidProfile)
	case p.CIDVersion == 0 && p.RawLeaves:
		return fmt.Errorf("profile %q: cidv0 cannot have raw leaves: %w", p.Name, ErrInvalidProfile)
	case p.ChunkSize <= 0 || p.ChunkSize > int64(chunker.ChunkSizeLimit):
		return fmt.Errorf("profile %q: chunk size %d outside 1..%d: %w", p.Name, p.ChunkSize, chunker.ChunkSizeLimit, ErrInvalidProfile)
	case p.MaxLinks < minLinks || p.MaxLinks > maxLinks:
		return fmt.Errorf("profile %q: max links %d outside %d..%d: %w", p.Name, p.MaxLinks, minLinks, maxLinks, ErrInvalidProfile)
	}
	return nil
}

// ErrInvalidProfile is wrapped by every error about a Profile's parameters.
var ErrInvalidProfile = errors.New("invalid profile")

// prefix is the CID prefix of the profile's dag-pb nodes; raw leaves switch the
// codec themselves (merkledag.NewRawNodeWPrefix).
func (p Profile) prefix() cid.Prefix {
	return cid.Prefix{
		Version:  uint64(p.CIDVersion),
		Codec:    cid.DagProtobuf,
		MhType:   mh.SHA2_256,
		MhLength: -1,
	}
}
