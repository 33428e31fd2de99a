// Package protocol is aleph-vm's host↔guest protocol, version 2
// (crn-compute.md §2.3), spoken by the compute node (host) and by aleph-init
// (guest): the ready signal, the configuration payload, one request scope per
// connection, and halt. Messages are msgpack with bin and str kept distinct.
// The transport is abstract: Unix sockets for the sandbox, vsock or
// virtio-serial for microVMs.
package protocol

import (
	"context"
	"net"
)

// Transport is the host's side of the channel to one guest. The guest side is
// GuestTransport.
type Transport interface {
	// AwaitReady waits for the guest's ready signal (aleph-vm: the guest
	// connects to host port 52 and sends msgpack {"version": "2.0.0"}, an empty
	// payload meaning 1.0.0) and returns the version.
	AwaitReady(ctx context.Context) (version string, err error)
	// Dial opens a new connection to the guest's control listener (aleph-vm:
	// guest vsock port 52). Each request scope uses its own connection.
	Dial(ctx context.Context) (net.Conn, error)
	// Close releases the host side (listeners, sockets).
	Close() error
}

// GuestTransport is the guest's side: how aleph-init signals readiness and
// accepts the host's connections.
type GuestTransport interface {
	// DialReady connects to the host's ready listener.
	DialReady(ctx context.Context) (net.Conn, error)
	// Listen returns the control listener the host dials.
	Listen() (net.Listener, error)
}
