package pipeline

import (
	"encoding/json"
	"testing"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

func TestStores(t *testing.T) {
	alice, bob := account(t, "alice"), account(t, "bob")
	s1 := build(t, "s1", alice, message.TypeStore, storeContent("f1", ""), "", 0)
	s2 := build(t, "s2", alice, message.TypeStore, storeContent("f2", s1.hash), "", 20)
	s2old := build(t, "s2old", alice, message.TypeStore, storeContent("f3", s1.hash), "", 10)
	s3 := build(t, "s3", alice, message.TypeStore, storeContent("f4", s2.hash), "", 30)
	unknown := build(t, "unknown", alice, message.TypeStore, storeContent("f5", fileHash("no such store")), "", 31)
	bobRef := build(t, "bobRef", bob, message.TypeStore, storeContent("f6", s1.hash), "", 32)
	p := build(t, "p", alice, message.TypePost, post("x", `{}`), "", 1)
	refPost := build(t, "refPost", alice, message.TypeStore, storeContent("f7", p.hash), "", 33)
	u1 := build(t, "u1", alice, message.TypeStore, storeContent("u1", "my-file"), "", 40)
	u2 := build(t, "u2", alice, message.TypeStore, storeContent("u2", "my-file"), "", 50)
	bobU := build(t, "bobU", bob, message.TypeStore, storeContent("bu", "my-file"), "", 45)
	credit := build(t, "credit", alice, message.TypeStore, &message.StoreContent{ItemType: message.ItemStorage, ItemHash: fileHash("c"),
		Payment: &message.Payment{Type: message.PaymentCredit}}, "", 60)

	tag := func(tag, file string) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			t.Helper()
			ft := e.fileTag(tag)
			if ft == nil || ft.FileHash != fileHash(file) {
				t.Errorf("tag %s = %+v, want file %s", tag, ft, file)
			}
		}
	}
	runScenarios(t, Config{MaxRetries: 2}, []scenario{
		{name: "original", msgs: []*msg{s1}, want: []outcome{processed(s1)}, check: func(t *testing.T, e *env) {
			tag(s1.hash, "f1")(t, e)
			if n, err := e.store.CountFilePins(e.ctx, fileHash("f1")); err != nil || n != 1 {
				t.Errorf("pins of f1 = %d (%v), want 1", n, err)
			}
			m, err := e.store.GetMessage(e.ctx, s1.hash)
			if err != nil || m.ContentItemHash != fileHash("f1") || m.PaymentType != "hold" || m.Owner != alice.Address() {
				t.Errorf("message row = %+v (%v)", m, err)
			}
		}},
		{name: "update moves the tag", msgs: []*msg{s1, s2}, want: []outcome{processed(s2)}, check: tag(s1.hash, "f2")},
		{name: "older update does not move the tag", msgs: []*msg{s1, s2, s2old}, want: []outcome{processed(s2old)}, check: tag(s1.hash, "f2")},
		{name: "update before its original: retried", msgs: []*msg{s2, s1}, want: []outcome{processed(s2)}, check: tag(s1.hash, "f2")},
		{name: "update of an update: 201", msgs: []*msg{s1, s2, s3}, want: []outcome{rejected(s3, message.CodeStoreUpdateUpdate)}},
		{name: "unknown ref: 200", msgs: []*msg{unknown}, want: []outcome{rejected(unknown, message.CodeStoreRefNotFound)}},
		{name: "ref to a non-STORE: 200", msgs: []*msg{p, refPost}, want: []outcome{rejected(refPost, message.CodeStoreRefNotFound)}},
		{name: "tag of another owner: 2", msgs: []*msg{s1, bobRef}, want: []outcome{rejected(bobRef, message.CodePermissionDenied)}, check: tag(s1.hash, "f1")},
		{name: "user refs are per owner", msgs: []*msg{u2, u1, bobU}, want: []outcome{processed(u1), processed(u2), processed(bobU)}, check: func(t *testing.T, e *env) {
			tag(alice.Address()+"/my-file", "u2")(t, e)
			tag(bob.Address()+"/my-file", "bu")(t, e)
		}},
		{name: "payment type", msgs: []*msg{credit}, want: []outcome{processed(credit)}, check: func(t *testing.T, e *env) {
			if m, err := e.store.GetMessage(e.ctx, credit.hash); err != nil || m.PaymentType != "credit" {
				t.Errorf("payment type = %+v (%v)", m, err)
			}
		}},
	})
}

func program(code, runtime string, useLatest, allowAmend bool, replaces string) *message.ProgramContent {
	c := &message.ProgramContent{
		Type:    message.ProgramTypeVMFunction,
		Code:    message.CodeContent{Encoding: message.EncodingZip, Entrypoint: "main:app", Ref: code, UseLatest: useLatest},
		Runtime: message.FunctionRuntime{Ref: runtime, UseLatest: useLatest, Comment: "runtime"},
		On:      message.FunctionTriggers{HTTP: true},
	}
	c.AllowAmend = allowAmend
	c.Resources = message.MachineResources{VCPUs: 1, Memory: 128, Seconds: 30}
	c.Volumes = []message.MachineVolume{}
	c.Metadata = json.RawMessage(`{"tags":["vm"]}`)
	if replaces != "" {
		c.Replaces = &replaces
	}
	return c
}

func instance(parent string, sizeMiB int, volumes ...message.MachineVolume) *message.InstanceContent {
	c := &message.InstanceContent{RootFS: message.RootFSVolume{
		Parent: message.VolumeParent{Ref: parent}, Persistence: "host", SizeMiB: sizeMiB}}
	c.Resources = message.MachineResources{VCPUs: 1, Memory: 128, Seconds: 30}
	c.Volumes = append([]message.MachineVolume{}, volumes...)
	return c
}

func TestVMs(t *testing.T) {
	alice, bob := account(t, "alice"), account(t, "bob")
	code := build(t, "code", alice, message.TypeStore, storeContent("code", ""), "", 0)
	rt := build(t, "rt", alice, message.TypeStore, storeContent("rt", ""), "", 1)
	rootfs := build(t, "rootfs", alice, message.TypeStore, storeContent("rootfs", ""), "", 2)
	prog := build(t, "prog", alice, message.TypeProgram, program(code.hash, rt.hash, false, true, ""), "", 10)
	progLatest := build(t, "progLatest", alice, message.TypeProgram, program(code.hash, rt.hash, true, false, ""), "", 11)
	fixed := build(t, "fixed", alice, message.TypeProgram, program(code.hash, rt.hash, false, false, ""), "", 12)
	update := build(t, "update", alice, message.TypeProgram, program(code.hash, rt.hash, false, true, prog.hash), "", 20)
	updateOfUpdate := build(t, "updateOfUpdate", alice, message.TypeProgram, program(code.hash, rt.hash, false, true, update.hash), "", 30)
	updateFixed := build(t, "updateFixed", alice, message.TypeProgram, program(code.hash, rt.hash, false, true, fixed.hash), "", 31)
	updateUnknown := build(t, "updateUnknown", alice, message.TypeProgram, program(code.hash, rt.hash, false, true, fileHash("no vm")), "", 32)
	bobUpdate := build(t, "bobUpdate", bob, message.TypeProgram, program(code.hash, rt.hash, false, true, prog.hash), "", 33)
	small := build(t, "small", alice, message.TypeInstance, instance(rootfs.hash, 1), "", 40)
	big := build(t, "big", alice, message.TypeInstance, instance(rootfs.hash, 4, message.MachineVolume{
		Persistent: &message.PersistentVolume{Name: "data", SizeMiB: 1, Parent: &message.VolumeParent{Ref: code.hash}}}), "", 41)

	seedFile := func(name string, size int64) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			if err := e.store.Update(e.ctx, func(tx store.Tx) error {
				return tx.PutFile(e.ctx, &store.File{Hash: fileHash(name), Size: size, Type: "file"})
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env)
		msgs  []*msg
		want  []outcome
		check func(t *testing.T, e *env)
	}{
		{name: "refs by message", msgs: []*msg{code, rt, prog}, want: []outcome{processed(prog)}, check: func(t *testing.T, e *env) {
			var vm *store.VM
			e.read(func(tx store.Tx) (err error) { vm, err = tx.GetVM(e.ctx, prog.hash); return })
			if vm.Type != "program" || vm.Owner != alice.Address() || !vm.AllowAmend || len(vm.Refs) != 2 || vm.Refs[0] != code.hash || vm.Refs[1] != rt.hash {
				t.Errorf("vm row = %+v", vm)
			}
			if m, _ := e.store.GetMessage(e.ctx, prog.hash); m.PaymentType != "hold" || len(m.Tags) != 1 {
				t.Errorf("message row = %+v", m)
			}
		}},
		{name: "refs by tag", msgs: []*msg{code, rt, progLatest}, want: []outcome{processed(progLatest)}},
		{name: "refs before their stores: retried", msgs: []*msg{prog, code, rt}, want: []outcome{processed(prog)}},
		{name: "missing refs: 301", msgs: []*msg{rt, prog}, want: []outcome{rejected(prog, message.CodeVMVolumeNotFound)}, check: func(t *testing.T, e *env) {
			r, err := e.store.GetRejected(e.ctx, prog.hash)
			if err != nil || string(r.Details) != `["`+code.hash+`"]` {
				t.Errorf("details = %s (%v)", r.Details, err)
			}
		}},
		{name: "update", msgs: []*msg{code, rt, prog, update}, want: []outcome{processed(update)}},
		{name: "update of an update: 303", msgs: []*msg{code, rt, prog, update, updateOfUpdate}, want: []outcome{rejected(updateOfUpdate, message.CodeVMUpdateUpdate)}},
		{name: "update of a VM without allow_amend: 302", msgs: []*msg{code, rt, fixed, updateFixed}, want: []outcome{rejected(updateFixed, message.CodeVMAmendNotAllowed)}},
		{name: "update of an unknown VM: 300", msgs: []*msg{code, rt, updateUnknown}, want: []outcome{rejected(updateUnknown, message.CodeVMRefNotFound)}},
		{name: "update by another owner: 2", msgs: []*msg{code, rt, prog, bobUpdate}, want: []outcome{rejected(bobUpdate, message.CodePermissionDenied)}},
		{name: "volume size unknown: accepted", msgs: []*msg{rootfs, small}, want: []outcome{processed(small)}},
		{name: "rootfs smaller than its parent: 304", setup: seedFile("rootfs", 2*mib), msgs: []*msg{rootfs, small}, want: []outcome{rejected(small, message.CodeVMVolumeTooSmall)},
			check: func(t *testing.T, e *env) {
				r, _ := e.store.GetRejected(e.ctx, small.hash)
				var d map[string]any
				if r == nil || json.Unmarshal(r.Details, &d) != nil || d["volume_name"] != "rootfs" || d["parent_ref"] != rootfs.hash ||
					d["parent_size"] != float64(2*mib) || d["volume_size"] != float64(mib) || d["parent_file"] != fileHash("rootfs") {
					t.Errorf("details = %+v", r)
				}
			}},
		{name: "persistent volume smaller than its parent: 304", setup: seedFile("code", 2*mib), msgs: []*msg{rootfs, code, big}, want: []outcome{rejected(big, message.CodeVMVolumeTooSmall)}},
		{name: "volumes large enough", setup: seedFile("rootfs", 2*mib), msgs: []*msg{rootfs, code, big}, want: []outcome{processed(big)}},
	}
	forBackends(t, func(t *testing.T, pg bool) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, envOpts{cfg: Config{MaxRetries: 2}, postgres: pg})
				if tc.setup != nil {
					tc.setup(t, e)
				}
				e.ingest(tc.msgs...)
				e.settle()
				e.want(tc.want...)
				if tc.check != nil {
					tc.check(t, e)
				}
			})
		}
	})
}
