package network

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// systemdResolvConf lists the real upstreams when /etc/resolv.conf points
// at the local stub (127.0.0.53).
const systemdResolvConf = "/run/systemd/resolve/resolv.conf"

// removeNSFile unmounts a namespace file (if mounted) and deletes it.
func removeNSFile(path string) error {
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil &&
		!errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns file: %w", err)
	}
	return nil
}

// ifNameOK accepts what the kernel accepts as an interface name, minus
// characters that would make log lines and nft listings ambiguous.
func ifNameOK(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/:\"'\\ \t\r\n*#")
}

// defaultRouteIface reads the kernel IPv4 routing table (/proc/net/route
// format) and returns the interface of the default route with the lowest metric.
func defaultRouteIface(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoUplink, err)
	}
	defer f.Close()
	return parseDefaultRoute(f)
}

func parseDefaultRoute(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	best, bestMetric := "", uint64(0)
	first := true
	for sc.Scan() {
		if first { // header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		flags, err1 := strconv.ParseUint(f[3], 16, 32)
		metric, err2 := strconv.ParseUint(f[6], 10, 32)
		if err1 != nil || err2 != nil || f[1] != "00000000" || f[7] != "00000000" || flags&1 == 0 { // RTF_UP
			continue
		}
		if best == "" || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%w: read routes: %w", ErrNoUplink, err)
	}
	if best == "" {
		return "", fmt.Errorf("%w: no default route; set the uplink explicitly", ErrNoUplink)
	}
	return best, nil
}

// hostDNS picks the resolvers a guest can use: the host's IPv4 nameservers
// that are not loopback, not the host's own addresses (the firewall hides the
// host from guests) and not in the pool; the systemd-resolved upstreams when
// the host only uses the local stub; FallbackDNS otherwise.
func hostDNS(resolvConf string, pool netip.Prefix, log *slog.Logger) []netip.Addr {
	local := localAddrs()
	for _, path := range []string{resolvConf, systemdResolvConf} {
		b, err := os.ReadFile(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				log.Warn("read resolv.conf", "path", path, "err", err)
			}
			continue
		}
		if dns := usableNameservers(string(b), pool, local); len(dns) > 0 {
			return dns
		}
	}
	return append([]netip.Addr(nil), FallbackDNS...)
}

func usableNameservers(resolvConf string, pool netip.Prefix, local map[netip.Addr]bool) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for line := range strings.Lines(resolvConf) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		a = a.Unmap()
		if !a.Is4() || a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
			pool.Contains(a) || local[a] || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out
}

func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap()] = true
		}
	}
	return out
}
