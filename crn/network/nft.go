package network

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
)

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// ruleset is our whole table, replacing any previous one atomically. Only
// the table's own chains are touched; other tables (docker, the operator's
// firewall) still see every packet and may drop it too.
//
//   - input: from the veths only replies to host-initiated traffic; a program
//     cannot open a connection to any host address or port.
//   - forward: veth→uplink allowed (new and established), replies back; any
//     other new flow from or to a veth (other executions, other host
//     interfaces) dropped; IPv6 from veths dropped (guests are IPv4-only);
//     source addresses must match the veth's guest (anti-spoofing set).
//   - postrouting: pool → uplink masqueraded.
func (m *Manager) ruleset(nets []*Net) string {
	var b strings.Builder
	t := m.cfg.Table
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", t, t)
	fmt.Fprintf(&b, "table inet %s {\n", t)
	b.WriteString("\tset guests {\n\t\ttype ifname . ipv4_addr\n")
	if len(nets) > 0 {
		els := make([]string, len(nets))
		for i, n := range nets {
			els[i] = element(n)
		}
		sort.Strings(els)
		fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(els, ", "))
	}
	b.WriteString("\t}\n")
	fmt.Fprintf(&b, `	chain input {
		type filter hook input priority filter; policy accept;
		iifname "%[1]s" ct state established,related accept
		iifname "%[1]s" drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "%[1]s" meta nfproto ipv6 drop
		iifname "%[1]s" iifname . ip saddr != @guests drop
		iifname "%[1]s" oifname "%[2]s" accept
		iifname "%[1]s" drop
		oifname "%[1]s" ct state established,related accept
		oifname "%[1]s" drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[3]s oifname "%[2]s" masquerade
	}
}
`, m.ruleIn, m.cfg.Uplink, m.cfg.Pool)
	return b.String()
}

func element(n *Net) string { return fmt.Sprintf("%q . %s", n.Interface, n.GuestIP) }

// deleteTable removes our table whether or not it exists.
func (m *Manager) deleteTable() string {
	return fmt.Sprintf("table inet %[1]s\ndelete table inet %[1]s\n", m.cfg.Table)
}

// addToSet admits n's guest address in the anti-spoofing set, loading the
// whole ruleset first if it is not loaded yet or has vanished (flushed by
// someone else): the reload brings back every live execution's entry.
func (m *Manager) addToSet(ctx context.Context, n *Net) error {
	m.nftMu.Lock()
	defer m.nftMu.Unlock()
	n.inSet = true
	if m.loaded {
		add := fmt.Sprintf("add element inet %s guests { %s }\n", m.cfg.Table, element(n))
		err := m.run(ctx, add, m.tools.nft, "-f", "-")
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			n.inSet = false
			return err
		}
		m.log.Warn("nft table missing or broken, reloading", "table", m.cfg.Table, "err", err)
	}
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
	if err := m.run(ctx, m.ruleset(nets), m.tools.nft, "-f", "-"); err != nil {
		m.loaded = false
		return err
	}
	m.loaded = true
	return m.enableForwarding()
}

// removeFromSet drops n's entry; a missing table or entry is not an error.
func (m *Manager) removeFromSet(ctx context.Context, n *Net) error {
	m.nftMu.Lock()
	defer m.nftMu.Unlock()
	if !n.inSet || !m.loaded {
		n.inSet = false
		return nil
	}
	e := element(n)
	// add-then-delete so a missing element is not an error.
	del := fmt.Sprintf("add element inet %[1]s guests { %[2]s }\ndelete element inet %[1]s guests { %[2]s }\n", m.cfg.Table, e)
	if err := m.run(ctx, del, m.tools.nft, "-f", "-"); err != nil {
		// The table is gone: nothing left to remove.
		if lerr := m.run(ctx, "", m.tools.nft, "list", "table", "inet", m.cfg.Table); lerr != nil {
			m.loaded = false
			n.inSet = false
			return nil
		}
		return err
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
