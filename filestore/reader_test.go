package filestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"

	"github.com/go-aleph/go-aleph/unixfs"
)

// TestReaderRandomAccess checks the file reader against the bytes under random
// seeks and reads of random sizes, for every profile (raw and dag-pb leaves,
// one and several levels).
func TestReaderRandomAccess(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	small := unixfs.Profile{Name: "deep", CIDVersion: 0, ChunkSize: 1000, MaxLinks: 3}
	data := randBytes(70, 3<<20+777)
	for _, p := range append(unixfs.Profiles(), small) {
		d := data
		if p.Name == "deep" {
			d = data[:50_000] // 50 leaves, 4 levels
		}
		info, err := s.AddUnixFS(ctx, bytes.NewReader(d), 0, "", &p)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(p.Name, func(t *testing.T) {
			f, err := s.Open(ctx, info.Hash)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			n := int64(len(d))
			var pos int64
			for i := range 300 {
				switch rng.IntN(4) {
				case 0:
					pos = rng.Int64N(n + 10) // past the end too
					if got, err := f.Seek(pos, io.SeekStart); err != nil || got != pos {
						t.Fatalf("op %d: seek = %d, %v", i, got, err)
					}
				case 1:
					back := rng.Int64N(n)
					got, err := f.Seek(-back, io.SeekEnd)
					if err != nil || got != n-back {
						t.Fatalf("op %d: seek from end = %d, %v", i, got, err)
					}
					pos = got
				}
				buf := make([]byte, rng.IntN(600<<10))
				m, err := io.ReadFull(f, buf)
				want := min(int64(len(buf)), max(n-pos, 0))
				if int64(m) != want || (err != nil && err != io.EOF && err != io.ErrUnexpectedEOF) {
					t.Fatalf("op %d: read at %d: %d bytes, %v; want %d", i, pos, m, err, want)
				}
				if !bytes.Equal(buf[:m], d[pos:pos+int64(m)]) {
					t.Fatalf("op %d: bytes at %d differ", i, pos)
				}
				pos += int64(m)
			}
		})
	}
}

// TestReaderInlineData reads a file whose inner node carries data before its
// children, as UnixFS allows (and boxo's importers never write).
func TestReaderInlineData(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	head, a, b := []byte("head:"), []byte("first leaf "), []byte("second leaf")
	la, lb := merkledag.NewRawNode(a), merkledag.NewRawNode(b)
	fsn := ft.NewFSNode(ft.TFile)
	fsn.SetData(head)
	fsn.AddBlockSize(uint64(len(a)))
	fsn.AddBlockSize(uint64(len(b)))
	pb, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	root := merkledag.NodeWithData(pb)
	for _, l := range []*merkledag.RawNode{la, lb} {
		if err := root.AddNodeLink("", l); err != nil {
			t.Fatal(err)
		}
	}
	info, err := s.AddCAR(ctx, bytes.NewReader(carBytes([]cid.Cid{root.Cid()}, []blocks.Block{root, la, lb})), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	want := string(head) + string(a) + string(b)
	if info.Size != int64(len(want)) {
		t.Fatalf("size %d, want %d", info.Size, len(want))
	}
	if got := string(readAll(t, s, info.Hash)); got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	f, err := s.Open(ctx, info.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || string(rest) != want[3:] {
		t.Fatalf("read from 3: %q, %v", rest, err)
	}
}

// TestReaderStops checks that closing a reader mid-file, cancelling its
// context, or losing its blocks ends the read-ahead goroutine and fails reads
// with a clear error.
func TestReaderStops(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	data := randBytes(71, 4<<20)
	info, err := s.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	for range 20 {
		f, err := s.Open(ctx, info.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(f, make([]byte, 300<<10)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Read(make([]byte, 1)); err == nil {
			t.Fatal("read after close succeeded")
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after closing readers", before, after)
	}

	cctx, cancel := context.WithCancel(ctx)
	f, err := s.Open(cctx, info.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, f); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}

	g, err := s.Open(ctx, info.Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := s.Delete(ctx, info.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, g); err == nil {
		t.Fatal("reading a swept file succeeded")
	}
}

// FuzzParseFileNode: any block bytes parse or fail, never panic.
func FuzzParseFileNode(f *testing.F) {
	leaf := merkledag.NodeWithData(ft.FilePBData([]byte("data"), 4))
	f.Add(leaf.RawData(), true)
	f.Add([]byte("raw"), false)
	f.Add([]byte{0x0a, 0xff}, true)
	f.Fuzz(func(t *testing.T, b []byte, pb bool) {
		c := cid.NewCidV1(cid.Raw, mustHash(t, b))
		if pb {
			c = cid.NewCidV0(mustHash(t, b))
		}
		data, in, err := parseFileNode(c, b)
		if err != nil {
			return
		}
		if in == nil && len(data) > len(b) {
			t.Fatalf("leaf data of %d bytes from a %d-byte block", len(data), len(b))
		}
		if in != nil && len(in.links) != len(in.sizes) {
			t.Fatalf("%d links, %d sizes", len(in.links), len(in.sizes))
		}
	})
}
