package network

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// The tests below stand in for a VM: they write the Ethernet frames a guest
// would send into Net.Tap and read what the host sends it, so the whole path
// (tap, neighbour entry, routing, nftables, NAT) is real without booting one.

const vnetHdrLen = 10 // struct virtio_net_hdr: IFF_VNET_HDR prefixes every frame

type frame struct {
	dstMAC    net.HardwareAddr
	etherType uint16
	proto     byte
	src, dst  netip.AddrPort
	payload   string
}

// udpFrame builds vnet header + Ethernet + IPv4 + UDP (checksum 0: none).
func udpFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.AddrPort, payload string) []byte {
	b := make([]byte, vnetHdrLen, vnetHdrLen+14+20+8+len(payload))
	b = append(b, dstMAC...)
	b = append(b, srcMAC...)
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8], ip[9] = 64, 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	b = append(b, ip...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = binary.BigEndian.AppendUint16(b, 0)
	return append(b, payload...)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// parseFrame decodes what readFrame got; non-IPv4 frames keep only the
// Ethernet fields.
func parseFrame(b []byte) (frame, bool) {
	if len(b) < vnetHdrLen+14 {
		return frame{}, false
	}
	b = b[vnetHdrLen:]
	f := frame{dstMAC: net.HardwareAddr(append([]byte(nil), b[:6]...)), etherType: binary.BigEndian.Uint16(b[12:])}
	ip := b[14:]
	if f.etherType != 0x0800 || len(ip) < 20 {
		return f, true
	}
	ihl := int(ip[0]&0xf) * 4
	f.proto = ip[9]
	src, _ := netip.AddrFromSlice(ip[12:16])
	dst, _ := netip.AddrFromSlice(ip[16:20])
	if f.proto != 17 || len(ip) < ihl+8 {
		f.src, f.dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
		return f, true
	}
	udp := ip[ihl:]
	f.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:]))
	f.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:]))
	f.payload = string(udp[8:])
	return f, true
}

// fakeGuest drives one tap as the guest would.
type fakeGuest struct {
	t       *testing.T
	n       *Net
	hostMAC net.HardwareAddr
}

func newFakeGuest(t *testing.T, n *Net) *fakeGuest {
	t.Helper()
	l, err := rootHandle(t).LinkByName(n.Interface)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeGuest{t: t, n: n, hostMAC: l.Attrs().HardwareAddr}
}

func (g *fakeGuest) send(src, dst netip.AddrPort, payload string) {
	g.t.Helper()
	if _, err := g.n.Tap.Write(udpFrame(g.hostMAC, g.n.GuestMAC, src, dst, payload)); err != nil {
		g.t.Fatalf("write to tap %s: %v", g.n.Interface, err)
	}
}

// expect reads frames from the tap until one matches within wait; it fails
// the test if none does, or if the host asked for the guest's MAC first.
func (g *fakeGuest) expect(wait time.Duration, what string, match func(frame) bool) frame {
	g.t.Helper()
	f, ok := g.next(wait, match)
	if !ok {
		g.t.Fatalf("tap %s: no frame with %s within %v", g.n.Interface, what, wait)
	}
	return f
}

// next returns the first matching frame within wait.
func (g *fakeGuest) next(wait time.Duration, match func(frame) bool) (frame, bool) {
	g.t.Helper()
	if err := g.n.Tap.SetReadDeadline(time.Now().Add(wait)); err != nil {
		g.t.Fatalf("tap deadline: %v", err)
	}
	buf := make([]byte, 65536+vnetHdrLen)
	for {
		k, err := g.n.Tap.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return frame{}, false
		}
		if err != nil {
			g.t.Fatalf("read tap %s: %v", g.n.Interface, err)
		}
		f, ok := parseFrame(buf[:k])
		if !ok {
			continue
		}
		if f.etherType == 0x0806 {
			g.t.Errorf("tap %s: host sent ARP despite the permanent neighbour entry", g.n.Interface)
		}
		if match(f) {
			return f, true
		}
	}
}

func TestTapWiring(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slotTap)
	a := mustPrepare(t, e.m, "vm-a", ModeTap)
	b := mustPrepare(t, e.m, "vm-b", ModeTap)
	c := mustPrepare(t, e.m, "sbx-c", ModeNetns)
	checkAddressing(t, e, a, ModeTap)
	if a.NSPath != "" || a.Tap == nil {
		t.Fatalf("tap mode: nspath %q, tap %v", a.NSPath, a.Tap)
	}
	ga, gb := newFakeGuest(t, a), newFakeGuest(t, b)
	guest := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(a.GuestIP, port) }

	// Host → guest: the datagram reaches the tap addressed to GuestMAC, with
	// no ARP exchange first.
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(guest(4000)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hello-guest")); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	f := ga.expect(3*time.Second, "the host's datagram", func(f frame) bool {
		return f.dst == guest(4000) && f.payload == "hello-guest"
	})
	if f.dstMAC.String() != GuestMAC || f.src.Addr() != a.HostIP {
		t.Errorf("host→guest frame to %s from %s, want %s from %s", f.dstMAC, f.src, GuestMAC, a.HostIP)
	}

	// Guest → internet: masqueraded to the uplink's address; the reply
	// comes back through the tap to the guest's port.
	sink := udpSink(t, e.inetNS, e.inetIP)
	sinkAddr := netip.MustParseAddrPort(sink.LocalAddr().String())
	ga.send(guest(5000), sinkAddr, "out")
	src, got := recvUDP(sink, 3*time.Second)
	if got != "out" || src.Addr() != e.uplinkIP {
		t.Fatalf("internet got %q from %s, want \"out\" from %s (masquerade)", got, src, e.uplinkIP)
	}
	if _, err := sink.WriteToUDPAddrPort([]byte("back"), src); err != nil {
		t.Fatal(err)
	}
	ga.expect(3*time.Second, "the internet's reply", func(f frame) bool {
		return f.dst == guest(5000) && f.src == sinkAddr && f.payload == "back"
	})

	// Spoofed sources (another execution's address, an outside one) are dropped.
	for _, spoof := range []netip.Addr{b.GuestIP, c.GuestIP, netip.MustParseAddr("192.0.2.77")} {
		ga.send(netip.AddrPortFrom(spoof, 5001), sinkAddr, "spoof")
		if src, got := recvUDP(sink, blocked); got != "" {
			t.Errorf("datagram spoofed from %s reached the internet from %s", spoof, src)
		}
	}

	// Guest → host: none of the host's addresses answers.
	hostSink := udpSink(t, "", netip.IPv4Unspecified())
	port := uint16(hostSink.LocalAddr().(*net.UDPAddr).Port)
	hostTargets := []netip.Addr{a.HostIP, e.uplinkIP, b.HostIP}
	if p := primaryIP(t); p.IsValid() {
		hostTargets = append(hostTargets, p)
	}
	for _, to := range hostTargets {
		// Control: the host's own datagram to that address arrives.
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, port)))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("control"))
		c.Close()
		if _, got := recvUDP(hostSink, 2*time.Second); got != "control" {
			t.Fatalf("control: host's datagram to %s got %q", to, got)
		}
		ga.send(guest(5002), netip.AddrPortFrom(to, port), "to-host")
		if src, got := recvUDP(hostSink, blocked); got != "" {
			t.Errorf("guest reached the host at %s (seen from %s)", to, src)
		}
	}

	// Guest → other executions: neither a sandbox nor another VM.
	cSink := udpSink(t, c.NSPath, c.GuestIP)
	cPort := uint16(cSink.LocalAddr().(*net.UDPAddr).Port)
	hc, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.GuestIP, cPort)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = hc.Write([]byte("control"))
	hc.Close()
	if _, got := recvUDP(cSink, 2*time.Second); got != "control" {
		t.Fatalf("control: host's datagram to the sandbox got %q", got)
	}
	ga.send(guest(5003), netip.AddrPortFrom(c.GuestIP, cPort), "to-c")
	if src, got := recvUDP(cSink, blocked); got != "" {
		t.Errorf("VM A reached sandbox C (seen from %s)", src)
	}
	ga.send(guest(5004), netip.AddrPortFrom(b.GuestIP, 7000), "to-b")
	if f, ok := gb.next(blocked, func(f frame) bool { return f.payload == "to-b" }); ok {
		t.Errorf("VM A reached VM B: %+v", f)
	}
}
