package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// testFileGC covers the garbage collector's queries: grace pins expire
// strictly before the given instant, a file is unpinned only when no pin of
// any type holds it, and DeleteFileIfUnpinned sees the transaction's own pins.
func testFileGC(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	fa, fb, fc, fd, fe, ff := hashOf("gc a"), hashOf("gc b"), hashOf("gc c"), hashOf("gc d"), hashOf("gc e"), hashOf("gc f")
	soon, later := baseTime.Add(time.Hour), baseTime.Add(2*time.Hour)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, h := range []string{fa, fb, fc, fd, fe, ff} {
			if err := tx.PutFile(ctx, &store.File{Hash: h, Size: 7, Type: "file"}); err != nil {
				return err
			}
		}
		pins := []*store.FilePin{
			{FileHash: fa, Type: store.PinGracePeriod, Created: 1, DeleteBy: &soon},
			{FileHash: fb, Type: store.PinGracePeriod, Created: 1, DeleteBy: &later},
			{FileHash: fc, Type: store.PinMessage, Owner: "0xA", ItemHash: hashOf("gc store"), Created: 1},
			{FileHash: fe, Type: store.PinContent, Owner: "0xA", ItemHash: hashOf("gc post"), Created: 1},
			// Two uploads of one file: grace pins without an item hash never collide.
			{FileHash: ff, Type: store.PinGracePeriod, Created: 1, DeleteBy: &soon},
			{FileHash: ff, Type: store.PinGracePeriod, Created: 2, DeleteBy: &later},
		}
		for i, p := range pins {
			if err := tx.InsertFilePin(ctx, p); err != nil {
				return fmt.Errorf("pin %d: %w", i, err)
			}
		}
		return nil
	})
	unpinned := func(tx store.Tx, limit int) string {
		t.Helper()
		fs, err := tx.UnpinnedFiles(ctx, limit)
		noErr(t, err, "unpinned files")
		var hs []string
		for _, f := range fs {
			if f.Size != 7 || f.Type != "file" {
				t.Errorf("unpinned file row %+v", f)
			}
			hs = append(hs, f.Hash)
		}
		return fmt.Sprint(hs)
	}
	sorted := func(hs ...string) string {
		slices.Sort(hs)
		return fmt.Sprint(hs)
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if got := unpinned(tx, 10); got != sorted(fd) {
			t.Errorf("unpinned before expiry = %s, want %s", got, sorted(fd))
		}
		n, err := tx.ExpireGracePins(ctx, soon)
		if err != nil || n != 0 {
			t.Errorf("expire at delete_by = %d, %v; want 0 (strictly before)", n, err)
		}
		n, err = tx.ExpireGracePins(ctx, soon.Add(time.Nanosecond))
		if err != nil || n != 2 {
			t.Errorf("expire after delete_by = %d, %v; want 2 (fa's and one of ff's)", n, err)
		}
		if got := unpinned(tx, 10); got != sorted(fa, fd) {
			t.Errorf("unpinned after expiry = %s, want %s", got, sorted(fa, fd))
		}
		if got := unpinned(tx, 1); got != fmt.Sprint([]string{min(fa, fd)}) {
			t.Errorf("unpinned limit 1 = %s", got)
		}
		if got := unpinned(tx, 0); got != "[]" {
			t.Errorf("unpinned limit 0 = %s", got)
		}
		// A pin made in the transaction keeps its file.
		if err := tx.InsertFilePin(ctx, &store.FilePin{FileHash: fa, Type: store.PinMessage, Owner: "0xA", ItemHash: hashOf("gc repin"), Created: 3}); err != nil {
			return err
		}
		for _, c := range []struct {
			hash string
			want bool
		}{{fa, false}, {fb, false}, {fc, false}, {fe, false}, {ff, false}, {fd, true}, {fd, false}, {hashOf("gc none"), false}} {
			ok, err := tx.DeleteFileIfUnpinned(ctx, c.hash)
			if err != nil {
				return err
			}
			if ok != c.want {
				t.Errorf("delete %s if unpinned = %v, want %v", c.hash[:8], ok, c.want)
			}
		}
		_, err = tx.GetFile(ctx, fd)
		wantErr(t, err, store.ErrNotFound, "deleted file")
		// Expiring everything leaves message and content pins.
		n, err = tx.ExpireGracePins(ctx, later.Add(time.Hour))
		if err != nil || n != 2 {
			t.Errorf("expire all = %d, %v; want 2", n, err)
		}
		if got := unpinned(tx, 10); got != sorted(fb, ff) {
			t.Errorf("unpinned at the end = %s, want %s", got, sorted(fb, ff))
		}
		return nil
	})
	if _, err := s.GetFile(ctx, fd); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reader get deleted file: %v", err)
	}
	got, err := s.GetFile(ctx, fa)
	noErr(t, err, "reader get file")
	if got.Hash != fa || got.Size != 7 || got.Type != "file" {
		t.Errorf("reader file = %+v", got)
	}
	if n, err := s.CountFilePins(ctx, fa); err != nil || n != 1 {
		t.Errorf("pins of fa = %d, %v; want the message pin", n, err)
	}
}

// testStorePins covers GetStorePin and OwnerFiles.
func testStorePins(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	f1, f2, f3 := hashOf("of 1"), hashOf("of 2"), hashOf("of 3")
	s1, s2, s3, sB := hashOf("of store1"), hashOf("of store2"), hashOf("of store3"), hashOf("of storeB")
	post := hashOf("of post")
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutFile(ctx, &store.File{Hash: f1, Size: 10, Type: "file"}); err != nil {
			return err
		}
		if err := tx.PutFile(ctx, &store.File{Hash: f2, Size: 20, Type: "dir"}); err != nil {
			return err
		}
		// f3 has no row: a STORE processed before its file was known.
		pins := []*store.FilePin{
			{FileHash: f1, Type: store.PinMessage, Owner: "0xA", ItemHash: s1, Ref: "r", Created: 100},
			{FileHash: f2, Type: store.PinMessage, Owner: "0xA", ItemHash: s2, Created: 200},
			{FileHash: f3, Type: store.PinMessage, Owner: "0xA", ItemHash: s3, Created: 200},
			{FileHash: f1, Type: store.PinMessage, Owner: "0xB", ItemHash: sB, Created: 50},
			// Neither a content pin nor a grace pin is an owner's file.
			{FileHash: f2, Type: store.PinContent, Owner: "0xA", ItemHash: post, Created: 300},
			{FileHash: f1, Type: store.PinGracePeriod, Owner: "0xA", Created: 400, DeleteBy: &baseTime},
		}
		for i, p := range pins {
			if err := tx.InsertFilePin(ctx, p); err != nil {
				return fmt.Errorf("pin %d: %w", i, err)
			}
		}
		return nil
	})

	p, err := s.GetStorePin(ctx, s1)
	noErr(t, err, "get store pin")
	if p.FileHash != f1 || p.Type != store.PinMessage || p.Owner != "0xA" || p.ItemHash != s1 || p.Ref != "r" || p.Created != 100 || p.DeleteBy != nil {
		t.Errorf("store pin = %+v", p)
	}
	_, err = s.GetStorePin(ctx, post)
	wantErr(t, err, store.ErrNotFound, "store pin of a message with only a content pin")
	_, err = s.GetStorePin(ctx, hashOf("of none"))
	wantErr(t, err, store.ErrNotFound, "store pin of an unknown hash")

	// s2 and s3 tie on created: ties go by item hash ascending.
	tieLo, tieHi := s2, s3
	if tieHi < tieLo {
		tieLo, tieHi = tieHi, tieLo
	}
	row := map[string]string{
		s1: fmt.Sprint(f1, 10, "file", 100.0, s1),
		s2: fmt.Sprint(f2, 20, "dir", 200.0, s2),
		s3: fmt.Sprint(f3, 0, "file", 200.0, s3),
	}
	cases := []struct {
		name  string
		owner string
		order store.SortOrder
		page  store.Page
		want  []string
	}{
		{"ascending", "0xA", store.Ascending, store.Page{}, []string{s1, tieLo, tieHi}},
		{"descending", "0xA", store.Descending, store.Page{}, []string{tieLo, tieHi, s1}},
		{"page 1 of 2", "0xA", store.Ascending, store.Page{Size: 2, Number: 1}, []string{s1, tieLo}},
		{"page 2 of 2", "0xA", store.Ascending, store.Page{Size: 2, Number: 2}, []string{tieHi}},
		{"past the end", "0xA", store.Ascending, store.Page{Size: 2, Number: 3}, nil},
		{"cursor ignored", "0xA", store.Descending, store.Page{Size: 1, Number: 2, Cursor: &store.Cursor{Time: 1}}, []string{tieHi}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, total, size, err := s.OwnerFiles(ctx, c.owner, c.order, c.page)
			noErr(t, err, "owner files")
			if total != 3 || size != 30 {
				t.Errorf("totals = %d files, %d bytes; want 3, 30", total, size)
			}
			var got, want []string
			for _, f := range fs {
				got = append(got, fmt.Sprint(f.FileHash, f.Size, f.Type, f.Created, f.ItemHash))
			}
			for _, h := range c.want {
				want = append(want, row[h])
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("files =\n%v\nwant\n%v", got, want)
			}
		})
	}
	fs, total, size, err := s.OwnerFiles(ctx, "0xNobody", store.Descending, store.Page{})
	noErr(t, err, "owner files of nobody")
	if len(fs) != 0 || total != 0 || size != 0 {
		t.Errorf("nobody's files = %v, %d, %d", fs, total, size)
	}
}
