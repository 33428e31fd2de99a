package guest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-aleph/go-aleph/crn/protocol"
)

// Mounter makes volumes and squashfs code available.
type Mounter interface {
	// Mount makes a volume available at v.Mount.
	Mount(v protocol.Volume) error
	// MountCode puts squashfs-encoded code at dir; it is called before
	// the code is set up, only for the squashfs encoding.
	MountCode(dir string) error
}

// SandboxMounter is for sandboxes, where the host bind-mounted every volume
// and the code before starting aleph-init: it only checks that the mount
// point is a directory. Root prefixes mount paths (tests).
type SandboxMounter struct {
	Root string
}

// MountCode implements Mounter: the host bound the code already, and a
// missing entrypoint is reported by the code setup.
func (SandboxMounter) MountCode(string) error { return nil }

// ErrVolumeMissing means a volume's mount point does not exist.
var ErrVolumeMissing = errors.New("volume not mounted")

// Mount implements Mounter.
func (m SandboxMounter) Mount(v protocol.Volume) error {
	if !filepath.IsAbs(v.Mount) {
		return fmt.Errorf("volume mount %q is not absolute", v.Mount)
	}
	p := filepath.Join(m.Root, v.Mount)
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrVolumeMissing, v.Mount, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrVolumeMissing, v.Mount)
	}
	return nil
}

// Environment returns the program's environment: base, then the message's
// variables, then the ALEPH_* variables of init1.py (which win).
func Environment(base []string, cfg *protocol.Configuration, apiSocket, hostname string) []string {
	env := append([]string(nil), base...)
	for k, v := range cfg.Variables {
		env = append(env, k+"="+v)
	}
	return append(env,
		"ALEPH_INIT_VERSION="+protocol.Version,
		"ALEPH_API_HOST=http://localhost",
		"ALEPH_API_UNIX_SOCKET="+apiSocket,
		"ALEPH_REMOTE_CRYPTO_HOST=http://localhost",
		"ALEPH_REMOTE_CRYPTO_UNIX_SOCKET="+apiSocket,
		"ALEPH_ADDRESS_TO_USE="+hostname,
	)
}

// configure runs init1.py's setup_system and code setup, then starts the
// program. It is called once, under a.mu.
func (a *Agent) configure(ctx context.Context, cfg *protocol.Configuration) (*app, error) {
	hostname, err := Hostname(cfg.VMHash)
	if err != nil {
		return nil, err
	}
	if cur, _ := os.Hostname(); a.o.SetHostname != nil && cur != hostname {
		if err := a.o.SetHostname(hostname); err != nil {
			a.log.Warn("set hostname", "err", err)
		}
	}
	env := Environment(a.o.Env, cfg, a.o.APISocket, hostname)
	for _, v := range cfg.Volumes {
		if err := a.o.Mounter.Mount(v); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Mount, err)
		}
	}
	if a.o.ConfigureNetwork != nil {
		if err := a.o.ConfigureNetwork(ctx, cfg); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
	} else if cfg.IP != "" || cfg.IPv6 != "" {
		a.log.Info("network is set up by the host", "ip", cfg.IP, "ipv6", cfg.IPv6)
	}
	if a.o.ResolvConf != "" && len(cfg.DNSServers) > 0 {
		if err := writeResolvConf(a.o.ResolvConf, cfg.DNSServers); err != nil {
			a.log.Warn("resolv.conf", "err", err)
		}
	}
	if cfg.Encoding == protocol.EncodingSquashfs {
		if err := a.o.Mounter.MountCode(a.o.CodeDir); err != nil {
			return nil, fmt.Errorf("code: %w", err)
		}
	}
	if len(cfg.InputData) > 0 {
		if err := ExtractZip(cfg.InputData, a.o.DataDir, a.o.Zip); err != nil {
			return nil, fmt.Errorf("input data: %w", err)
		}
	}
	switch cfg.Interface {
	case protocol.InterfaceExecutable, "binary":
		path, err := a.setupExecutable(cfg)
		if err != nil {
			return nil, err
		}
		return a.startExecutable(path, env)
	case protocol.InterfaceASGI:
		module, err := a.setupASGI(cfg)
		if err != nil {
			return nil, err
		}
		return a.startASGI(ctx, module, env)
	default:
		return nil, fmt.Errorf("unknown interface %q", cfg.Interface)
	}
}

func (a *Agent) entrypointPath(cfg *protocol.Configuration) (string, error) {
	if cfg.Entrypoint == "" || !filepath.IsLocal(cfg.Entrypoint) {
		return "", fmt.Errorf("entrypoint %q is not a relative path", cfg.Entrypoint)
	}
	return filepath.Join(a.o.CodeDir, cfg.Entrypoint), nil
}

// setupExecutable puts the code in place and returns the program's path.
func (a *Agent) setupExecutable(cfg *protocol.Configuration) (string, error) {
	path, err := a.entrypointPath(cfg)
	if err != nil {
		return "", err
	}
	switch cfg.Encoding {
	case protocol.EncodingPlain:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", fmt.Errorf("create code dir: %w", err)
		}
		if err := os.WriteFile(path, cfg.Code, 0o755); err != nil {
			return "", fmt.Errorf("write code: %w", err)
		}
	case protocol.EncodingZip:
		if err := ExtractZip(cfg.Code, a.o.CodeDir, a.o.Zip); err != nil {
			return "", fmt.Errorf("code: %w", err)
		}
	case protocol.EncodingSquashfs:
		// Mounted at CodeDir by the Mounter.
	default:
		return "", fmt.Errorf("unknown encoding %q", cfg.Encoding)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("entrypoint: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("entrypoint %s is not a regular file", cfg.Entrypoint)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		// Read-only squashfs code cannot be changed; say so if this fails.
		if err := os.Chmod(path, fi.Mode().Perm()|0o755); err != nil {
			return "", fmt.Errorf("entrypoint %s is not executable: %w", cfg.Entrypoint, err)
		}
	}
	return path, nil
}

// plainModule is the module a plain asgi program is written to.
const plainModule = "_aleph_plain"

// setupASGI puts the code in place and returns uvicorn's "module:attr".
func (a *Agent) setupASGI(cfg *protocol.Configuration) (string, error) {
	switch cfg.Encoding {
	case protocol.EncodingPlain:
		// init1.py exec()s the code and takes the entrypoint as a variable.
		if err := os.MkdirAll(a.o.CodeDir, 0o755); err != nil {
			return "", fmt.Errorf("create code dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(a.o.CodeDir, plainModule+".py"), cfg.Code, 0o644); err != nil {
			return "", fmt.Errorf("write code: %w", err)
		}
		return plainModule + ":" + cfg.Entrypoint, nil
	case protocol.EncodingZip:
		if err := ExtractZip(cfg.Code, a.o.CodeDir, a.o.Zip); err != nil {
			return "", fmt.Errorf("code: %w", err)
		}
	case protocol.EncodingSquashfs:
	default:
		return "", fmt.Errorf("unknown encoding %q", cfg.Encoding)
	}
	if cfg.Entrypoint == "" {
		return "", errors.New("empty entrypoint")
	}
	if !strings.Contains(cfg.Entrypoint, ":") {
		return cfg.Entrypoint + ":app", nil
	}
	return cfg.Entrypoint, nil
}

// writeResolvConf lists the nameservers, skipping anything that is not an IP
// address so that the host cannot inject resolver options.
func writeResolvConf(path string, servers []string) error {
	var b strings.Builder
	for _, s := range servers {
		if ip := net.ParseIP(s); ip != nil {
			fmt.Fprintf(&b, "nameserver %s\n", ip)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
