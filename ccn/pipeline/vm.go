package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

const mib = 1 << 20

// vmRef is a STORE a PROGRAM or INSTANCE depends on.
type vmRef struct {
	Name      string // where it is used: "code", "runtime", "data", "volumes[2]", "rootfs"
	Ref       string
	UseLatest bool
	// SizeMiB is the size of a volume copied from the file (persistent volume
	// parents, rootfs), 0 for read-only uses.
	SizeMiB int
}

// vmView is what the pipeline needs of PROGRAM and INSTANCE content alike.
type vmView struct {
	Type       string // "program" or "instance"
	Base       *message.BaseContent
	AllowAmend bool
	Replaces   string
	Refs       []vmRef
}

func volumeRefs(vols []message.MachineVolume) []vmRef {
	var refs []vmRef
	for i, v := range vols {
		name := fmt.Sprintf("volumes[%d]", i)
		switch {
		case v.Immutable != nil:
			refs = append(refs, vmRef{Name: name, Ref: v.Immutable.Ref, UseLatest: v.Immutable.UseLatest})
		case v.Persistent != nil && v.Persistent.Parent != nil:
			if v.Persistent.Name != "" {
				name = v.Persistent.Name
			}
			refs = append(refs, vmRef{Name: name, Ref: v.Persistent.Parent.Ref, UseLatest: v.Persistent.Parent.UseLatest, SizeMiB: v.Persistent.SizeMiB})
		}
	}
	return refs
}

func vmOf(c *message.ProgramContent) *vmView {
	v := &vmView{Type: "program", Base: &c.BaseContent, AllowAmend: c.AllowAmend}
	if c.Replaces != nil {
		v.Replaces = *c.Replaces
	}
	v.Refs = append(v.Refs,
		vmRef{Name: "code", Ref: c.Code.Ref, UseLatest: c.Code.UseLatest},
		vmRef{Name: "runtime", Ref: c.Runtime.Ref, UseLatest: c.Runtime.UseLatest})
	if c.Data != nil {
		v.Refs = append(v.Refs, vmRef{Name: "data", Ref: c.Data.Ref, UseLatest: c.Data.UseLatest})
	}
	v.Refs = append(v.Refs, volumeRefs(c.Volumes)...)
	return v
}

func vmOfInstance(c *message.InstanceContent) *vmView {
	v := &vmView{Type: "instance", Base: &c.BaseContent, AllowAmend: c.AllowAmend}
	if c.Replaces != nil {
		v.Replaces = *c.Replaces
	}
	v.Refs = append(v.Refs, vmRef{Name: "rootfs", Ref: c.RootFS.Parent.Ref, UseLatest: c.RootFS.Parent.UseLatest, SizeMiB: c.RootFS.SizeMiB})
	v.Refs = append(v.Refs, volumeRefs(c.Volumes)...)
	return v
}

// checkVM: the sender must be allowed to act for the owner; replaces must name
// a known VM (retry 300) of the same owner (2) that is no update itself (303)
// and allows amends (302); every referenced STORE must be known (retry 301,
// details: the missing refs), through its file tag with use_latest and through
// the STORE message otherwise; a volume copied from a file of known size must
// be at least as large (304). A VM that replaces a VM forgotten before it came
// is forgotten on arrival, as the forget would have cascaded to it.
func (p *Pipeline) checkVM(ctx context.Context, tx store.Tx, it *item, v *vmView) (*plan, error) {
	m := &it.p.Message
	owner := v.Base.Address
	if err := authorize(ctx, tx, actOf(m, owner)); err != nil {
		return nil, err
	}
	if v.Replaces != "" {
		target, err := tx.GetVM(ctx, v.Replaces)
		switch {
		case errors.Is(err, store.ErrNotFound):
			sk, ferr := tx.GetForgotten(ctx, v.Replaces)
			if ferr != nil && !errors.Is(ferr, store.ErrNotFound) {
				return nil, fmt.Errorf("get forgotten vm: %w", ferr)
			}
			if ferr == nil && (sk.Type == message.TypeProgram || sk.Type == message.TypeInstance) {
				if !strings.EqualFold(sk.Owner, owner) {
					return nil, fail(message.CodePermissionDenied, "content.replaces", "VM %s belongs to %s", chain.Clip(v.Replaces), chain.Clip(sk.Owner))
				}
				return &plan{forget: forgottenOnArrival(it, sk)}, nil
			}
			return nil, fail(message.CodeVMRefNotFound, "content.replaces", "VM %s not found", chain.Clip(v.Replaces))
		case err != nil:
			return nil, fmt.Errorf("get replaced vm: %w", err)
		case !strings.EqualFold(target.Owner, owner):
			return nil, fail(message.CodePermissionDenied, "content.replaces", "VM %s belongs to %s", chain.Clip(v.Replaces), chain.Clip(target.Owner))
		case target.Replaces != "":
			return nil, fail(message.CodeVMUpdateUpdate, "content.replaces", "VM %s is itself an update; replace the original", chain.Clip(v.Replaces))
		case !target.AllowAmend:
			return nil, fail(message.CodeVMAmendNotAllowed, "content.replaces", "VM %s does not allow amends", chain.Clip(v.Replaces))
		}
	}
	files := make([]string, len(v.Refs))
	var missing []string
	for i, r := range v.Refs {
		h, err := resolveRef(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		if h == "" {
			if !slices.Contains(missing, r.Ref) {
				missing = append(missing, r.Ref)
			}
			continue
		}
		files[i] = h
	}
	if len(missing) > 0 {
		return nil, failDetails(message.CodeVMVolumeNotFound, missing, "%d referenced STOREs not found", len(missing))
	}
	for i, r := range v.Refs {
		if r.SizeMiB <= 0 {
			continue
		}
		f, err := tx.GetFile(ctx, files[i])
		if errors.Is(err, store.ErrNotFound) {
			continue // size unknown until the file is fetched
		}
		if err != nil {
			return nil, fmt.Errorf("get volume parent file: %w", err)
		}
		if size := int64(r.SizeMiB) * mib; f.Size > 0 && size < f.Size {
			return nil, failDetails(message.CodeVMVolumeTooSmall, map[string]any{
				"volume_name": r.Name, "parent_ref": r.Ref, "parent_file": files[i],
				"parent_size": f.Size, "volume_size": size,
			}, "%s is %d MiB, smaller than its parent file (%d bytes)", r.Name, r.SizeMiB, f.Size)
		}
	}
	var refs []string
	for _, r := range v.Refs {
		if !slices.Contains(refs, r.Ref) {
			refs = append(refs, r.Ref)
		}
	}
	vm := &store.VM{
		ItemHash: m.ItemHash, Owner: owner, Type: v.Type, AllowAmend: v.AllowAmend,
		Replaces: v.Replaces, Refs: refs, Content: it.raw, Created: v.Base.Time,
	}
	return &plan{apply: func(ctx context.Context, tx store.Tx, _ *store.Message) ([]events.Event, error) {
		if err := tx.InsertVM(ctx, vm); err != nil {
			return nil, fmt.Errorf("insert vm: %w", err)
		}
		return nil, nil
	}}, nil
}

// resolveRef returns the file hash a VM ref resolves to, "" when unknown:
// through the file tag with use_latest, through the STORE message otherwise.
func resolveRef(ctx context.Context, tx store.Tx, r vmRef) (string, error) {
	if r.UseLatest {
		tag, err := tx.GetFileTag(ctx, r.Ref)
		if errors.Is(err, store.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("get file tag: %w", err)
		}
		return tag.FileHash, nil
	}
	sm, err := tx.GetMessage(ctx, r.Ref)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get referenced store: %w", err)
	}
	if sm.Type != message.TypeStore {
		return "", nil
	}
	return sm.ContentItemHash, nil
}
