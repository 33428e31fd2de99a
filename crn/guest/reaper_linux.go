package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reaper is PID 1's child handling: it reaps every child (orphans included)
// on SIGCHLD and reports the exits of the ones it started.
type Reaper struct {
	log *slog.Logger

	mu      sync.Mutex
	waiting map[int]waiter
}

type waiter struct {
	cmd *exec.Cmd
	ch  chan error
}

// NewReaper returns a reaper; call Run to start reaping.
func NewReaper(log *slog.Logger) *Reaper {
	return &Reaper{log: log, waiting: map[int]waiter{}}
}

// Start implements Processes. The lock keeps the reaper from collecting the
// child before it is registered.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan error, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	ch := make(chan error, 1)
	r.waiting[cmd.Process.Pid] = waiter{cmd: cmd, ch: ch}
	return ch, nil
}

// Run reaps until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	r.reap() // children that exited before Notify
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			r.reap()
		}
	}
}

func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		w, ok := r.waiting[pid]
		if !ok {
			r.log.Debug("reaped orphan", "pid", pid, "status", exitText(ws))
			continue
		}
		delete(r.waiting, pid)
		_ = w.cmd.Process.Release() // its pidfd; the process is gone
		if ws.Exited() && ws.ExitStatus() == 0 {
			w.ch <- nil
		} else {
			w.ch <- errors.New(exitText(ws))
		}
	}
}

func exitText(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}
