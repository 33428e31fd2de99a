//go:build !unix

package filestore

import (
	"errors"
	"os"
)

// sysState holds the store's open handles. Without flock there is no lock.
type sysState struct {
	blocks *os.File
}

func openSys(string) (*sysState, error) { return &sysState{}, nil }

func (s *sysState) close() error {
	if s.blocks != nil {
		return errors.Join(s.blocks.Close())
	}
	return nil
}
