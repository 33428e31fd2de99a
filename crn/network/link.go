package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	addrGenModeNone = 1 // IN6_ADDR_GEN_MODE_NONE: no IPv6 link-local on our links
	tunDevice       = "/dev/net/tun"
	dumpRetries     = 5 // a dump interrupted by a concurrent change is redone
)

// routeHandle is a netlink route socket in the current network namespace
// whose calls give up after deadline(ctx).
func routeHandle(ctx context.Context) (*netlink.Handle, error) {
	return routeHandleAt(ctx, netns.None())
}

// routeHandleAt is routeHandle in namespace ns (netns.None(): the current one).
func routeHandleAt(ctx context.Context, ns netns.NsHandle) (*netlink.Handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := h.SetSocketTimeout(deadline(ctx)); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink timeout: %w", err)
	}
	return h, nil
}

// newNetNS creates a network namespace and bind-mounts it on path, which
// must not exist. The namespace lives until path is unmounted and no process
// is in it.
func newNetNS(path string) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("netns file: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		// unshare changes this thread only; it is locked until its original
		// namespace is back, and dies with the goroutine if that fails.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		merr := unix.Mount(src, path, "none", unix.MS_BIND, "")
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("restore thread netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		if merr != nil {
			merr = fmt.Errorf("bind-mount netns on %s: %w", path, merr)
		}
		errc <- merr
	}()
	return <-errc
}

// setupNetns creates the namespace, the veth pair and configures both ends.
func (m *Manager) setupNetns(ctx context.Context, n *Net) error {
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// A file left by a previous run with the same id is ours to recycle.
	if err := removeNSFile(n.NSPath); err != nil {
		return err
	}
	if err := newNetNS(n.NSPath); err != nil {
		return err
	}
	ns, err := netns.GetFromPath(n.NSPath)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer ns.Close()
	h, err := routeHandle(ctx)
	if err != nil {
		return err
	}
	defer h.Close()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: n.Interface, MTU: n.MTU},
		PeerName:         "eth0",
		PeerMTU:          uint32(n.MTU),
		PeerHardwareAddr: n.GuestMAC,
		PeerNamespace:    netlink.NsFd(int(ns)),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", n.Interface, err)
	}
	host, err := h.LinkByName(n.Interface)
	if err != nil {
		return fmt.Errorf("veth %s: %w", n.Interface, err)
	}
	if err := configureHostSide(h, host, n); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := routeHandleAt(ctx, ns)
	if err != nil {
		return err
	}
	defer in.Close()
	lo, err := in.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns lo: %w", err)
	}
	if err := in.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns lo up: %w", err)
	}
	eth, err := in.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("netns eth0: %w", err)
	}
	if err := setAddrGenNone(in, eth); err != nil {
		return err
	}
	if err := in.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(n.GuestIP, n.Prefix.Bits())}); err != nil {
		return fmt.Errorf("netns eth0 address: %w", err)
	}
	if err := in.LinkSetUp(eth); err != nil {
		return fmt.Errorf("netns eth0 up: %w", err)
	}
	gw := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.HostIP.AsSlice(), Family: netlink.FAMILY_V4}
	if err := in.RouteAdd(gw); err != nil {
		return fmt.Errorf("netns default route: %w", err)
	}
	return nil
}

// setupTap opens a non-persistent tap and configures its host side.
func (m *Manager) setupTap(ctx context.Context, n *Net) error {
	f, err := openTap(n.Interface)
	if err != nil {
		return err
	}
	n.Tap = f
	h, err := routeHandle(ctx)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(n.Interface)
	if err != nil {
		return fmt.Errorf("tap %s: %w", n.Interface, err)
	}
	if err := h.LinkSetMTU(link, n.MTU); err != nil {
		return fmt.Errorf("tap %s mtu: %w", n.Interface, err)
	}
	return configureHostSide(h, link, n)
}

// openTap creates tap name, alive as long as the returned file (or a copy
// of it, e.g. in qemu) is open. The file is non-blocking and registered with
// the runtime poller once the tap is attached, so reads honour deadlines.
func openTap(name string) (*os.File, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, fmt.Errorf("tap name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	fd, err := unix.Open(tunDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: %s: %w", ErrMissing, tunDevice, err)
		}
		return nil, fmt.Errorf("open %s: %w", tunDevice, err)
	}
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create tap %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), tunDevice), nil
}

// configureHostSide gives the host end .1, brings it up and pins the
// guest's MAC: without the permanent entry the first packets to the guest
// wait for ARP retries while its NIC comes up.
func configureHostSide(h *netlink.Handle, link netlink.Link, n *Net) error {
	if err := setAddrGenNone(h, link); err != nil {
		return err
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(n.HostIP, n.Prefix.Bits())}); err != nil {
		return fmt.Errorf("%s address: %w", n.Interface, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", n.Interface, err)
	}
	neigh := &netlink.Neigh{
		LinkIndex:    link.Attrs().Index,
		Family:       netlink.FAMILY_V4,
		State:        netlink.NUD_PERMANENT,
		IP:           n.GuestIP.AsSlice(),
		HardwareAddr: n.GuestMAC,
	}
	if err := h.NeighSet(neigh); err != nil {
		return fmt.Errorf("%s guest neighbour: %w", n.Interface, err)
	}
	return nil
}

// setAddrGenNone keeps the kernel from giving link an IPv6 link-local
// address: guests are IPv4-only. A host without IPv6 needs nothing.
func setAddrGenNone(h *netlink.Handle, link netlink.Link) error {
	err := h.LinkSetIP6AddrGenMode(link, addrGenModeNone)
	if err != nil && !errors.Is(err, unix.EAFNOSUPPORT) {
		return fmt.Errorf("%s addrgenmode: %w", link.Attrs().Name, err)
	}
	return nil
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}
}

// deleteLink deletes link name; a missing link is not an error.
func deleteLink(ctx context.Context, name string) error {
	h, err := routeHandle(ctx)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// linkNames lists the interfaces of the current namespace.
func linkNames(ctx context.Context) ([]string, error) {
	h, err := routeHandle(ctx)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var links []netlink.Link
	for range dumpRetries {
		if links, err = h.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := make([]string, len(links))
	for i, l := range links {
		names[i] = l.Attrs().Name
	}
	return names, nil
}

// hostPrefixes lists the IPv4 prefixes overlapping pool that the host
// already uses: its addresses' subnets and the destinations of its routes in
// every table (default routes excluded: they overlap everything).
func hostPrefixes(ctx context.Context, pool netip.Prefix) ([]netip.Prefix, error) {
	h, err := routeHandle(ctx)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []netip.Prefix
	add := func(n *net.IPNet) {
		if n == nil {
			return
		}
		a, ok := netip.AddrFromSlice(n.IP)
		ones, bits := n.Mask.Size()
		if !ok || bits != 32 || ones == 0 {
			return
		}
		if p := netip.PrefixFrom(a.Unmap(), ones).Masked(); p.Overlaps(pool) {
			out = append(out, p)
		}
	}
	var addrs []netlink.Addr
	for range dumpRetries {
		if addrs, err = h.AddrList(nil, netlink.FAMILY_V4); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		add(a.IPNet)
	}
	// Iterated, not listed: a router may hold a full routing table.
	all := &netlink.Route{Table: unix.RT_TABLE_UNSPEC}
	addrsOnly := len(out)
	for range dumpRetries {
		out = out[:addrsOnly] // drop a partial dump
		err = h.RouteListFilteredIter(netlink.FAMILY_V4, all, netlink.RT_FILTER_TABLE, func(r netlink.Route) bool {
			add(r.Dst)
			return true
		})
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return out, nil
}

// overlaps reports whether p shares an address with any of taken.
func overlaps(p netip.Prefix, taken []netip.Prefix) bool {
	for _, t := range taken {
		if p.Overlaps(t) {
			return true
		}
	}
	return false
}
