package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/network"
	"github.com/go-aleph/go-aleph/crn/supervisor"
)

// netAdapter gives the supervisor networks from a network.Manager.
type netAdapter struct{ m *network.Manager }

// NewNetwork prepares program networking under stateDir: it removes what an
// earlier run left and returns the supervisor's view of the manager.
func NewNetwork(ctx context.Context, stateDir string, log *slog.Logger) (supervisor.Network, error) {
	m, err := network.New(network.Config{StateDir: filepath.Join(stateDir, "netns"), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("crn: network: %w", err)
	}
	if err := m.Cleanup(ctx); err != nil {
		return nil, fmt.Errorf("crn: network cleanup: %w", err)
	}
	return NetworkOf(m), nil
}

// NetworkOf is the supervisor's view of a network manager.
func NetworkOf(m *network.Manager) supervisor.Network { return netAdapter{m} }

func (a netAdapter) Attach(ctx context.Context, id string, mode executor.NetworkMode) (*supervisor.NetConfig, error) {
	m := network.ModeNetns
	if mode == executor.NetTap {
		m = network.ModeTap
	}
	n, err := a.m.Prepare(ctx, id, m)
	if err != nil {
		return nil, err
	}
	dns := make([]string, len(n.DNS))
	for i, d := range n.DNS {
		dns[i] = d.String()
	}
	return &supervisor.NetConfig{
		NSPath:   n.NSPath,
		Tap:      n.Tap,
		GuestMAC: n.GuestMAC.String(),
		IP:       fmt.Sprintf("%s/%d", n.GuestIP, n.Prefix.Bits()),
		Route:    n.Gateway.String(),
		DNS:      dns,
		Network:  n.Prefix.String(),
		HostIP:   n.HostIP.String(),
		Release:  n.Release,
	}, nil
}
