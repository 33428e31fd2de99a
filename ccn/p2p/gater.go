package p2p

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater admits only allowed peers (everyone when the allow-list is empty)
// that are not blocked, in both directions, once the secure handshake has
// proven their identity.
type gater struct {
	allow map[peer.ID]bool // fixed after New

	mu      sync.RWMutex
	blocked map[peer.ID]bool
}

func (g *gater) ok(p peer.ID) bool {
	if len(g.allow) > 0 && !g.allow[p] {
		return false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return !g.blocked[p]
}

func (g *gater) block(p peer.ID, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.blocked == nil {
		g.blocked = map[peer.ID]bool{}
	}
	if on {
		g.blocked[p] = true
	} else {
		delete(g.blocked, p)
	}
}

func (g *gater) InterceptPeerDial(p peer.ID) bool                 { return g.ok(p) }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.ok(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.ok(p)
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
