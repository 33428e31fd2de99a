package blockx_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/blockx"
	"github.com/go-aleph/go-aleph/filestore"
)

// BenchmarkFetchDAG: a 16 MiB file (CIDv0, 64 blocks of 256 KiB) from A to
// B over loopback TCP, streamed as a CAR (not kept, so that every iteration
// fetches it again).
func BenchmarkFetchDAG(b *testing.B) {
	ctx := testCtx(b)
	a, c := newNode(b, blockx.Config{}), newNode(b, blockx.Config{StallTimeout: 10 * time.Second})
	connect(b, c.h, a.h)
	data := randBytes(7, 16<<20)
	info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rc, err := c.ex.FetchDAG(ctx, info.Hash, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// BenchmarkEnsureFile: the same file through the files service into B's
// store (fetch, CAR import with every block checked, row), on a fresh B
// each iteration.
func BenchmarkEnsureFile(b *testing.B) {
	ctx := testCtx(b)
	a := newNode(b, blockx.Config{})
	data := randBytes(8, 16<<20)
	info, err := a.fs.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		c := newNode(b, blockx.Config{StallTimeout: 10 * time.Second})
		connect(b, c.h, a.h)
		b.StartTimer()
		if _, err := c.svc.EnsureFile(ctx, filestore.EngineIPFS, info.Hash); err != nil {
			b.Fatal(err)
		}
	}
}
