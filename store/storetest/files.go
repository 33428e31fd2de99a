package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/store"
)

func testFiles(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	f1, f2, f3 := hashOf("file1"), hashOf("file2"), hashOf("file3")
	store1, store2, store3, store4 := hashOf("store1"), hashOf("store2"), hashOf("store3"), hashOf("store4")
	deleteBy := baseTime.Add(24 * time.Hour)

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.GetFile(ctx, f1)
		wantErr(t, err, store.ErrNotFound, "missing file")
		if err := tx.PutFile(ctx, &store.File{Hash: f1, Size: 10, Type: "file"}); err != nil {
			return err
		}
		// PutFile replaces.
		if err := tx.PutFile(ctx, &store.File{Hash: f1, Size: 11, Type: "dir"}); err != nil {
			return err
		}
		got, err := tx.GetFile(ctx, f1)
		if err != nil {
			return err
		}
		if got.Hash != f1 || got.Size != 11 || got.Type != "dir" {
			t.Errorf("file = %+v", got)
		}
		pins := []*store.FilePin{
			// store1: no ref, tag = its item hash.
			{FileHash: f1, Type: store.PinMessage, Owner: "0xA", ItemHash: store1, Created: 100},
			// store2 and store3: the same user ref, tag "0xA/avatar"; store3 is newer.
			{FileHash: f2, Type: store.PinMessage, Owner: "0xA", ItemHash: store2, Ref: "avatar", Created: 200},
			{FileHash: f3, Type: store.PinMessage, Owner: "0xA", ItemHash: store3, Ref: "avatar", Created: 300},
			// store4 updates store1 by hash ref: tag = store1.
			{FileHash: f2, Type: store.PinMessage, Owner: "0xA", ItemHash: store4, Ref: store1, Created: 150},
			// Content pin of the same message, and grace pins without a message.
			{FileHash: f1, Type: store.PinContent, Owner: "0xA", ItemHash: store1, Created: 100},
			{FileHash: f1, Type: store.PinGracePeriod, Created: 1, DeleteBy: &deleteBy},
			{FileHash: f1, Type: store.PinGracePeriod, Created: 2, DeleteBy: &deleteBy},
		}
		for i, p := range pins {
			if err := tx.InsertFilePin(ctx, p); err != nil {
				return fmt.Errorf("pin %d: %w", i, err)
			}
		}
		wantErr(t, tx.InsertFilePin(ctx, &store.FilePin{FileHash: f3, Type: store.PinMessage, ItemHash: store1, Created: 5}),
			store.ErrConflict, "second message pin of one message")
		n, err := tx.CountFilePins(ctx, f1)
		if err != nil {
			return err
		}
		if n != 4 {
			t.Errorf("pins on f1 in tx = %d, want 4", n)
		}
		return nil
	})
	count := func(h string) int {
		t.Helper()
		n, err := s.CountFilePins(ctx, h)
		noErr(t, err, "count pins")
		return n
	}
	if a, b, c, d := count(f1), count(f2), count(f3), count(hashOf("none")); a != 4 || b != 2 || c != 1 || d != 0 {
		t.Errorf("pin counts = %d %d %d %d, want 4 2 1 0", a, b, c, d)
	}

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		cases := []struct {
			tag, wantItem string
			wantRef       string
		}{
			{"0xA/avatar", store3, "avatar"},
			{store1, store4, store1}, // the hash-ref update is newer than the original
			{store2, "", ""},         // store2 has a user ref: its tag is not its hash
		}
		for _, c := range cases {
			p, err := tx.LatestPinForTag(ctx, c.tag)
			if c.wantItem == "" {
				wantErr(t, err, store.ErrNotFound, "tag "+c.tag)
				continue
			}
			if err != nil {
				return fmt.Errorf("tag %s: %w", c.tag, err)
			}
			if p.ItemHash != c.wantItem || p.Ref != c.wantRef || p.Type != store.PinMessage || p.Owner != "0xA" {
				t.Errorf("latest pin for %s = %+v, want item %s", c.tag, p, c.wantItem)
			}
		}
		// Forget store4 and store3: the tags fall back to the older pins.
		if err := tx.DeleteFilePins(ctx, store4, store.PinMessage); err != nil {
			return err
		}
		if err := tx.DeleteFilePins(ctx, store3, store.PinMessage); err != nil {
			return err
		}
		p, err := tx.LatestPinForTag(ctx, store1)
		if err != nil {
			return err
		}
		if p.ItemHash != store1 || p.Created != 100 || p.FileHash != f1 {
			t.Errorf("tag store1 after forget = %+v", p)
		}
		p, err = tx.LatestPinForTag(ctx, "0xA/avatar")
		if err != nil {
			return err
		}
		if p.ItemHash != store2 {
			t.Errorf("tag avatar after forget = %+v", p)
		}
		_, err = tx.LatestPinForTag(ctx, "0xB/avatar")
		wantErr(t, err, store.ErrNotFound, "other owner's tag")
		// Content pins are not message pins.
		if err := tx.DeleteFilePins(ctx, store1, store.PinMessage); err != nil {
			return err
		}
		_, err = tx.LatestPinForTag(ctx, store1)
		wantErr(t, err, store.ErrNotFound, "tag with only a content pin left")
		return nil
	})
	if n := count(f1); n != 3 {
		t.Errorf("pins on f1 after deletes = %d, want 3 (content + 2 grace)", n)
	}

	// File tags.
	tag := &store.FileTag{Tag: "0xA/avatar", Owner: "0xA", FileHash: f3, LastUpdated: 300}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.GetFileTag(ctx, tag.Tag)
		wantErr(t, err, store.ErrNotFound, "missing tag")
		if err := tx.PutFileTag(ctx, tag); err != nil {
			return err
		}
		return tx.PutFileTag(ctx, &store.FileTag{Tag: tag.Tag, Owner: "0xA", FileHash: f2, LastUpdated: 200})
	})
	got, err := s.GetFileTag(ctx, tag.Tag)
	noErr(t, err, "get tag")
	if got.FileHash != f2 || got.LastUpdated != 200 || got.Owner != "0xA" || got.Tag != tag.Tag {
		t.Errorf("tag = %+v", got)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.DeleteFileTag(ctx, tag.Tag); err != nil {
			return err
		}
		return tx.DeleteFileTag(ctx, tag.Tag)
	})
	_, err = s.GetFileTag(ctx, tag.Tag)
	wantErr(t, err, store.ErrNotFound, "deleted tag")
}

func testVMs(t *testing.T, open Opener) {
	s := open(t)
	code, runtime, data := hashOf("code"), hashOf("runtime"), hashOf("data")
	prog := &store.VM{ItemHash: hashOf("prog"), Owner: "0xA", Type: "program", AllowAmend: true,
		Refs: []string{code, runtime, code}, Content: []byte(`{"type":"vm-function", "on": {"http": true}}`), Created: 100}
	inst := &store.VM{ItemHash: hashOf("inst"), Owner: "0xB", Type: "instance", Refs: []string{runtime, data},
		Content: []byte(`{"rootfs":{}}`), Created: 90}
	upd1 := &store.VM{ItemHash: hashOf("upd1"), Owner: "0xA", Type: "program", Replaces: prog.ItemHash, Content: []byte(`{}`), Created: 200}
	upd2 := &store.VM{ItemHash: hashOf("upd2"), Owner: "0xA", Type: "program", Replaces: prog.ItemHash, Content: []byte(`{}`), Created: 150}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, v := range []*store.VM{prog, inst, upd1, upd2} {
			if err := tx.InsertVM(ctx, v); err != nil {
				return err
			}
		}
		wantErr(t, tx.InsertVM(ctx, prog), store.ErrConflict, "duplicate vm")
		got, err := tx.GetVM(ctx, prog.ItemHash)
		if err != nil {
			return err
		}
		if got.Owner != prog.Owner || got.Type != prog.Type || !got.AllowAmend || got.Replaces != "" ||
			string(got.Content) != string(prog.Content) || got.Created != prog.Created || fmt.Sprint(got.Refs) != fmt.Sprint(prog.Refs) {
			t.Errorf("vm = %+v", got)
		}
		got, err = tx.GetVM(ctx, upd1.ItemHash)
		if err != nil {
			return err
		}
		if got.Replaces != prog.ItemHash || got.AllowAmend || len(got.Refs) != 0 {
			t.Errorf("update vm = %+v", got)
		}
		_, err = tx.GetVM(ctx, hashOf("none"))
		wantErr(t, err, store.ErrNotFound, "missing vm")

		using := func(ref string) string {
			t.Helper()
			list, err := tx.VMsUsingRef(ctx, ref)
			noErr(t, err, "vms using ref")
			return fmt.Sprint(list)
		}
		both := fmt.Sprint([]string{inst.ItemHash, prog.ItemHash})
		if prog.ItemHash < inst.ItemHash {
			both = fmt.Sprint([]string{prog.ItemHash, inst.ItemHash})
		}
		if got := using(runtime); got != both {
			t.Errorf("vms using runtime = %s, want %s", got, both)
		}
		if got := using(code); got != fmt.Sprint([]string{prog.ItemHash}) {
			t.Errorf("vms using code = %s", got)
		}
		if got := using(hashOf("unused")); got != "[]" {
			t.Errorf("vms using an unused store = %s", got)
		}
		updates, err := tx.VMUpdates(ctx, prog.ItemHash)
		if err != nil {
			return err
		}
		if fmt.Sprint(updates) != fmt.Sprint([]string{upd2.ItemHash, upd1.ItemHash}) {
			t.Errorf("updates = %v, want upd2 then upd1 (by creation)", updates)
		}
		if err := tx.DeleteVM(ctx, prog.ItemHash); err != nil {
			return err
		}
		if err := tx.DeleteVM(ctx, prog.ItemHash); err != nil {
			return err
		}
		if got := using(code); got != "[]" {
			t.Errorf("vms using code after delete = %s", got)
		}
		if got := using(runtime); got != fmt.Sprint([]string{inst.ItemHash}) {
			t.Errorf("vms using runtime after delete = %s", got)
		}
		return nil
	})
}
