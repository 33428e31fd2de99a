// Package network gives sandboxed program executions their own network: a
// network namespace joined by the container, wired to the host by a veth pair,
// NATed out of the uplink and firewalled (nftables table inet aleph_net) so a
// program reaches the internet but neither the host nor other executions.
//
// The address pool is split into /30s, one per execution: a veth is a
// point-to-point link with exactly two ends (host .1, guest .2), and /30 is
// the smallest conventional subnet holding two hosts, so the default
// 172.16.0.0/12 serves 262144 executions without the 16x waste of a /24
// (upstream aleph-vm) or the 2x of a /29.
//
// It drives iproute2 (ip), nftables (nft), util-linux (unshare, nsenter) rather
// than netlink libraries.
package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
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
	ErrInUse     = errors.New("execution already has a network")
	ErrExhausted = errors.New("address pool exhausted")
	ErrNoUplink  = errors.New("no uplink interface")
	ErrBusy      = errors.New("networks still prepared")
	ErrMissing   = errors.New("required tool not found")
)

// Defaults.
const (
	DefaultTable    = "aleph_net"
	DefaultIfPrefix = "alvm"
	subnetBits      = 30
	cmdTimeout      = 15 * time.Second
)

var (
	// DefaultPool is the private range executions are numbered from.
	DefaultPool = netip.MustParsePrefix("172.16.0.0/12")
	// FallbackDNS is used when the host has no usable resolver.
	FallbackDNS = []netip.Addr{netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("1.1.1.1")}
)

// Config configures a Manager. Only StateDir is required.
type Config struct {
	// StateDir holds the network namespace files (StateDir/<id>). Everything
	// in it belongs to the Manager: Cleanup empties it.
	StateDir string
	// Pool is the IPv4 range split in /30s (default 172.16.0.0/12).
	Pool netip.Prefix
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
	// IfPrefix names the host-side veths: IfPrefix + index. No other
	// interface on the host may start with it.
	IfPrefix string
	Logger   *slog.Logger
}

// Manager allocates and tears down execution networks. Safe for concurrent use.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	dns    []netip.Addr
	mtu    int
	size   int // number of /30s in the pool
	tools  tools
	ruleIn string // host interface wildcard for nft, e.g. "alvm*"

	mu    sync.Mutex
	byID  map[string]*Net
	byIdx map[int]*Net
	next  int // round-robin hint: a freed /30 is not reused at once (stale conntrack)

	nftMu  sync.Mutex // serialises nft calls so full reloads see a consistent set
	loaded bool
}

type tools struct{ ip, nft, nsenter, unshare string }

var nameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// New checks the configuration and the host tools. It changes nothing on the
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
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:    cfg,
		log:    cfg.Logger,
		size:   1 << (subnetBits - cfg.Pool.Bits()),
		ruleIn: cfg.IfPrefix + "*",
		byID:   map[string]*Net{},
		byIdx:  map[int]*Net{},
	}
	if n := len(cfg.IfPrefix) + len(strconv.Itoa(m.size-1)); n > 15 {
		return nil, fmt.Errorf("%w: interface prefix %q too long for a pool of %d (names reach %d chars, max 15)",
			ErrBadConfig, cfg.IfPrefix, m.size, n)
	}
	var err error
	for _, t := range []struct {
		dst  *string
		name string
	}{{&m.tools.ip, "ip"}, {&m.tools.nft, "nft"}, {&m.tools.nsenter, "nsenter"}, {&m.tools.unshare, "unshare"}} {
		if *t.dst, err = exec.LookPath(t.name); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMissing, t.name, err)
		}
	}
	if m.cfg.Uplink == "" {
		if m.cfg.Uplink, err = defaultRouteIface("/proc/net/route"); err != nil {
			return nil, err
		}
	} else if !ifNameOK(m.cfg.Uplink) {
		return nil, fmt.Errorf("%w: uplink %q is not an interface name", ErrBadConfig, m.cfg.Uplink)
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
	case strings.ContainsAny(cfg.StateDir, " \t\r\n\"'\\#"):
		// The path goes into an `ip -batch` line.
		return fmt.Errorf("%w: state dir %q has whitespace, quotes or #", ErrBadConfig, cfg.StateDir)
	case !cfg.Pool.Addr().Is4():
		return fmt.Errorf("%w: pool %s is not IPv4", ErrBadConfig, cfg.Pool)
	case cfg.Pool.Bits() > subnetBits || cfg.Pool.Bits() < 8:
		return fmt.Errorf("%w: pool %s must be between /8 and /%d", ErrBadConfig, cfg.Pool, subnetBits)
	case !nameRE.MatchString(cfg.Table) || len(cfg.Table) > 64:
		return fmt.Errorf("%w: nft table name %q", ErrBadConfig, cfg.Table)
	case !nameRE.MatchString(cfg.IfPrefix):
		return fmt.Errorf("%w: interface prefix %q", ErrBadConfig, cfg.IfPrefix)
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

// Net is one execution's network. The container joins NSPath, where eth0
// has GuestIP/Prefix and a default route via Gateway.
type Net struct {
	ID        string
	NSPath    string       // bind-mounted network namespace file
	Interface string       // host side of the veth
	Prefix    netip.Prefix // the execution's /30
	HostIP    netip.Addr   // host side, .1
	GuestIP   netip.Addr   // eth0 in the namespace, .2
	Gateway   netip.Addr   // = HostIP
	DNS       []netip.Addr
	MTU       int

	m     *Manager
	idx   int
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

// Prepare creates the network of execution id. On error nothing is left
// behind (unless the undo itself failed, which the error says).
func (m *Manager) Prepare(ctx context.Context, id string) (*Net, error) {
	if !idRE.MatchString(id) {
		return nil, fmt.Errorf("%w: %q (want 1-200 of [A-Za-z0-9._-])", ErrBadID, id)
	}
	n, err := m.reserve(id)
	if err != nil {
		return nil, err
	}
	if err := m.setup(ctx, n); err != nil {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmdTimeout)
		defer cancel()
		if uerr := n.Release(uctx); uerr != nil {
			m.log.Error("undo failed network", "id", id, "iface", n.Interface, "err", uerr)
			return nil, fmt.Errorf("prepare network %s: %w (undo: %w)", id, err, uerr)
		}
		return nil, fmt.Errorf("prepare network %s: %w", id, err)
	}
	m.log.Debug("network prepared", "id", id, "iface", n.Interface, "guest", n.GuestIP)
	return n, nil
}

func (m *Manager) reserve(id string) (*Net, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id]; ok {
		return nil, fmt.Errorf("%w: %s", ErrInUse, id)
	}
	idx := -1
	for i := range m.size {
		c := (m.next + i) % m.size
		if _, ok := m.byIdx[c]; !ok {
			idx = c
			break
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: %s has %d /30s, all in use", ErrExhausted, m.cfg.Pool, m.size)
	}
	m.next = (idx + 1) % m.size
	sub := subnet(m.cfg.Pool, idx)
	host := sub.Addr().Next()
	n := &Net{
		ID:        id,
		NSPath:    filepath.Join(m.cfg.StateDir, id),
		Interface: m.cfg.IfPrefix + strconv.Itoa(idx),
		Prefix:    sub,
		HostIP:    host,
		GuestIP:   host.Next(),
		Gateway:   host,
		DNS:       append([]netip.Addr(nil), m.dns...),
		MTU:       m.mtu,
		m:         m,
		idx:       idx,
	}
	m.byID[id] = n
	m.byIdx[idx] = n
	return n, nil
}

// subnet is the idx-th /30 of pool.
func subnet(pool netip.Prefix, idx int) netip.Prefix {
	b := pool.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(idx) << (32 - subnetBits)
	a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(a, subnetBits)
}

// setup builds the net; the firewall comes first so the veth is never
// up unprotected.
func (m *Manager) setup(ctx context.Context, n *Net) error {
	if err := m.addToSet(ctx, n); err != nil {
		return err
	}
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// A file left by a previous run with the same id is ours to recycle.
	if err := removeNSFile(n.NSPath); err != nil {
		return err
	}
	f, err := os.OpenFile(n.NSPath, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("netns file: %w", err)
	}
	f.Close()
	if err := m.run(ctx, "", m.tools.unshare, "--net="+n.NSPath, "true"); err != nil {
		return err
	}
	mtu := strconv.Itoa(n.MTU)
	hostSide := fmt.Sprintf("link add %[1]s mtu %[2]s type veth peer name eth0 mtu %[2]s netns %[3]s\n"+
		"link set dev %[1]s addrgenmode none\n"+
		"addr add %[4]s/%[5]d dev %[1]s\n"+
		"link set dev %[1]s up\n", n.Interface, mtu, n.NSPath, n.HostIP, subnetBits)
	if err := m.run(ctx, hostSide, m.tools.ip, "-batch", "-"); err != nil {
		return err
	}
	guestSide := fmt.Sprintf("link set dev lo up\n"+
		"link set dev eth0 addrgenmode none\n"+
		"addr add %s/%d dev eth0\n"+
		"link set dev eth0 up\n"+
		"route add default via %s dev eth0\n", n.GuestIP, subnetBits, n.HostIP)
	return m.run(ctx, guestSide, m.tools.nsenter, "--net="+n.NSPath, m.tools.ip, "-batch", "-")
}

// Release removes the veth, the namespace file and the firewall entry. It is
// idempotent; after an error it can be called again.
func (n *Net) Release(ctx context.Context) error {
	n.relMu.Lock()
	defer n.relMu.Unlock()
	if n.released {
		return nil
	}
	m := n.m
	var errs []error
	if err := m.run(ctx, "", m.tools.ip, "link", "del", "dev", n.Interface); err != nil {
		if _, lerr := net.InterfaceByName(n.Interface); lerr == nil {
			errs = append(errs, err)
		}
	}
	if err := removeNSFile(n.NSPath); err != nil {
		errs = append(errs, err)
	}
	if err := m.removeFromSet(ctx, n); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("release network %s: %w", n.ID, errors.Join(errs...))
	}
	n.released = true
	m.mu.Lock()
	delete(m.byID, n.ID)
	delete(m.byIdx, n.idx)
	m.mu.Unlock()
	m.log.Debug("network released", "id", n.ID, "iface", n.Interface)
	return nil
}

// Cleanup removes what a previous run left: our veths, namespace files and
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
	ifs, err := net.Interfaces()
	if err != nil {
		errs = append(errs, fmt.Errorf("list interfaces: %w", err))
	}
	for _, i := range ifs {
		if !m.ours(i.Name) {
			continue
		}
		if err := m.run(ctx, "", m.tools.ip, "link", "del", "dev", i.Name); err != nil {
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
	err = m.run(ctx, m.deleteTable(), m.tools.nft, "-f", "-")
	m.loaded = false
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

// ours reports whether name is one of our host-side veths.
func (m *Manager) ours(name string) bool {
	rest, ok := strings.CutPrefix(name, m.cfg.IfPrefix)
	if !ok || rest == "" {
		return false
	}
	_, err := strconv.ParseUint(rest, 10, 32)
	return err == nil
}

// CmdError is a failed external command.
type CmdError struct {
	Cmd    string
	Input  string // what was fed on stdin, if anything
	Stderr string
	Err    error
}

func (e *CmdError) Error() string {
	s := fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	if e.Input != "" {
		s += " (input: " + strings.ReplaceAll(strings.TrimSpace(e.Input), "\n", "; ") + ")"
	}
	return s
}

func (e *CmdError) Unwrap() error { return e.Err }

func (m *Manager) run(ctx context.Context, stdin, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return &CmdError{
			Cmd:    strings.Join(append([]string{filepath.Base(name)}, args...), " "),
			Input:  stdin,
			Stderr: strings.TrimSpace(stderr.String()),
			Err:    err,
		}
	}
	return nil
}
