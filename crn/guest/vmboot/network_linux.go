package vmboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Interface is the guest's NIC (virtio-net, the only one).
const Interface = "eth0"

// defaultIPv4Bits is the prefix aleph-vm's guest appends to a bare ip.
const defaultIPv4Bits = 24

// NetConfig is the part of a configuration that sets up the NIC.
type NetConfig struct {
	IP          string // "a.b.c.d" (a /24) or "a.b.c.d/NN"; "" for no NIC
	Route       string // IPv4 gateway, optional
	IPv6        string // "addr/NN", optional
	IPv6Gateway string // optional
}

// NetConfigOf picks the network fields of a configuration.
func NetConfigOf(cfg *protocol.Configuration) NetConfig {
	return NetConfig{IP: cfg.IP, Route: cfg.Route, IPv6: cfg.IPv6, IPv6Gateway: cfg.IPv6Gateway}
}

type parsedNet struct {
	ip, ip6 netip.Prefix
	gw, gw6 netip.Addr
}

func (c NetConfig) parse() (parsedNet, error) {
	var p parsedNet
	var err error
	if c.IP != "" {
		s := c.IP
		if !strings.Contains(s, "/") {
			s = fmt.Sprintf("%s/%d", s, defaultIPv4Bits)
		}
		if p.ip, err = netip.ParsePrefix(s); err != nil || !p.ip.Addr().Is4() || p.ip.Bits() == 0 {
			return p, fmt.Errorf("%w: ip %q is not an IPv4 address", ErrBadNetwork, c.IP)
		}
	}
	if c.Route != "" {
		if p.gw, err = netip.ParseAddr(c.Route); err != nil || !p.gw.Is4() {
			return p, fmt.Errorf("%w: route %q is not an IPv4 address", ErrBadNetwork, c.Route)
		}
		if !p.ip.IsValid() || !p.ip.Masked().Contains(p.gw) {
			return p, fmt.Errorf("%w: route %s is not in the network of ip %q", ErrBadNetwork, c.Route, c.IP)
		}
	}
	if c.IPv6 != "" {
		if p.ip6, err = netip.ParsePrefix(c.IPv6); err != nil || !p.ip6.Addr().Is6() || p.ip6.Addr().Is4In6() || p.ip6.Bits() == 0 {
			return p, fmt.Errorf("%w: ipv6 %q is not an IPv6 address with a prefix", ErrBadNetwork, c.IPv6)
		}
	}
	if c.IPv6Gateway != "" {
		if p.gw6, err = netip.ParseAddr(c.IPv6Gateway); err != nil || !p.gw6.Is6() || p.gw6.Is4In6() {
			return p, fmt.Errorf("%w: ipv6_gateway %q is not an IPv6 address", ErrBadNetwork, c.IPv6Gateway)
		}
		if !p.ip6.IsValid() || !p.ip6.Masked().Contains(p.gw6) {
			return p, fmt.Errorf("%w: ipv6_gateway %s is not in the network of ipv6 %q", ErrBadNetwork, c.IPv6Gateway, c.IPv6)
		}
	}
	return p, nil
}

// Network configures the links of one network namespace over netlink.
type Network struct {
	h  *netlink.Handle
	ns netns.NsHandle
}

// NewNetwork returns a Network for ns; netns.None() is the current one.
func NewNetwork(ns netns.NsHandle) (*Network, error) {
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE) // xfrm and netfilter may be modules
	}
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &Network{h: h, ns: ns}, nil
}

// Close releases the netlink handle.
func (n *Network) Close() { n.h.Close() }

// LoopbackUp brings lo up (the kernel gives it 127.0.0.1/8 and ::1).
func (n *Network) LoopbackUp() error {
	lo, err := n.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := n.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// Configure gives eth0 its addresses, brings it up and adds the default
// routes. With no ip and no ipv6 there is no NIC and nothing to do. eth0 is
// awaited (it appears after virtio_net probes); ctx bounds the wait.
func (n *Network) Configure(ctx context.Context, c NetConfig) error {
	p, err := c.parse()
	if err != nil {
		return err
	}
	if !p.ip.IsValid() && !p.ip6.IsValid() {
		return nil
	}
	link, err := n.WaitLink(ctx, Interface)
	if err != nil {
		return err
	}
	for _, a := range []netip.Prefix{p.ip, p.ip6} {
		if !a.IsValid() {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once; the host gave it
		}
		if err := n.h.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("%s: address %s: %w", Interface, a, err)
		}
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", Interface, err)
	}
	for _, gw := range []netip.Addr{p.gw, p.gw6} {
		if !gw.IsValid() {
			continue
		}
		bits := 32
		if gw.Is6() {
			bits = 128
		}
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice(),
			Dst: &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)}}
		if err := n.h.RouteReplace(r); err != nil {
			return fmt.Errorf("%s: default route via %s: %w", Interface, gw, err)
		}
	}
	return nil
}

// WaitLink returns the link called name, waiting for it to appear.
func (n *Network) WaitLink(ctx context.Context, name string) (netlink.Link, error) {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	errc := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		// Existing links arrive first, so a link present already is seen.
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	if n.ns.IsOpen() {
		opts.Namespace = &n.ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return nil, fmt.Errorf("watch links: %w", err)
	}
	defer func() {
		close(done)
		for range ch { // the receiver closes ch once the socket is closed
		}
	}()
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				return nil, fmt.Errorf("watch links: subscription ended")
			}
			if u.Link != nil && u.Link.Attrs().Name == name && u.Header.Type == unix.RTM_NEWLINK {
				return n.h.LinkByName(name)
			}
		case err := <-errc:
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				return nil, fmt.Errorf("watch links: %w", err)
			}
			// The list of existing links may be incomplete: look once.
			if l, err := n.h.LinkByName(name); err == nil {
				return l, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: interface %s did not appear: %w", ErrNotFound, name, ctx.Err())
		}
	}
}
