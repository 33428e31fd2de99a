package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/go-aleph/go-aleph/crn/api"
)

var _ api.Control = (*Pool)(nil)
var _ api.Pool = (*Pool)(nil)

// Owner implements api.Control: the program's content.address.
func (p *Pool) Owner(ctx context.Context, hash string) (string, error) {
	p.mu.Lock()
	ex := p.execs[hash]
	if ex == nil {
		for i := len(p.history) - 1; i >= 0; i-- {
			if p.history[i].hash == hash {
				ex = p.history[i]
				break
			}
		}
	}
	p.mu.Unlock()
	if ex != nil && ex.isStarted() {
		return ex.prog.Owner, nil
	}
	prog, err := p.cfg.Resolver.Resolve(ctx, hash)
	if err != nil {
		return "", fmt.Errorf("%w: %w", api.ErrUnknownVM, err)
	}
	return prog.Owner, nil
}

// Logs implements api.Control.
func (p *Pool) Logs(hash string) ([]api.LogEntry, error) {
	b := p.buffer(hash, false)
	if b == nil {
		return nil, api.ErrUnknownVM
	}
	return b.snapshot(), nil
}

// Stop implements api.Control.
func (p *Pool) Stop(ctx context.Context, hash string) (bool, error) {
	p.mu.Lock()
	ex := p.execs[hash]
	wasPersistent := p.persistent[hash]
	p.mu.Unlock()
	if ex == nil {
		return false, nil
	}
	if wasPersistent {
		// The owner stopped it: do not bring it back until asked.
		p.mu.Lock()
		delete(p.persistent, hash)
		p.mu.Unlock()
		p.savePersistent()
	}
	p.stopWith(ctx, ex, "stopped by its owner")
	return true, nil
}

// Reboot implements api.Control.
func (p *Pool) Reboot(ctx context.Context, hash string) error {
	p.stopHash(hash, "reboot")
	ex, err := p.acquire(ctx, hash)
	if err != nil {
		return err
	}
	ex.end(p)
	return nil
}

// Erase implements api.Control: stop, then delete the persistent volumes.
func (p *Pool) Erase(ctx context.Context, hash string) error {
	p.mu.Lock()
	ex := p.execs[hash]
	p.mu.Unlock()
	if ex != nil {
		p.stopWith(ctx, ex, "erase")
	}
	if err := os.RemoveAll(p.volumeDir(hash)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("erase volumes: %w", err)
	}
	return nil
}
