// Package resolve turns a PROGRAM item hash into what the compute node's
// supervisor needs to run it: the PROGRAM fetched from a core channel node
// (processed, not forgotten), every STORE ref resolved to the file to download
// (honouring use_latest), the volumes, resources and triggers, checked against
// the node's limits. Watcher follows the node's message stream for updates,
// FORGETs and on.message triggers.
//
// use_latest is resolved as aleph-vm does (crn-compute.md §1.8), with the
// messages listing any node serves, pyaleph included: the newest processed
// STORE whose content.ref is the original ref and whose owner is the original
// STORE's owner (msgTypes=STORE&refs=…&owners=…&sortOrder=-1), else the
// original STORE itself. go-aleph's /storage/by-ref answers the same through
// the file tag, but only go-aleph has it.
package resolve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// Errors; match them with errors.Is.
var (
	// ErrNotFound: the node does not know the program.
	ErrNotFound = errors.New("program not found")
	// ErrForgotten: the program was forgotten.
	ErrForgotten = errors.New("program forgotten")
	// ErrNotProcessed: the program is pending, rejected or removed.
	ErrNotProcessed = errors.New("program not processed")
	// ErrNotProgram: the hash names another message type, or content that is
	// not a valid PROGRAM.
	ErrNotProgram = errors.New("not a program")
	// ErrInvalidProgram: the PROGRAM cannot run here (missing entrypoint,
	// duplicate mounts...).
	ErrInvalidProgram = errors.New("invalid program")
	// ErrRefNotFound: a ref names no processed STORE (unknown, forgotten, or
	// another type). It comes in a *RefError.
	ErrRefNotFound = errors.New("ref not found")
	// ErrOverLimit: the program asks for more than the node's limits.
	ErrOverLimit = errors.New("over the node's limits")
)

// RefError is a ref that could not be resolved.
type RefError struct {
	Name string // "code", "runtime", "data", "volumes[2]"
	Ref  string
	Err  error
}

func (e *RefError) Error() string { return e.Name + " ref " + e.Ref + ": " + e.Err.Error() }
func (e *RefError) Unwrap() error { return e.Err }

// Interfaces of a program, as the guest's init1 names them.
const (
	InterfaceASGI       = "asgi"
	InterfaceExecutable = "executable"
)

// File is a STORE ref resolved to the file to download.
type File struct {
	// Ref is the ref as written in the PROGRAM (the original STORE).
	Ref       string
	UseLatest bool
	// Store is the STORE message the file comes from: Ref, or its newest amend.
	Store    string
	FileHash string           // sha256 hex (storage) or CID (ipfs)
	Engine   message.ItemType // storage or ipfs
	// Size is the file's size in bytes, -1 when unknown.
	Size int64
}

// Data is the program's data archive.
type Data struct {
	File
	Encoding string
	Mount    string
}

// ImmutableVolume is a read-only volume made from a file.
type ImmutableVolume struct {
	File
	Mount string
}

// PersistentVolume is a disk kept across restarts, by (program, name).
type PersistentVolume struct {
	Name        string
	Mount       string
	SizeMiB     int
	Persistence string // "host" or "store"
	// Parent is the file the volume starts from, or nil for an empty disk.
	Parent *File
}

// EphemeralVolume is a scratch disk.
type EphemeralVolume struct {
	Mount   string
	SizeMiB int
}

// Resources a program asks for.
type Resources struct {
	VCPUs     int
	MemoryMiB int
	Seconds   int
}

// Program is a resolved PROGRAM.
type Program struct {
	Hash     string
	Owner    string // content.address
	Sender   string
	Replaces string // the program this one updates, or ""
	// Content is the PROGRAM content as published.
	Content *message.ProgramContent

	Entrypoint string
	Args       []string
	Interface  string // InterfaceASGI or InterfaceExecutable
	Encoding   string // code encoding: plain, zip or squashfs

	Code       File
	Runtime    File
	Data       *Data
	Volumes    []ImmutableVolume
	Persistent []PersistentVolume
	Ephemeral  []EphemeralVolume

	Resources      Resources
	Internet       bool
	AlephAPI       bool
	Variables      map[string]string
	AuthorizedKeys []string

	// Executor is the backend the program requires (content.metadata.executor):
	// "" (the node's default), "sandbox", "qemu" or ExecutorVM.
	Executor string

	OnHTTP       bool
	OnPersistent bool
	OnMessage    []message.Subscription

	// WatchRefs are the original refs (code, runtime, data, immutable volumes)
	// whose update (a STORE amend) must restart the program.
	WatchRefs []string
}

// Limits are the node's bounds on one program; zero fields do not bound.
type Limits struct {
	// DiskMiB bounds the sum of persistent and ephemeral volume sizes.
	DiskMiB   int64
	MemoryMiB int
	VCPUs     int
}

// Resolver resolves programs against one core channel node.
type Resolver struct {
	c      *client.Client
	limits Limits
	log    *slog.Logger
}

// New returns a Resolver that reads from c.
func New(c *client.Client, limits Limits, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{c: c, limits: limits, log: log}
}

// Resolve fetches the PROGRAM itemHash and resolves its refs.
func (r *Resolver) Resolve(ctx context.Context, itemHash string) (*Program, error) {
	if !message.IsItemHash(itemHash) {
		return nil, fmt.Errorf("resolve %q: %w: not an item hash", clip(itemHash), ErrNotFound)
	}
	m, err := r.c.GetProcessedMessage(ctx, itemHash)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", itemHash, classify(err, ErrNotFound, ErrForgotten, ErrNotProcessed))
	}
	if m.Type != message.TypeProgram {
		return nil, fmt.Errorf("resolve %s: %w: it is a %s", itemHash, ErrNotProgram, m.Type)
	}
	c, err := m.DecodeContent(m.Content)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w: %w", itemHash, ErrNotProgram, err)
	}
	pc := c.(*message.ProgramContent)
	p, err := fromContent(itemHash, m.Sender, pc)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", itemHash, err)
	}
	if err := r.limits.check(p); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", itemHash, err)
	}
	if err := r.resolveFiles(ctx, p); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", itemHash, err)
	}
	return p, nil
}

// classify maps the client's errors for a missing, forgotten or otherwise
// unprocessed message to the given sentinels, keeping the cause.
func classify(err, notFound, forgotten, notProcessed error) error {
	var fe *client.ForgottenError
	var re *client.RejectedError
	var se *client.StatusError
	switch {
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("%w: %w", notFound, err)
	case errors.As(err, &fe):
		return fmt.Errorf("%w: %w", forgotten, err)
	case errors.As(err, &re), errors.As(err, &se):
		return fmt.Errorf("%w: %w", notProcessed, err)
	}
	return err
}

// Executors a program may require in content.metadata.executor. Upstream's
// FunctionEnvironment forbids extra fields, so the requirement lives in the
// free-form metadata, which every CCN accepts and upstream CRNs ignore.
const (
	ExecutorSandbox = "sandbox"
	ExecutorQEMU    = "qemu"
	// ExecutorVM asks for hardware isolation, whichever VM backend the node has.
	ExecutorVM = "vm"
)

// executorOf reads metadata.executor.
func executorOf(meta json.RawMessage) (string, error) {
	if len(meta) == 0 {
		return "", nil
	}
	var m struct {
		Executor *json.RawMessage `json:"executor"`
	}
	if err := json.Unmarshal(meta, &m); err != nil || m.Executor == nil {
		return "", nil // metadata is free-form; only our key is ours to check
	}
	var s string
	if err := json.Unmarshal(*m.Executor, &s); err != nil {
		return "", fmt.Errorf("%w: metadata.executor must be a string", ErrInvalidProgram)
	}
	switch s {
	case ExecutorSandbox, ExecutorQEMU, ExecutorVM:
		return s, nil
	case "firecracker":
		return ExecutorVM, nil
	}
	return "", fmt.Errorf("%w: metadata.executor %q: want sandbox, qemu or vm", ErrInvalidProgram, truncateStr(s, 32))
}

func truncateStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// fromContent fills everything but the files' hashes and sizes.
func fromContent(hash, sender string, c *message.ProgramContent) (*Program, error) {
	p := &Program{
		Hash: hash, Owner: c.Address, Sender: sender, Content: c,
		Entrypoint: strings.TrimSpace(c.Code.Entrypoint), Args: c.Code.Args, Encoding: c.Code.Encoding,
		Code:      File{Ref: c.Code.Ref, UseLatest: c.Code.UseLatest, Size: -1},
		Runtime:   File{Ref: c.Runtime.Ref, UseLatest: c.Runtime.UseLatest, Size: -1},
		Resources: Resources{VCPUs: c.Resources.VCPUs, MemoryMiB: c.Resources.Memory, Seconds: c.Resources.Seconds},
		Internet:  c.Environment.Internet, AlephAPI: c.Environment.AlephAPI,
		Variables: c.Variables, AuthorizedKeys: c.AuthorizedKeys,
		OnHTTP: c.On.HTTP, OnPersistent: c.On.Persistent != nil && *c.On.Persistent, OnMessage: c.On.Message,
	}
	if c.Replaces != nil {
		p.Replaces = *c.Replaces
	}
	if p.Entrypoint == "" {
		return nil, fmt.Errorf("%w: code.entrypoint is empty", ErrInvalidProgram)
	}
	ex, err := executorOf(c.Metadata)
	if err != nil {
		return nil, err
	}
	p.Executor = ex
	p.Interface = InterfaceASGI
	if c.Code.EffectiveInterface() == message.InterfaceBinary {
		p.Interface = InterfaceExecutable
	}
	mounts := map[string]string{}
	mount := func(where, m string) error {
		if m == "" {
			return nil
		}
		if !strings.HasPrefix(m, "/") {
			return fmt.Errorf("%w: %s mount %q is not an absolute path", ErrInvalidProgram, where, m)
		}
		if prev, ok := mounts[m]; ok {
			return fmt.Errorf("%w: %s and %s both mount %s", ErrInvalidProgram, prev, where, m)
		}
		mounts[m] = where
		return nil
	}
	if d := c.Data; d != nil {
		p.Data = &Data{File: File{Ref: d.Ref, UseLatest: d.UseLatest, Size: -1}, Encoding: d.Encoding, Mount: d.Mount}
		if err := mount("data", d.Mount); err != nil {
			return nil, err
		}
	}
	names := map[string]bool{}
	for i, v := range c.Volumes {
		where := fmt.Sprintf("volumes[%d]", i)
		if err := mount(where, v.Mount()); err != nil {
			return nil, err
		}
		switch {
		case v.Immutable != nil:
			p.Volumes = append(p.Volumes, ImmutableVolume{
				File: File{Ref: v.Immutable.Ref, UseLatest: v.Immutable.UseLatest, Size: -1}, Mount: v.Immutable.Mount})
		case v.Ephemeral != nil:
			p.Ephemeral = append(p.Ephemeral, EphemeralVolume{Mount: v.Ephemeral.Mount, SizeMiB: v.Ephemeral.SizeMiB})
		case v.Persistent != nil:
			pv := v.Persistent
			if pv.Name == "" {
				return nil, fmt.Errorf("%w: %s: a persistent volume needs a name", ErrInvalidProgram, where)
			}
			if names[pv.Name] {
				return nil, fmt.Errorf("%w: %s: persistent volume name %q used twice", ErrInvalidProgram, where, pv.Name)
			}
			names[pv.Name] = true
			out := PersistentVolume{Name: pv.Name, Mount: pv.Mount, SizeMiB: pv.SizeMiB, Persistence: pv.Persistence}
			if out.Persistence == "" {
				out.Persistence = "host"
			}
			if pv.Parent != nil {
				out.Parent = &File{Ref: pv.Parent.Ref, UseLatest: pv.Parent.UseLatest, Size: -1}
			}
			p.Persistent = append(p.Persistent, out)
		}
	}
	add := func(ref string) {
		for _, r := range p.WatchRefs {
			if r == ref {
				return
			}
		}
		p.WatchRefs = append(p.WatchRefs, ref)
	}
	add(p.Code.Ref)
	add(p.Runtime.Ref)
	if p.Data != nil {
		add(p.Data.Ref)
	}
	for _, v := range p.Volumes {
		add(v.Ref)
	}
	return p, nil
}

func (l Limits) check(p *Program) error {
	var disk int64
	for _, v := range p.Persistent {
		disk += int64(v.SizeMiB)
	}
	for _, v := range p.Ephemeral {
		disk += int64(v.SizeMiB)
	}
	if l.DiskMiB > 0 && disk > l.DiskMiB {
		return fmt.Errorf("%w: volumes total %d MiB, over %d MiB", ErrOverLimit, disk, l.DiskMiB)
	}
	if l.MemoryMiB > 0 && p.Resources.MemoryMiB > l.MemoryMiB {
		return fmt.Errorf("%w: %d MiB of memory, over %d MiB", ErrOverLimit, p.Resources.MemoryMiB, l.MemoryMiB)
	}
	if l.VCPUs > 0 && p.Resources.VCPUs > l.VCPUs {
		return fmt.Errorf("%w: %d vCPUs, over %d", ErrOverLimit, p.Resources.VCPUs, l.VCPUs)
	}
	return nil
}

// resolveFiles resolves every ref of p, each distinct (ref, use_latest) once.
func (r *Resolver) resolveFiles(ctx context.Context, p *Program) error {
	type key struct {
		ref    string
		latest bool
	}
	done := map[key]File{}
	one := func(name string, f *File) error {
		k := key{f.Ref, f.UseLatest}
		if got, ok := done[k]; ok {
			*f = got
			return nil
		}
		if err := r.ResolveRef(ctx, f); err != nil {
			return &RefError{Name: name, Ref: f.Ref, Err: err}
		}
		done[k] = *f
		return nil
	}
	if err := one("code", &p.Code); err != nil {
		return err
	}
	if err := one("runtime", &p.Runtime); err != nil {
		return err
	}
	if p.Data != nil {
		if err := one("data", &p.Data.File); err != nil {
			return err
		}
	}
	for i := range p.Volumes {
		if err := one(fmt.Sprintf("volumes[%d]", i), &p.Volumes[i].File); err != nil {
			return err
		}
	}
	for i := range p.Persistent {
		if v := &p.Persistent[i]; v.Parent != nil {
			if err := one("volume "+v.Name+" parent", v.Parent); err != nil {
				return err
			}
			if v.Parent.Size > int64(v.SizeMiB)<<20 {
				return fmt.Errorf("%w: volume %s is %d MiB, smaller than its parent file (%d bytes)", ErrInvalidProgram, v.Name, v.SizeMiB, v.Parent.Size)
			}
		}
	}
	return nil
}

// ResolveRef fills f's Store, FileHash, Engine and Size from f.Ref and
// f.UseLatest. Errors wrap ErrRefNotFound when the ref names no processed STORE.
func (r *Resolver) ResolveRef(ctx context.Context, f *File) error {
	if !message.IsItemHash(f.Ref) {
		return fmt.Errorf("%w: not an item hash", ErrRefNotFound)
	}
	m, err := r.c.GetProcessedMessage(ctx, f.Ref)
	if err != nil {
		return classify(err, ErrRefNotFound, ErrRefNotFound, ErrRefNotFound)
	}
	orig, err := storeContent(m)
	if err != nil {
		return err
	}
	f.Store, f.FileHash, f.Engine = m.ItemHash, orig.ItemHash, orig.ItemType
	if orig.Size != nil {
		f.Size = *orig.Size
	}
	if f.UseLatest {
		list, err := r.c.ListMessages(ctx, client.MessageFilter{
			Types: []message.Type{message.TypeStore}, Refs: []string{f.Ref}, Owners: []string{orig.Address},
			SortOrder: client.Descending,
		}, client.Page{Number: 1, Size: 1})
		if err != nil {
			return fmt.Errorf("latest amend: %w", err)
		}
		if len(list.Messages) > 0 {
			am := list.Messages[0]
			sc, err := storeContent(am)
			if err != nil {
				return fmt.Errorf("latest amend %s: %w", am.ItemHash, err)
			}
			f.Store, f.FileHash, f.Engine, f.Size = am.ItemHash, sc.ItemHash, sc.ItemType, -1
			if sc.Size != nil {
				f.Size = *sc.Size
			}
		}
	}
	if f.Size < 0 {
		// STOREs rarely carry their size; the node knows it. Unknown is not an
		// error here: the download will tell.
		if h, err := r.c.HeadFile(ctx, f.FileHash); err == nil {
			f.Size = h.Size
		} else {
			r.log.Debug("resolve: file size unknown", "file", f.FileHash, "err", err)
		}
	}
	return nil
}

func storeContent(m *client.Message) (*message.StoreContent, error) {
	if m.Type != message.TypeStore {
		return nil, fmt.Errorf("%w: it is a %s, not a STORE", ErrRefNotFound, m.Type)
	}
	c, err := m.DecodeContent(m.Content)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid STORE content: %w", ErrRefNotFound, err)
	}
	sc := c.(*message.StoreContent)
	if sc.ItemType != message.ItemStorage && sc.ItemType != message.ItemIPFS {
		return nil, fmt.Errorf("%w: STORE of item_type %q", ErrRefNotFound, sc.ItemType)
	}
	if _, err := client.FileHashEngine(sc.ItemHash); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefNotFound, err)
	}
	return sc, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
