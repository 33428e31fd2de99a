package guest

import (
	"fmt"
	"os/exec"
)

// Processes starts children and reports each one's exit. As PID 1, aleph-init
// reaps every orphan with wait4(-1), which would steal exec.Cmd.Wait's child,
// so all children go through one implementation: DirectProcesses when another
// init reaps (tests), Reaper when aleph-init is PID 1.
type Processes interface {
	// Start starts cmd; the channel yields its exit (nil for status 0) once.
	Start(cmd *exec.Cmd) (<-chan error, error)
}

// DirectProcesses waits for each child with exec.Cmd.Wait.
type DirectProcesses struct{}

// Start implements Processes.
func (DirectProcesses) Start(cmd *exec.Cmd) (<-chan error, error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	return ch, nil
}
