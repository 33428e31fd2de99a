package qemu

import (
	"fmt"
	"strconv"
	"strings"
)

// Link transports.
const (
	LinkSerial = "serial"
	LinkVsock  = "vsock"
)

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// linkPortName is the virtio-serial port aleph-init looks for.
const linkPortName = "org.aleph.link"

// drive is one virtio disk; its serial is its aleph-vm name (vda, vdb, …),
// which is how the guest finds it whatever the probe order.
type drive struct {
	name     string
	path     string
	readOnly bool
}

// machine is what one qemu invocation needs; args renders it.
type machine struct {
	accel     string
	memoryMiB int
	vcpus     int
	kernel    string
	initrd    string
	tscKHz    int
	drives    []drive
	link      string // LinkSerial or LinkVsock
	linkSock  string // serial: the host's listening socket, qemu connects
	vsockCID  uint32 // vsock: the guest's context id
	vsockPort uint32 // vsock: the host port the guest dials
	qmpSock   string
	tapFD     int // >0: the tap's fd number in the child
	guestMAC  string
	canary    bool
	debug     bool
}

// cmdline is the kernel command line. tsc_early_khz is required under TCG:
// without it microvm boots sometimes hang calibrating the TSC (microvm-lab §3).
func (m *machine) cmdline() string {
	parts := []string{"console=ttyS0", "panic=-1", "quiet", "pci=off", "tsc=reliable", "no_timer_check",
		"random.trust_cpu=on", "cryptomgr.notests", "mitigations=off"}
	if m.tscKHz > 0 {
		parts = append(parts, "tsc_early_khz="+strconv.Itoa(m.tscKHz))
	}
	switch {
	case m.canary:
		parts = append(parts, "aleph.canary=1")
	case m.link == LinkVsock:
		parts = append(parts, fmt.Sprintf("aleph.link=vsock:%d", m.vsockPort))
	default:
		parts = append(parts, "aleph.link=serial")
	}
	if m.debug {
		parts = append(parts, "aleph.debug=1")
	}
	return strings.Join(parts, " ")
}

// args renders the qemu command line (without the binary).
func (m *machine) args() []string {
	a := []string{
		"-M", "microvm", "-accel", m.accel,
		"-m", strconv.Itoa(m.memoryMiB) + "M", "-smp", strconv.Itoa(m.vcpus),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-serial", "stdio",
		"-kernel", m.kernel, "-initrd", m.initrd, "-append", m.cmdline(),
	}
	if m.accel == AccelKVM {
		a = append(a, "-cpu", "host")
	}
	for _, d := range m.drives {
		ro := "off"
		if d.readOnly {
			ro = "on"
		}
		a = append(a,
			"-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=%s,readonly=%s", escapeOpt(d.path), d.name, ro),
			"-device", fmt.Sprintf("virtio-blk-device,drive=%s,serial=%s", d.name, d.name))
	}
	switch {
	case m.canary:
	case m.link == LinkVsock:
		a = append(a, "-device", fmt.Sprintf("vhost-vsock-device,guest-cid=%d", m.vsockCID))
	default:
		a = append(a,
			"-chardev", "socket,id=link,path="+escapeOpt(m.linkSock),
			"-device", "virtio-serial-device,max_ports=2",
			"-device", "virtserialport,chardev=link,name="+linkPortName)
	}
	if m.qmpSock != "" {
		a = append(a, "-qmp", "unix:"+escapeOpt(m.qmpSock)+",server=on,wait=off")
	}
	if m.tapFD > 0 {
		a = append(a,
			"-netdev", "tap,id=net0,fd="+strconv.Itoa(m.tapFD),
			"-device", "virtio-net-device,netdev=net0,mac="+m.guestMAC)
	}
	return a
}

// escapeOpt doubles commas, qemu's escape inside option values.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }
