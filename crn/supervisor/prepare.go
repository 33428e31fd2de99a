package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-aleph/go-aleph/crn/cache"
	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/go-aleph/go-aleph/crn/resolve"
)

// prepare downloads the program's files and builds the executor spec and
// the guest configuration.
func (p *Pool) prepare(ctx context.Context, ex *execution) (*executor.Spec, *protocol.Configuration, error) {
	prog := ex.prog
	spec := &executor.Spec{
		ID:        ex.hash,
		Init:      p.cfg.Init,
		Env:       []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"},
		MemoryMiB: prog.Resources.MemoryMiB,
		VCPUs:     prog.Resources.VCPUs,
		StateDir:  p.stateDir(ex.hash),
		Console:   p.console(ex.hash),
	}
	cfg := &protocol.Configuration{
		VMHash:         ex.hash,
		Interface:      protocol.Interface(prog.Interface),
		Encoding:       protocol.Encoding(prog.Encoding),
		Entrypoint:     prog.Entrypoint,
		Variables:      prog.Variables,
		AuthorizedKeys: prog.AuthorizedKeys,
	}

	// Files download in parallel; each is held until the execution ends.
	type want struct {
		f    resolve.File
		name string
		h    *cache.Handle
		err  error
	}
	wants := []*want{{f: prog.Runtime, name: "runtime"}, {f: prog.Code, name: "code"}}
	if prog.Data != nil {
		wants = append(wants, &want{f: prog.Data.File, name: "data"})
	}
	for i, v := range prog.Volumes {
		wants = append(wants, &want{f: v.File, name: fmt.Sprintf("volumes[%d]", i)})
	}
	done := make(chan struct{}, len(wants))
	for _, w := range wants {
		go func() {
			defer func() { done <- struct{}{} }()
			f := w.f
			w.h, w.err = p.cfg.Files.Get(ctx, f.FileHash, func(ctx context.Context, _ string, out io.Writer) error {
				return p.cfg.Fetch(ctx, f, out)
			})
		}()
	}
	for range wants {
		<-done
	}
	var errs []error
	for _, w := range wants {
		if w.err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", w.name, w.f.Ref, w.err))
			continue
		}
		ex.handles = append(ex.handles, w.h)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errDownload, err)
	}
	runtime, code := wants[0].h.Path(), wants[1].h.Path()
	rest := wants[2:]

	if !isSquashfs(runtime) {
		return nil, nil, fmt.Errorf("%w: runtime %s is not a squashfs image", errBadProgram, prog.Runtime.Ref)
	}
	spec.Runtime = runtime
	switch cfg.Encoding {
	case protocol.EncodingSquashfs:
		if !isSquashfs(code) {
			return nil, nil, fmt.Errorf("%w: code %s is not a squashfs image", errBadProgram, prog.Code.Ref)
		}
		spec.Code = code
	case protocol.EncodingZip, protocol.EncodingPlain:
		b, err := p.readInline(code, "code")
		if err != nil {
			return nil, nil, err
		}
		if cfg.Encoding == protocol.EncodingZip && !bytes.HasPrefix(b, []byte("PK")) {
			return nil, nil, fmt.Errorf("%w: code %s is not a zip archive", errBadProgram, prog.Code.Ref)
		}
		cfg.Code = b
	default:
		return nil, nil, fmt.Errorf("%w: unknown code encoding %q", errBadProgram, cfg.Encoding)
	}
	if prog.Data != nil {
		b, err := p.readInline(rest[0].h.Path(), "data")
		if err != nil {
			return nil, nil, err
		}
		if !bytes.HasPrefix(b, []byte("PK")) {
			return nil, nil, fmt.Errorf("%w: data %s is not a zip archive", errBadProgram, prog.Data.Ref)
		}
		cfg.InputData = b
		rest = rest[1:]
	}
	for i, v := range prog.Volumes {
		path := rest[i].h.Path()
		if !isSquashfs(path) {
			return nil, nil, fmt.Errorf("%w: immutable volume %s (%s) is not a squashfs image", errBadProgram, v.Mount, v.Ref)
		}
		spec.Volumes = append(spec.Volumes, executor.Volume{Source: path, Mount: v.Mount, ReadOnly: true, Kind: executor.VolumeSquashfs})
	}
	for _, v := range prog.Persistent {
		path, err := p.persistentVolume(ctx, ex.hash, v)
		if err != nil {
			return nil, nil, err
		}
		spec.Volumes = append(spec.Volumes, executor.Volume{Source: path, Mount: v.Mount, Kind: executor.VolumeExt4})
	}
	for _, v := range prog.Ephemeral {
		spec.Volumes = append(spec.Volumes, executor.Volume{Mount: v.Mount, Kind: executor.VolumeTmpfs, SizeMiB: v.SizeMiB})
	}
	devs := executor.VolumeDevices(spec)
	for i, v := range spec.Volumes {
		cfg.Volumes = append(cfg.Volumes, protocol.Volume{Mount: v.Mount, Device: devs[i], ReadOnly: v.ReadOnly || v.Kind == executor.VolumeSquashfs})
	}

	if p.cfg.GuestAPI != nil && prog.AlephAPI {
		h, err := p.cfg.GuestAPI(ex.hash)
		if err != nil {
			return nil, nil, fmt.Errorf("guest api: %w", err)
		}
		spec.GuestAPI = h
	}
	if prog.Internet {
		if p.cfg.Network == nil {
			return nil, nil, errNoInternet
		}
		n, err := p.cfg.Network.Attach(ctx, ex.hash, ex.backend.Network())
		if err != nil {
			return nil, nil, fmt.Errorf("network: %w", err)
		}
		ex.mu.Lock()
		ex.net = n
		ex.mu.Unlock()
		spec.Internet, spec.NetNSPath, spec.Tap, spec.GuestMAC = true, n.NSPath, n.Tap, n.GuestMAC
		cfg.IP, cfg.Route, cfg.DNSServers = n.IP, n.Route, n.DNS
	}
	return spec, cfg, nil
}

// executorFor picks the backend of prog: the one it requires, else the
// node's default.
func (p *Pool) executorFor(prog *resolve.Program) (executor.Executor, error) {
	want := prog.Executor
	if want == "" {
		return p.cfg.Executor, nil
	}
	if want == resolve.ExecutorVM {
		want = resolve.ExecutorQEMU // the microVM backend of this node
	}
	if p.cfg.Executor.Name() == want {
		return p.cfg.Executor, nil
	}
	if e := p.cfg.Executors[want]; e != nil {
		return e, nil
	}
	have := []string{p.cfg.Executor.Name()}
	for n := range p.cfg.Executors {
		if n != have[0] {
			have = append(have, n)
		}
	}
	return nil, fmt.Errorf("%w: it requires %q, this node offers %s", errNoBackend, prog.Executor, strings.Join(have, ", "))
}

// readInline reads a code or data file sent in the configuration payload.
func (p *Pool) readInline(path, what string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > p.cfg.MaxInlineCode {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d bytes sent inline (use squashfs)", errBadProgram, what, fi.Size(), p.cfg.MaxInlineCode)
	}
	return os.ReadFile(path)
}

// isSquashfs checks the squashfs magic.
func isSquashfs(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && string(b[:]) == "hsqs"
}

var volumeName = regexp.MustCompile(`[^\w-]`)

// persistentVolume returns the ext4 image of (program, name), creating it
// on first use: fallocate + mkfs.ext4, as aleph-vm.
func (p *Pool) persistentVolume(ctx context.Context, hash string, v resolve.PersistentVolume) (string, error) {
	if v.Persistence != "" && v.Persistence != "host" {
		return "", fmt.Errorf("%w: persistent volume %q: persistence %q is not supported (use \"host\")", errBadProgram, v.Name, v.Persistence)
	}
	if v.Parent != nil {
		return "", fmt.Errorf("%w: persistent volume %q: a parent image is only supported for instances", errBadProgram, v.Name)
	}
	if v.SizeMiB <= 0 {
		return "", fmt.Errorf("%w: persistent volume %q: size_mib %d", errBadProgram, v.Name, v.SizeMiB)
	}
	dir := p.volumeDir(hash)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, volumeName.ReplaceAllString(v.Name, "_")+".ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	err = f.Truncate(int64(v.SizeMiB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("create volume %s: %w", v.Name, err)
	}
	// Sparse: the disk only takes what the program writes.
	cmd := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=0:0,lazy_itable_init=1", "-L", labelFor(v.Name), tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("mkfs.ext4 volume %s: %w: %s", v.Name, err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}

func labelFor(name string) string {
	l := volumeName.ReplaceAllString(name, "_")
	if len(l) > 16 {
		l = l[:16]
	}
	return l
}
