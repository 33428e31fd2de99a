package vmboot

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxCmdline bounds the command line ParseCmdline accepts (x86's
// COMMAND_LINE_SIZE is 2048; /proc/cmdline is at most a page).
const MaxCmdline = 64 << 10

// LinkKind is the transport of the host link.
type LinkKind string

// Link kinds.
const (
	LinkNone   LinkKind = ""
	LinkSerial LinkKind = "serial"
	LinkVsock  LinkKind = "vsock"
)

// Link is the aleph.link parameter.
type Link struct {
	Kind LinkKind
	Port uint32 // vsock only
}

func (l Link) String() string {
	if l.Kind == LinkVsock {
		return "vsock:" + strconv.FormatUint(uint64(l.Port), 10)
	}
	return string(l.Kind)
}

// Cmdline is what aleph-init reads from the kernel command line.
type Cmdline struct {
	Link   Link
	Debug  bool // aleph.debug=1: debug logs
	Canary bool // aleph.canary=1: prove the VM boots, then power off
}

// VM reports whether the command line asks for VM mode.
func (c Cmdline) VM() bool { return c.Link.Kind != LinkNone || c.Canary }

// String renders the aleph.* parameters as ParseCmdline reads them.
func (c Cmdline) String() string {
	var parts []string
	if c.Link.Kind != LinkNone {
		parts = append(parts, "aleph.link="+c.Link.String())
	}
	if c.Debug {
		parts = append(parts, "aleph.debug=1")
	}
	if c.Canary {
		parts = append(parts, "aleph.canary=1")
	}
	return strings.Join(parts, " ")
}

// ParseCmdline reads the aleph.* parameters of a kernel command line.
// Parameters are split as the kernel does (double quotes group spaces),
// parsing stops at "--" (the rest is init's arguments), the last of a
// repeated parameter wins and unknown parameters are ignored.
func ParseCmdline(s string) (Cmdline, error) {
	var c Cmdline
	if len(s) > MaxCmdline {
		return c, fmt.Errorf("%w: %d bytes, limit %d", ErrBadCmdline, len(s), MaxCmdline)
	}
	for _, p := range splitParams(s) {
		if p == "--" {
			break
		}
		key, val, hasVal := strings.Cut(p, "=")
		var err error
		switch key {
		case "aleph.link":
			c.Link, err = parseLink(val)
		case "aleph.debug":
			c.Debug, err = parseFlag(val, hasVal)
		case "aleph.canary":
			c.Canary, err = parseFlag(val, hasVal)
		default:
			continue
		}
		if err != nil {
			return Cmdline{}, fmt.Errorf("%w: %s: %w", ErrBadCmdline, key, err)
		}
	}
	return c, nil
}

// splitParams splits on unquoted whitespace and drops the quotes, like the
// kernel's next_arg.
func splitParams(s string) []string {
	var out []string
	var b strings.Builder
	inQuote, inParam := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"':
			inQuote = !inQuote
			inParam = true
		case !inQuote && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' || ch == 0):
			if inParam {
				out = append(out, b.String())
				b.Reset()
				inParam = false
			}
		default:
			b.WriteByte(ch)
			inParam = true
		}
	}
	if inParam {
		out = append(out, b.String())
	}
	return out
}

func parseLink(v string) (Link, error) {
	switch {
	case v == string(LinkSerial):
		return Link{Kind: LinkSerial}, nil
	case strings.HasPrefix(v, "vsock:"):
		ps := strings.TrimPrefix(v, "vsock:")
		p, err := strconv.ParseUint(ps, 10, 32)
		// Port 0xffffffff is VMADDR_PORT_ANY, not a port to connect to.
		if err != nil || p == 0 || p == 1<<32-1 || (len(ps) > 1 && ps[0] == '0') {
			return Link{}, fmt.Errorf("bad vsock port %q", ps)
		}
		return Link{Kind: LinkVsock, Port: uint32(p)}, nil
	default:
		return Link{}, fmt.Errorf("unknown link %q (want serial or vsock:<port>)", v)
	}
}

func parseFlag(v string, hasVal bool) (bool, error) {
	if !hasVal {
		return true, nil
	}
	switch v {
	case "1", "y", "yes", "on", "true":
		return true, nil
	case "0", "n", "no", "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("bad flag value %q (want 0 or 1)", v)
}
