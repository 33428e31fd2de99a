// Package network gives program executions their own IPv4 network, NATed out
// of the host's uplink and firewalled (nftables table inet aleph_net) so a
// program reaches the internet but neither the host nor other executions.
//
// Address plan (the spec's, crn-compute.md §5.3): the pool (default
// 172.16.0.0/12) is cut in /24s and execution index i, aleph-vm's vm_id, gets
// the i-th one: host .1, guest .2. Indexes start at Config.FirstIndex (4, as
// aleph-vm's START_ID_INDEX), so the default pool serves 4092 executions. A
// whole /24 per execution keeps the numbering of aleph-vm (an index names the
// same subnet and interface on both) and leaves the guest the rest of its /24
// for later use. A /24 that overlaps an address or route already on the host
// (docker's 172.17.0.0/16 lives inside 172.16.0.0/12) is skipped.
//
// Two modes, chosen per Prepare; both name the host-side interface
// IfPrefix+index, so one nftables wildcard covers both:
//   - ModeNetns (sandboxes): a network namespace bind-mounted on a file,
//     wired to the host by a veth pair; eth0 inside is configured here.
//   - ModeTap (microVMs): a non-persistent tap in the host namespace whose
//     open file is handed to the hypervisor; the guest configures its own
//     eth0 with GuestMAC. The tap vanishes when its last file closes, so a
//     crashed node leaves none behind.
//
// Links, addresses and namespaces are driven with netlink and the firewall
// with nf_tables netlink messages: the package runs no external command.
package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors returned by the package; wrapped with context.
var (
	ErrBadConfig = errors.New("bad network config")
	ErrBadID     = errors.New("bad execution id")
	ErrBadMode   = errors.New("bad network mode")
	ErrInUse     = errors.New("execution already has a network")
	ErrExhausted = errors.New("address pool exhausted")
	ErrNoUplink  = errors.New("no uplink interface")
	ErrBusy      = errors.New("networks still prepared")
	ErrMissing   = errors.New("required kernel feature not available")
)

// Defaults.
const (
	DefaultTable      = "aleph_net"
	DefaultIfPrefix   = "alvm"
	DefaultFirstIndex = 4
	// GuestMAC is the guest's MAC address in both modes: locally
	// administered and the same for every execution (as aleph-vm), since
	// each one is alone on its own L2 segment.
	GuestMAC = "aa:fc:00:00:00:01"

	subnetBits = 24
	opTimeout  = 15 * time.Second // per netlink or nftables exchange
)

var (
	// DefaultPool is the private range executions are numbered from.
	DefaultPool = netip.MustParsePrefix("172.16.0.0/12")
	// FallbackDNS is used when the host has no usable resolver.
	FallbackDNS = []netip.Addr{netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("1.1.1.1")}
)

// Mode is how an execution is attached to the host.
type Mode int

const (
	// ModeNetns: network namespace file + veth pair (sandboxes).
	ModeNetns Mode = iota + 1
	// ModeTap: tap device whose file is handed to the hypervisor (microVMs).
	ModeTap
)

func (m Mode) String() string {
	switch m {
	case ModeNetns:
		return "netns"
	case ModeTap:
		return "tap"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Config configures a Manager. Only StateDir is required.
type Config struct {
	// StateDir holds the network namespace files (StateDir/<id>). Everything
	// in it belongs to the Manager: Cleanup empties it.
	StateDir string
	// Pool is the IPv4 range cut in /24s (default 172.16.0.0/12, /8 to /24).
	Pool netip.Prefix
	// FirstIndex is the first /24 of the pool handed out (default 4, aleph-vm's
	// START_ID_INDEX; 0 means the default).
	FirstIndex int
	// Uplink is the interface executions are NATed out of (default: the
	// interface of the default route).
	Uplink string
	// DNS overrides the resolvers handed to executions (default: the
	// non-loopback IPv4 nameservers of ResolvConf, else FallbackDNS).
	DNS []netip.Addr
	// ResolvConf is the host's resolver file (default /etc/resolv.conf).
	ResolvConf string
	// Table is the nftables table (family inet) owned by the Manager.
	Table string
	// IfPrefix names the host-side veths and taps: IfPrefix + index. No other
	// interface on the host may start with it.
	IfPrefix string
	Logger   *slog.Logger
}

// Manager allocates and tears down execution networks. Safe for concurrent use.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	dns  []netip.Addr
	mtu  int
	size int // number of /24s in the pool
	mac  net.HardwareAddr

	mu    sync.Mutex
	byID  map[string]*Net
	byIdx map[int]*Net
	next  int // round-robin hint: a freed /24 is not reused at once (stale conntrack)

	nftMu sync.Mutex // serialises nftables batches so reloads see a consistent set
}

var nameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// New checks the configuration and the uplink. It changes nothing on the
// host: rules are loaded on the first Prepare.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if cfg.IfPrefix == "" {
		cfg.IfPrefix = DefaultIfPrefix
	}
	if !cfg.Pool.IsValid() {
		cfg.Pool = DefaultPool
	}
	if cfg.FirstIndex == 0 {
		cfg.FirstIndex = DefaultFirstIndex
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(GuestMAC)
	if err != nil {
		return nil, fmt.Errorf("guest mac: %w", err)
	}
	m := &Manager{
		cfg:   cfg,
		log:   cfg.Logger,
		size:  1 << (subnetBits - cfg.Pool.Bits()),
		mac:   mac,
		byID:  map[string]*Net{},
		byIdx: map[int]*Net{},
		next:  cfg.FirstIndex,
	}
	if cfg.FirstIndex >= m.size {
		return nil, fmt.Errorf("%w: pool %s has %d /24s, first index %d leaves none",
			ErrBadConfig, cfg.Pool, m.size, cfg.FirstIndex)
	}
	if n := len(cfg.IfPrefix) + len(strconv.Itoa(m.size-1)); n > 15 {
		return nil, fmt.Errorf("%w: interface prefix %q too long for a pool of %d (names reach %d chars, max 15)",
			ErrBadConfig, cfg.IfPrefix, m.size, n)
	}
	if m.cfg.Uplink == "" {
		if m.cfg.Uplink, err = defaultRouteIface("/proc/net/route"); err != nil {
			return nil, err
		}
	} else if !ifNameOK(m.cfg.Uplink) {
		return nil, fmt.Errorf("%w: uplink %q is not an interface name", ErrBadConfig, m.cfg.Uplink)
	}
	if strings.HasPrefix(m.cfg.Uplink, cfg.IfPrefix) {
		// The firewall matches our interfaces by this prefix: the uplink's
		// own traffic would be dropped as an execution's.
		return nil, fmt.Errorf("%w: uplink %q starts with the interface prefix %q", ErrBadConfig, m.cfg.Uplink, cfg.IfPrefix)
	}
	up, err := net.InterfaceByName(m.cfg.Uplink)
	if err != nil {
		return nil, fmt.Errorf("%w: uplink %q: %w", ErrNoUplink, m.cfg.Uplink, err)
	}
	m.mtu = up.MTU
	m.dns = cfg.DNS
	if len(m.dns) == 0 {
		m.dns = hostDNS(cfg.ResolvConf, cfg.Pool, m.log)
	}
	return m, nil
}

func checkConfig(cfg *Config) error {
	switch {
	case cfg.StateDir == "":
		return fmt.Errorf("%w: no state dir", ErrBadConfig)
	case len(cfg.StateDir) > 1024:
		return fmt.Errorf("%w: state dir path longer than 1024 bytes", ErrBadConfig)
	case strings.ContainsRune(cfg.StateDir, 0):
		return fmt.Errorf("%w: state dir %q has a NUL byte", ErrBadConfig, cfg.StateDir)
	case !cfg.Pool.Addr().Is4():
		return fmt.Errorf("%w: pool %s is not IPv4", ErrBadConfig, cfg.Pool)
	case cfg.Pool.Bits() > subnetBits || cfg.Pool.Bits() < 8:
		return fmt.Errorf("%w: pool %s must be between /8 and /%d", ErrBadConfig, cfg.Pool, subnetBits)
	case cfg.FirstIndex < 0:
		return fmt.Errorf("%w: negative first index %d", ErrBadConfig, cfg.FirstIndex)
	case !nameRE.MatchString(cfg.Table) || len(cfg.Table) > 64:
		return fmt.Errorf("%w: nft table name %q", ErrBadConfig, cfg.Table)
	case !nameRE.MatchString(cfg.IfPrefix):
		return fmt.Errorf("%w: interface prefix %q", ErrBadConfig, cfg.IfPrefix)
	case len(cfg.DNS) > 16:
		return fmt.Errorf("%w: %d dns servers (max 16)", ErrBadConfig, len(cfg.DNS))
	}
	for _, a := range cfg.DNS {
		if !a.Is4() {
			return fmt.Errorf("%w: dns server %s is not IPv4", ErrBadConfig, a)
		}
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("%w: state dir: %w", ErrBadConfig, err)
	}
	cfg.StateDir = abs
	cfg.Pool = cfg.Pool.Masked()
	return nil
}

// Uplink is the interface executions are NATed out of.
func (m *Manager) Uplink() string { return m.cfg.Uplink }

// DNS is the resolver list handed to executions.
func (m *Manager) DNS() []netip.Addr { return append([]netip.Addr(nil), m.dns...) }

// Net is one execution's network.
//
// ModeNetns: the container joins NSPath, where eth0 has GuestIP/Prefix,
// GuestMAC and a default route via Gateway. ModeTap: Tap is the open tap
// (hand it to the hypervisor, e.g. qemu -netdev tap,fd=N); the guest gives
// its NIC GuestMAC and configures GuestIP/Prefix via Gateway itself.
type Net struct {
	ID        string
	Mode      Mode
	Index     int          // the /24's index in the pool (aleph-vm's vm_id)
	NSPath    string       // ModeNetns: bind-mounted network namespace file
	Interface string       // host side of the veth, or the tap
	Prefix    netip.Prefix // the execution's /24
	HostIP    netip.Addr   // host side, .1
	GuestIP   netip.Addr   // guest's eth0, .2
	Gateway   netip.Addr   // = HostIP
	DNS       []netip.Addr
	MTU       int
	GuestMAC  net.HardwareAddr
	Tap       *os.File // ModeTap: the tap; Release closes it

	m     *Manager
	inSet bool // guarded by m.nftMu: the anti-spoofing set holds this net

	relMu    sync.Mutex
	released bool
}

// ResolvConf renders DNS as an /etc/resolv.conf for the guest.
func (n *Net) ResolvConf() []byte {
	var b strings.Builder
	for _, a := range n.DNS {
		b.WriteString("nameserver " + a.String() + "\n")
	}
	return []byte(b.String())
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// Prepare creates the network of execution id in the given mode. On error
// nothing is left behind (unless the undo itself failed, which the error says).
func (m *Manager) Prepare(ctx context.Context, id string, mode Mode) (*Net, error) {
	if !idRE.MatchString(id) {
		return nil, fmt.Errorf("%w: %q (want 1-200 of [A-Za-z0-9._-])", ErrBadID, id)
	}
	if mode != ModeNetns && mode != ModeTap {
		return nil, fmt.Errorf("%w: %v", ErrBadMode, mode)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("prepare network %s: %w", id, err)
	}
	n, err := m.reserve(ctx, id, mode)
	if err != nil {
		return nil, err
	}
	if err := m.setup(ctx, n); err != nil {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		if uerr := n.Release(uctx); uerr != nil {
			m.log.Error("undo failed network", "id", id, "iface", n.Interface, "err", uerr)
			return nil, fmt.Errorf("prepare network %s: %w (undo: %w)", id, err, uerr)
		}
		return nil, fmt.Errorf("prepare network %s: %w", id, err)
	}
	m.log.Debug("network prepared", "id", id, "mode", mode, "iface", n.Interface, "guest", n.GuestIP)
	return n, nil
}

func (m *Manager) reserve(ctx context.Context, id string, mode Mode) (*Net, error) {
	taken, err := hostPrefixes(ctx, m.cfg.Pool)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id]; ok {
		return nil, fmt.Errorf("%w: %s", ErrInUse, id)
	}
	idx, skipped := -1, 0
	span := m.size - m.cfg.FirstIndex
	for i := range span {
		c := m.cfg.FirstIndex + (m.next-m.cfg.FirstIndex+i)%span
		if _, ok := m.byIdx[c]; ok {
			continue
		}
		if overlaps(subnet(m.cfg.Pool, c), taken) {
			skipped++
			continue
		}
		idx = c
		break
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: %s has %d usable /24s from index %d, %d in use, %d overlap the host's addresses or routes",
			ErrExhausted, m.cfg.Pool, span, m.cfg.FirstIndex, len(m.byIdx), skipped)
	}
	m.next = m.cfg.FirstIndex + (idx+1-m.cfg.FirstIndex)%span
	sub := subnet(m.cfg.Pool, idx)
	host := sub.Addr().Next()
	n := &Net{
		ID:        id,
		Mode:      mode,
		Index:     idx,
		Interface: m.cfg.IfPrefix + strconv.Itoa(idx),
		Prefix:    sub,
		HostIP:    host,
		GuestIP:   host.Next(),
		Gateway:   host,
		DNS:       append([]netip.Addr(nil), m.dns...),
		MTU:       m.mtu,
		GuestMAC:  append(net.HardwareAddr(nil), m.mac...),
		m:         m,
	}
	if mode == ModeNetns {
		n.NSPath = filepath.Join(m.cfg.StateDir, id)
	}
	m.byID[id] = n
	m.byIdx[idx] = n
	return n, nil
}

// subnet is the idx-th /24 of pool.
func subnet(pool netip.Prefix, idx int) netip.Prefix {
	b := pool.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(idx) << (32 - subnetBits)
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(a, subnetBits)
}

// setup builds the net; the firewall comes first so the link is never up
// unprotected.
func (m *Manager) setup(ctx context.Context, n *Net) error {
	if err := m.addToSet(ctx, n); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.Mode == ModeTap {
		return m.setupTap(ctx, n)
	}
	return m.setupNetns(ctx, n)
}

// Release removes the link, the namespace file or tap, and the firewall
// entry. It is idempotent; after an error it can be called again.
func (n *Net) Release(ctx context.Context) error {
	n.relMu.Lock()
	defer n.relMu.Unlock()
	if n.released {
		return nil
	}
	m := n.m
	var errs []error
	if n.Tap != nil {
		// The kernel deletes a non-persistent tap with its last file; the
		// hypervisor may still hold one, hence the delete below.
		if err := n.Tap.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("close tap: %w", err))
		}
	}
	if err := deleteLink(ctx, n.Interface); err != nil {
		errs = append(errs, err)
	}
	if n.NSPath != "" {
		if err := removeNSFile(n.NSPath); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.removeFromSet(ctx, n); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("release network %s: %w", n.ID, errors.Join(errs...))
	}
	n.released = true
	m.mu.Lock()
	if m.byID[n.ID] == n {
		delete(m.byID, n.ID)
		delete(m.byIdx, n.Index)
	}
	m.mu.Unlock()
	m.log.Debug("network released", "id", n.ID, "iface", n.Interface)
	return nil
}

// Cleanup removes what a previous run left: our links, namespace files and
// nft table. Call it at node start, before any Prepare.
func (m *Manager) Cleanup(ctx context.Context) error {
	m.mu.Lock()
	busy := len(m.byID)
	m.mu.Unlock()
	if busy > 0 {
		return fmt.Errorf("cleanup: %w: %d", ErrBusy, busy)
	}
	var errs []error
	links := 0
	names, err := linkNames(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range names {
		if !m.ours(name) {
			continue
		}
		if err := deleteLink(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		links++
	}
	files := 0
	ents, err := os.ReadDir(m.cfg.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("read state dir: %w", err))
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if err := removeNSFile(filepath.Join(m.cfg.StateDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		files++
	}
	m.nftMu.Lock()
	err = m.deleteTable(ctx)
	m.nftMu.Unlock()
	if err != nil {
		errs = append(errs, err)
	}
	m.log.Info("network cleanup", "links", links, "netns", files, "table", m.cfg.Table, "errors", len(errs))
	if len(errs) > 0 {
		return fmt.Errorf("network cleanup: %w", errors.Join(errs...))
	}
	return nil
}

// ours reports whether name is one of our host-side links.
func (m *Manager) ours(name string) bool {
	rest, ok := strings.CutPrefix(name, m.cfg.IfPrefix)
	if !ok || rest == "" {
		return false
	}
	_, err := strconv.ParseUint(rest, 10, 32)
	return err == nil
}

// deadline bounds one kernel exchange by ctx and opTimeout.
func deadline(ctx context.Context) time.Duration {
	d := opTimeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < d {
			d = left
		}
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}
