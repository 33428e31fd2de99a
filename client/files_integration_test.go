package client_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// TestIntegrationFiles uploads through both engines to a real node, from a
// seekable reader and from a plain one, and reads everything back.
func TestIntegrationFiles(t *testing.T) {
	base := nodetest.Start(t)
	ctx := testCtx(t)
	owner := newAccount(t)
	c := client.New(base, client.WithSigner(owner))
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	type plain struct{ io.Reader } // hides Seek: the client spools it

	var uploads []*client.UploadResult
	for _, tc := range []struct {
		name   string
		engine message.ItemType
		data   []byte
		reader func([]byte) io.Reader
	}{
		{"storage, seekable", message.ItemStorage, random(700 << 10), func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"storage, plain reader", message.ItemStorage, random(10 << 10), func(b []byte) io.Reader { return plain{bytes.NewReader(b)} }},
		{"ipfs, seekable", message.ItemIPFS, random(3<<20 + 9), func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"ipfs, plain reader", message.ItemIPFS, []byte("hello world\n"), func(b []byte) io.Reader { return plain{bytes.NewReader(b)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var last int64
			up, err := c.UploadFile(ctx, tc.reader(tc.data), client.UploadOptions{
				Engine: tc.engine, Ref: tc.name, Metadata: map[string]any{"test": tc.name},
				WriteOptions: client.WriteOptions{Channel: "FILES", Sync: true},
				Progress:     func(n int64) { last = n },
				TempDir:      t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if up.Status != message.StatusProcessed || up.Size != int64(len(tc.data)) || up.Engine != tc.engine || last != int64(len(tc.data)) {
				t.Fatalf("upload %+v (progress %d)", up, last)
			}
			uploads = append(uploads, up)
			var out bytes.Buffer
			d, err := c.DownloadFile(ctx, up.FileHash, &out, 0)
			if err != nil || !d.Verified || !bytes.Equal(out.Bytes(), tc.data) {
				t.Fatalf("download %+v, %v (%d bytes)", d, err, out.Len())
			}
			// Resume from the middle: only the tail comes.
			half := int64(len(tc.data) / 2)
			out.Reset()
			d, err = c.DownloadFile(ctx, up.FileHash, &out, half)
			if err != nil || !bytes.Equal(out.Bytes(), tc.data[half:]) || d.Size != int64(len(tc.data)) || (half > 0 && !d.Resumed) {
				t.Fatalf("resumed download %+v, %v", d, err)
			}
			head, err := c.HeadFile(ctx, up.FileHash)
			if err != nil || head.Size != int64(len(tc.data)) {
				t.Errorf("head %+v, %v", head, err)
			}
			md, err := c.FileMetadata(ctx, up.FileHash)
			if err != nil || md.FileHash != up.FileHash || md.Size != int64(len(tc.data)) || md.Type != "file" {
				t.Errorf("metadata %+v, %v", md, err)
			}
			ref, err := c.FileByMessageHash(ctx, up.ItemHash)
			if err != nil || ref.FileHash != up.FileHash || ref.Owner != owner.Address() {
				t.Errorf("by message hash %+v, %v", ref, err)
			}
			ref, err = c.FileByRef(ctx, owner.Address(), tc.name)
			if err != nil || ref.FileHash != up.FileHash {
				t.Errorf("by ref %+v, %v", ref, err)
			}
			// The message's pin, and maybe the upload's grace-period pin.
			if n, err := c.FilePinCount(ctx, up.FileHash); err != nil || n < 1 {
				t.Errorf("pin count %d, %v", n, err)
			}
		})
	}
	if len(uploads) != 4 {
		t.FailNow()
	}

	list, err := c.ListFiles(ctx, owner.Address(), client.Page{Number: 1, Size: 10}, client.Ascending)
	if err != nil || len(list.Files) != len(uploads) || list.Address != owner.Address() {
		t.Fatalf("list %+v, %v", list, err)
	}
	for i, f := range list.Files {
		if f.FileHash != uploads[i].FileHash || f.ItemHash != uploads[i].ItemHash || f.Created.IsZero() {
			t.Errorf("file %d: %+v, want %s", i, f, uploads[i].FileHash)
		}
	}

	// Pin the ipfs file again, then forget that pin.
	ipfsFile := uploads[2].FileHash
	pins, err := c.FilePinCount(ctx, ipfsFile)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := c.PinFile(ctx, ipfsFile, client.PinOptions{WriteOptions: client.WriteOptions{Sync: true}})
	if err != nil || pin.Status != message.StatusProcessed {
		t.Fatalf("pin %+v, %v", pin, err)
	}
	if n, _ := c.FilePinCount(ctx, ipfsFile); n != pins+1 {
		t.Errorf("pins after pin: %d, before %d", n, pins)
	}
	if _, err := c.ForgetFiles(ctx, []string{pin.ItemHash}, "test", client.WriteOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.FilePinCount(ctx, ipfsFile); n != pins {
		t.Errorf("pins after forget: %d, before the pin %d", n, pins)
	}

	limits, err := c.StorageLimits(ctx)
	if err != nil || limits.Storage.MaxFileSize <= 0 || limits.IPFS.MaxUploadFileSize <= 0 {
		t.Errorf("limits %+v, %v", limits, err)
	}
	if _, err := c.DownloadFile(ctx, strings.Repeat("0", 64), io.Discard, 0); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown file: %v", err)
	}
}
