package filestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"

	"github.com/go-aleph/go-aleph/unixfs"
)

// FuzzAddCAR feeds arbitrary bytes to AddCAR: it never panics, fails only with
// the package's errors, and whatever it accepts can be read back whole.
func FuzzAddCAR(f *testing.F) {
	ctx := context.Background()
	dag := memDAG()
	nd, err := unixfs.Import(ctx, bytes.NewReader(randBytes(50, 3000)), unixfs.Profile{Name: "tiny", CIDVersion: 0, ChunkSize: 1000, MaxLinks: 2}, dag)
	if err != nil {
		f.Fatal(err)
	}
	fileCAR := carBytes([]cid.Cid{nd.Cid()}, dagBlocks(f, dag, nd.Cid()))
	f.Add(fileCAR)
	for _, n := range []int{0, 1, 10, 40, len(fileCAR) / 2, len(fileCAR) - 1} {
		f.Add(fileCAR[:n])
	}
	raw, _ := unixfs.SumBytes([]byte("hi"), unixfs.KuboV1)
	f.Add(carBytes([]cid.Cid{raw}, []blocks.Block{mustBlock(f, []byte("hi"), raw)}))

	s, err := Open(f.TempDir(), Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := s.AddCAR(ctx, bytes.NewReader(data), 1<<20, "")
		if err != nil {
			if !errors.Is(err, ErrInvalidCAR) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error outside the package's kinds: %v", err)
			}
			return
		}
		defer s.Delete(ctx, info.Hash)
		st, err := s.Stat(ctx, info.Hash)
		if err != nil || st != info {
			t.Fatalf("stat = %+v, %v; want %+v", st, err, info)
		}
		if info.Kind == KindDir {
			if err := s.WriteTar(ctx, info.Hash, io.Discard); err != nil {
				t.Fatalf("tar: %v", err)
			}
			return
		}
		fl, err := s.Open(ctx, info.Hash)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer fl.Close()
		n, err := io.Copy(io.Discard, fl)
		if err != nil || n != info.Size {
			t.Fatalf("read %d bytes, %v; want %d", n, err, info.Size)
		}
	})
}
