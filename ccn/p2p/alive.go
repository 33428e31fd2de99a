package p2p

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Peer types of an ALIVE record.
const (
	PeerTypeP2P  = "P2P"
	PeerTypeHTTP = "HTTP"
	PeerTypeIPFS = "IPFS"
)

// maxAliveSize bounds an ALIVE payload; real ones are about 150 bytes.
const maxAliveSize = 4 << 10

// Alive is the payload nodes publish on the ALIVE topic (pyaleph's format).
type Alive struct {
	Address   string `json:"address"`
	Interests any    `json:"interests"`
	PeerType  string `json:"peer_type"`
	Version   string `json:"version"`
}

// parseAlive checks an ALIVE record sent by from: the HTTP address must be an
// http(s) URL, a P2P address a multiaddr of from itself.
func parseAlive(data []byte, from peer.ID) (Alive, error) {
	var a Alive
	if len(data) > maxAliveSize {
		return a, fmt.Errorf("%w: alive record of %d bytes (limit %d)", ErrMalformed, len(data), maxAliveSize)
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("%w: alive record: %w", ErrMalformed, err)
	}
	switch a.PeerType {
	case PeerTypeHTTP:
		u, err := url.Parse(a.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return a, fmt.Errorf("%w: alive HTTP address %q is not an http(s) URL", ErrMalformed, a.Address)
		}
	case PeerTypeP2P:
		addr, err := ma.NewMultiaddr(a.Address)
		if err != nil {
			return a, fmt.Errorf("%w: alive P2P address %q: %w", ErrMalformed, a.Address, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(addr)
		if err != nil || info.ID != from {
			return a, fmt.Errorf("%w: alive P2P address %q is not the sender's (%s)", ErrMalformed, a.Address, from)
		}
	case PeerTypeIPFS:
	default:
		return a, fmt.Errorf("%w: alive peer_type %q is not P2P, HTTP or IPFS", ErrMalformed, a.PeerType)
	}
	return a, nil
}

// PeerInfo is what ALIVE records told about one node.
type PeerInfo struct {
	ID       peer.ID
	HTTP     string // API base URL, "" if none announced
	P2P      ma.Multiaddr
	IPFS     string
	Version  string
	LastSeen time.Time
}

// peerTable keeps the latest ALIVE record of each node.
type peerTable struct {
	mu    sync.Mutex
	peers map[peer.ID]*PeerInfo
}

func (t *peerTable) record(from peer.ID, a Alive, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.peers == nil {
		t.peers = map[peer.ID]*PeerInfo{}
	}
	p := t.peers[from]
	if p == nil {
		p = &PeerInfo{ID: from}
		t.peers[from] = p
	}
	switch a.PeerType {
	case PeerTypeHTTP:
		p.HTTP = a.Address
	case PeerTypeP2P:
		p.P2P, _ = ma.NewMultiaddr(a.Address)
	case PeerTypeIPFS:
		p.IPFS = a.Address
	}
	p.Version = a.Version
	p.LastSeen = now
}

// list returns the peers seen since cutoff, by ID.
func (t *peerTable) list(cutoff time.Time) []PeerInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]PeerInfo, 0, len(t.peers))
	for id, p := range t.peers {
		if p.LastSeen.Before(cutoff) {
			delete(t.peers, id)
			continue
		}
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
