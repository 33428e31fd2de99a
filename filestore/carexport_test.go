package filestore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/go-aleph/go-aleph/unixfs"
)

// TestWriteCARRoundTrip exports a file and a directory as CARs and imports
// them into a second store: same roots, same bytes, same tree.
func TestWriteCARRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	src := newStore(t, Options{NoSync: true})
	dst := newStore(t, Options{NoSync: true})

	data := randBytes(7, 3<<20+5) // a two-level DAG
	info, err := src.AddUnixFS(ctx, bytes.NewReader(data), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tree := buildTree(t, false)
	dirInfo, err := src.AddCAR(ctx, bytes.NewReader(carBytes([]cid.Cid{tree.root}, tree.blocks)), 0, tree.root.String())
	if err != nil {
		t.Fatal(err)
	}

	for _, h := range []string{info.Hash, dirInfo.Hash} {
		var car bytes.Buffer
		if err := src.WriteCAR(ctx, h, &car); err != nil {
			t.Fatalf("WriteCAR %s: %v", h, err)
		}
		got, err := dst.AddCAR(ctx, &car, 0, h)
		if err != nil {
			t.Fatalf("AddCAR of the exported %s: %v", h, err)
		}
		want, _ := src.Stat(ctx, h)
		if got != want {
			t.Fatalf("re-imported %+v, exported %+v", got, want)
		}
	}
	if !bytes.Equal(readAll(t, dst, info.Hash), data) {
		t.Fatal("re-imported file differs")
	}
	var a, b bytes.Buffer
	if err := src.WriteTar(ctx, dirInfo.Hash, &a); err != nil {
		t.Fatal(err)
	}
	if err := dst.WriteTar(ctx, dirInfo.Hash, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("re-imported directory's tar differs")
	}
}

func TestWriteCARErrors(t *testing.T) {
	ctx := testCtx(t)
	s := newStore(t, Options{NoSync: true})
	missing, _ := unixfs.SumBytes([]byte("not stored"), unixfs.KuboV0)
	var buf bytes.Buffer
	if err := s.WriteCAR(ctx, missing.String(), &buf); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing root: %v, want ErrNotFound", err)
	}
	if err := s.WriteCAR(ctx, sha256Hex([]byte("x")), &buf); !errors.Is(err, ErrInvalidHash) {
		t.Fatalf("storage hash: %v, want ErrInvalidHash", err)
	}
	if err := s.WriteCAR(ctx, "../../etc/passwd", &buf); !errors.Is(err, ErrInvalidHash) {
		t.Fatalf("junk hash: %v, want ErrInvalidHash", err)
	}
}
