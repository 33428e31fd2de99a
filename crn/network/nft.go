package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	ipForward = "/proc/sys/net/ipv4/ip_forward"
	setName   = "guests"
	setID     = 1  // batch-local; set explicitly so the library's global counter is not used
	ifNameLen = 16 // IFNAMSIZ: meta iifname/oifname load this many bytes

	reg1   = unix.NFT_REG_1    // 16-byte register
	reg32a = unix.NFT_REG32_00 // 4-byte registers: a concatenation ifname (16) . ipv4 (4)
	reg32b = unix.NFT_REG32_00 + ifNameLen/4
)

// nftConn opens a netfilter netlink connection whose exchanges give up after
// deadline(ctx).
func nftConn(ctx context.Context) (*nftables.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	until := time.Now().Add(deadline(ctx))
	c, err := nftables.New(nftables.WithSockOptions(func(nc *mdnetlink.Conn) error {
		return nc.SetDeadline(until)
	}))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

func (m *Manager) table() *nftables.Table {
	return &nftables.Table{Name: m.cfg.Table, Family: nftables.TableFamilyINet}
}

func guestSet(t *nftables.Table) (*nftables.Set, error) {
	kt, err := nftables.ConcatSetType(nftables.TypeIFName, nftables.TypeIPAddr)
	if err != nil {
		return nil, fmt.Errorf("set type: %w", err)
	}
	return &nftables.Set{Table: t, Name: setName, ID: setID, KeyType: kt}, nil
}

// element is the anti-spoofing set key of n: ifname (NUL-padded) . guest IPv4.
func element(n *Net) nftables.SetElement {
	ip := n.GuestIP.As4()
	return nftables.SetElement{Key: append(ifName(n.Interface), ip[:]...)}
}

func ifName(s string) []byte {
	b := make([]byte, ifNameLen)
	copy(b, s)
	return b
}

// queueRuleset queues our whole table on c, replacing any previous one
// atomically when c is flushed. Only the table's own chains are touched;
// other tables (docker, the operator's firewall) still see every packet and
// may drop it too.
//
//   - input: from our links only replies to host-initiated traffic; a program
//     cannot open a connection to any host address or port.
//   - forward: our link→uplink allowed (new and established), replies back;
//     any other new flow from or to our links (other executions, other host
//     interfaces) dropped; IPv6 from our links dropped (guests are
//     IPv4-only); source addresses must match the link's guest
//     (anti-spoofing set of ifname . ipv4).
//   - postrouting: pool → uplink masqueraded.
//
// In nft syntax, with "alvm*" the interface wildcard:
//
//	input:   iifname "alvm*" ct state established,related accept
//	         iifname "alvm*" drop
//	forward: iifname "alvm*" meta nfproto ipv6 drop
//	         iifname "alvm*" meta nfproto ipv4 iifname . ip saddr != @guests drop
//	         iifname "alvm*" oifname "<uplink>" accept
//	         iifname "alvm*" drop
//	         oifname "alvm*" ct state established,related accept
//	         oifname "alvm*" drop
//	postrouting (nat): meta nfproto ipv4 ip saddr <pool> oifname "<uplink>" masquerade
func (m *Manager) queueRuleset(c *nftables.Conn, nets []*Net) error {
	t := m.table()
	// add+delete+add: the delete never fails, and the new table replaces
	// whatever was there (also a half-flushed one) in one transaction.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	set, err := guestSet(t)
	if err != nil {
		return err
	}
	els := make([]nftables.SetElement, len(nets))
	for i, n := range nets {
		els[i] = element(n)
	}
	sort.Slice(els, func(i, j int) bool { return bytes.Compare(els[i].Key, els[j].Key) < 0 })
	if err := c.AddSet(set, els); err != nil {
		return fmt.Errorf("nft set: %w", err)
	}
	accept := nftables.ChainPolicyAccept
	chain := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority, typ nftables.ChainType) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Hooknum: hook, Priority: prio, Type: typ, Policy: &accept})
	}
	rule := func(ch *nftables.Chain, parts ...[]expr.Any) {
		var e []expr.Any
		for _, p := range parts {
			e = append(e, p...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}
	in := ifPrefix(expr.MetaKeyIIFNAME, m.cfg.IfPrefix)
	out := ifPrefix(expr.MetaKeyOIFNAME, m.cfg.IfPrefix)
	uplink := ifExact(expr.MetaKeyOIFNAME, m.cfg.Uplink)
	accepted := verdict(expr.VerdictAccept)
	dropped := verdict(expr.VerdictDrop)

	input := chain("input", nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	rule(input, in, ctReply(), accepted)
	rule(input, in, dropped)

	fwd := chain("forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter)
	rule(fwd, in, nfproto(unix.NFPROTO_IPV6), dropped)
	rule(fwd, in, nfproto(unix.NFPROTO_IPV4), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: reg32a},
		&expr.Payload{DestRegister: reg32b, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}, // ip saddr
		&expr.Lookup{SourceRegister: reg32a, SetName: set.Name, SetID: set.ID, Invert: true},
	}, dropped)
	rule(fwd, in, uplink, accepted)
	rule(fwd, in, dropped)
	rule(fwd, out, ctReply(), accepted)
	rule(fwd, out, dropped)

	post := chain("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT)
	pool := m.cfg.Pool.Addr().As4()
	mask := ipv4Mask(m.cfg.Pool.Bits())
	rule(post, nfproto(unix.NFPROTO_IPV4), []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: pool[:]},
	}, uplink, []expr.Any{&expr.Masq{}})
	return nil
}

// ifPrefix matches interfaces whose name starts with prefix (nft "prefix*"):
// only the first len(prefix) bytes of the register are compared.
func ifPrefix(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte(prefix)},
	}
}

func ifExact(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: ifName(name)},
	}
}

// ctReply matches ct state established,related.
func ctReply() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}
}

func nfproto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{p}},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func ipv4Mask(bits int) []byte {
	v := ^uint32(0) << (32 - bits)
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// deleteTable removes our table whether or not it exists.
func (m *Manager) deleteTable(ctx context.Context) error {
	c, err := nftConn(ctx)
	if err != nil {
		return err
	}
	t := m.table()
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nft table %s: %w", m.cfg.Table, err)
	}
	return nil
}

// tableExists reports whether our table is loaded.
func (m *Manager) tableExists(ctx context.Context) (bool, error) {
	c, err := nftConn(ctx)
	if err != nil {
		return false, err
	}
	_, err = c.ListTableOfFamily(m.cfg.Table, nftables.TableFamilyINet)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("list nft table %s: %w", m.cfg.Table, err)
}

// addToSet admits n's guest address in the anti-spoofing set by reloading
// the whole table: a table flushed, emptied or deleted by someone else comes
// back complete, with every live execution's entry.
func (m *Manager) addToSet(ctx context.Context, n *Net) error {
	m.nftMu.Lock()
	defer m.nftMu.Unlock()
	n.inSet = true
	if err := m.loadLocked(ctx); err != nil {
		n.inSet = false
		return err
	}
	return nil
}

func (m *Manager) loadLocked(ctx context.Context) error {
	m.mu.Lock()
	var nets []*Net
	for _, x := range m.byIdx {
		if x.inSet {
			nets = append(nets, x)
		}
	}
	m.mu.Unlock()
	c, err := nftConn(ctx)
	if err != nil {
		return err
	}
	if err := m.queueRuleset(c, nets); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("load nft table %s: %w", m.cfg.Table, err)
	}
	return m.enableForwarding()
}

// removeFromSet drops n's entry; a missing table or entry is not an error.
func (m *Manager) removeFromSet(ctx context.Context, n *Net) error {
	m.nftMu.Lock()
	defer m.nftMu.Unlock()
	if !n.inSet {
		return nil
	}
	c, err := nftConn(ctx)
	if err != nil {
		return err
	}
	set, err := guestSet(m.table())
	if err != nil {
		return err
	}
	el := []nftables.SetElement{element(n)}
	// add-then-delete so a missing element is not an error.
	if err := c.SetAddElements(set, el); err != nil {
		return fmt.Errorf("nft set element: %w", err)
	}
	if err := c.SetDeleteElements(set, el); err != nil {
		return fmt.Errorf("nft set element: %w", err)
	}
	if err := c.Flush(); err != nil {
		ok, lerr := m.tableExists(ctx)
		if lerr == nil && !ok {
			n.inSet = false // the table is gone: nothing left to remove
			return nil
		}
		return fmt.Errorf("remove %s from nft set: %w", n.GuestIP, err)
	}
	n.inSet = false
	return nil
}

func (m *Manager) enableForwarding() error {
	cur, err := os.ReadFile(ipForward)
	if err != nil {
		return fmt.Errorf("read ip_forward: %w", err)
	}
	if string(bytes.TrimSpace(cur)) == "1" {
		return nil
	}
	if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable ip_forward: %w", err)
	}
	m.log.Info("enabled net.ipv4.ip_forward")
	return nil
}
