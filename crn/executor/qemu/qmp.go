package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpCommand connects to a QMP socket, negotiates capabilities and runs one
// command. For "quit" qemu may close the socket before answering, which is
// success.
func qmpCommand(ctx context.Context, sock, command string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer c.Close()
	dl := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.SetDeadline(dl)
	r := bufio.NewReader(c)
	// Greeting, then each command's reply; events may come in between.
	read := func() (map[string]json.RawMessage, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, fmt.Errorf("bad reply %q: %w", line, err)
			}
			if _, ev := m["event"]; !ev {
				return m, nil
			}
		}
	}
	if _, err := read(); err != nil {
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if _, err := fmt.Fprintf(c, "{\"execute\":%q}\n", cmd); err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		m, err := read()
		if err != nil {
			if cmd == "quit" {
				return nil
			}
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		if e, bad := m["error"]; bad {
			return fmt.Errorf("qmp %s: %s", cmd, e)
		}
	}
	return nil
}
