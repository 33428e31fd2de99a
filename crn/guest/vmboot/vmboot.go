// Package vmboot is aleph-init's VM mode: the steps that take it from PID 1
// of a QEMU microVM's initramfs to the guest agent of package guest, and
// back to power-off.
//
// The contract with the host (crn/executor/qemu) is fixed: the kernel
// command line names the link (aleph.link=serial or aleph.link=vsock:<port>,
// ParseCmdline), the initramfs of crn/initramfs carries the kernel modules
// to load (LoadModules), virtio-blk drives are found by their serial, the
// aleph-vm drive name (vda = runtime, vdb = squashfs code, then one per
// volume; FindBySerial), and the protocol runs over a vmlink session on a
// virtio-serial port named org.aleph.link or a vsock connection to the host
// (OpenLink).
//
// Boot turns the runtime squashfs into a writable root (overlay on a tmpfs)
// and switches to it; Main then runs the agent with a Mounter for volumes and
// code, ConfigureNetwork for eth0, the guest API forwarded to the host, and
// powers the VM off when the agent returns or anything fails.
package vmboot

import "errors"

// Drive names of the host contract.
const (
	RootDrive = "vda" // runtime root filesystem, squashfs
	CodeDrive = "vdb" // program code, squashfs, when encoded so
)

// PortName is the name of the virtio-serial port that carries the link.
const PortName = "org.aleph.link"

var (
	// ErrBadCmdline is an aleph.* kernel parameter that does not parse.
	ErrBadCmdline = errors.New("bad kernel command line")
	// ErrNotFound is a device (drive or port) that is not there.
	ErrNotFound = errors.New("device not found")
	// ErrBadName is a drive or port name outside the allowed alphabet.
	ErrBadName = errors.New("bad device name")
	// ErrBadModuleOrder is a modules.order file that does not parse.
	ErrBadModuleOrder = errors.New("bad module order")
	// ErrBadNetwork is an ip, route or ipv6 value that does not parse.
	ErrBadNetwork = errors.New("bad network configuration")
)
