package unixfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// recordDAG keeps every block Import adds, in order.
type recordDAG struct {
	mu     sync.Mutex
	blocks []recBlock
}

type recBlock struct {
	c    cid.Cid
	data []byte
}

func (d *recordDAG) Add(_ context.Context, n ipld.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.blocks = append(d.blocks, recBlock{n.Cid(), bytes.Clone(n.RawData())})
	return nil
}

func (d *recordDAG) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		if err := d.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
func (d *recordDAG) Get(context.Context, cid.Cid) (ipld.Node, error) { return nil, ipld.ErrNotFound{} }
func (d *recordDAG) GetMany(context.Context, []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption)
	close(ch)
	return ch
}
func (d *recordDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (d *recordDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// buildBlocks runs Build and records its blocks.
func buildBlocks(t testing.TB, data []byte, p Profile) (cid.Cid, int64, []recBlock) {
	t.Helper()
	var got []recBlock
	root, size, err := Build(context.Background(), bytes.NewReader(data), p, func(c cid.Cid, b []byte) error {
		got = append(got, recBlock{c, b})
		return nil
	})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return root, size, got
}

// assertSameAsBoxo checks that Build gives Import's (boxo's) blocks: the same
// CIDs, bytes and order, and the same root.
func assertSameAsBoxo(t testing.TB, data []byte, p Profile) {
	t.Helper()
	var want recordDAG
	nd, err := Import(context.Background(), bytes.NewReader(data), p, &want)
	if err != nil {
		t.Fatal(err)
	}
	root, size, got := buildBlocks(t, data, p)
	if !root.Equals(nd.Cid()) {
		t.Fatalf("%s, %d bytes: root %s, boxo %s", p.Name, len(data), root, nd.Cid())
	}
	if size != int64(len(data)) {
		t.Fatalf("%s: size %d, want %d", p.Name, size, len(data))
	}
	if len(got) != len(want.blocks) {
		t.Fatalf("%s, %d bytes: %d blocks, boxo %d", p.Name, len(data), len(got), len(want.blocks))
	}
	for i := range got {
		if !got[i].c.Equals(want.blocks[i].c) || !bytes.Equal(got[i].data, want.blocks[i].data) {
			t.Fatalf("%s, %d bytes: block %d is %s (%d bytes), boxo %s (%d bytes)", p.Name, len(data), i,
				got[i].c, len(got[i].data), want.blocks[i].c, len(want.blocks[i].data))
		}
		if h, _ := got[i].c.Prefix().Sum(got[i].data); !h.Equals(got[i].c) {
			t.Fatalf("block %d does not hash to its CID", i)
		}
	}
}

func TestBuildMatchesBoxo(t *testing.T) {
	tiny := []Profile{
		{Name: "tiny-v0", CIDVersion: 0, ChunkSize: 7, MaxLinks: 3},
		{Name: "tiny-v1-raw", CIDVersion: 1, ChunkSize: 5, MaxLinks: 2, RawLeaves: true},
		{Name: "tiny-v1-pb", CIDVersion: 1, ChunkSize: 4, MaxLinks: 4},
	}
	for _, p := range tiny {
		// Every size up to four full levels: each layout edge of the balanced tree.
		for n := 0; n <= int(p.ChunkSize)*p.MaxLinks*p.MaxLinks*p.MaxLinks+3; n++ {
			assertSameAsBoxo(t, randData(uint64(n), n), p)
		}
	}
	for _, p := range Profiles() {
		c := int(p.ChunkSize)
		sizes := []int{0, 1, 100, c - 1, c, c + 1, 3*c + 17}
		if p.MaxLinks == 174 {
			sizes = append(sizes, 174*c, 174*c+1, 175*c+9)
		}
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/%d", p.Name, n), func(t *testing.T) {
				assertSameAsBoxo(t, randData(uint64(n)+1, n), p)
			})
		}
	}
}

func TestBuildGoldens(t *testing.T) {
	f := loadCIDs(t)
	for _, v := range f.Vectors {
		data := v.readAllChecked(t)
		for name, want := range v.CIDs {
			p, err := ProfileByName(name)
			if err != nil {
				continue
			}
			root, _, _ := buildBlocks(t, data, p)
			if root.String() != want {
				t.Errorf("%s %s: %s, want %s", v.Input, name, root, want)
			}
		}
	}
}

func TestBuildErrors(t *testing.T) {
	boom := errors.New("boom")
	data := randData(9, 3<<20)
	put := func(cid.Cid, []byte) error { return nil }
	ctx := context.Background()
	if _, _, err := Build(ctx, io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), KuboV0, put); !errors.Is(err, boom) {
		t.Fatalf("reader error: %v", err)
	}
	putErr := errors.New("disk full")
	if _, _, err := Build(ctx, bytes.NewReader(data), KuboV0, func(cid.Cid, []byte) error { return putErr }); !errors.Is(err, putErr) {
		t.Fatalf("put error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := Build(cctx, bytes.NewReader(data), KuboV0, put); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	mid, cancelMid := context.WithCancel(ctx)
	defer cancelMid()
	puts := 0
	if _, _, err := Build(mid, bytes.NewReader(data), KuboV0, func(cid.Cid, []byte) error {
		if puts++; puts == 3 {
			cancelMid() // the reader stops; what is built must not pass for the file
		}
		return nil
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled mid-way: %v", err)
	}
	if _, _, err := Build(ctx, bytes.NewReader(data), Profile{Name: "bad", CIDVersion: 0, ChunkSize: 10, MaxLinks: 3, RawLeaves: true}, put); !errors.Is(err, ErrInvalidProfile) {
		t.Fatalf("bad profile: %v", err)
	}
}

func randData(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 42))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// FuzzBuildMatchesBoxo: for any input and small profile, Build gives boxo's blocks.
func FuzzBuildMatchesBoxo(f *testing.F) {
	f.Add([]byte("hello"), uint8(3), uint8(2), uint8(0))
	f.Add(bytes.Repeat([]byte{7}, 300), uint8(5), uint8(3), uint8(1))
	f.Add([]byte{}, uint8(1), uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk, links, kind uint8) {
		p := Profile{Name: "fuzz", ChunkSize: int64(chunk%64) + 1, MaxLinks: int(links%6) + 2}
		switch kind % 3 {
		case 1:
			p.CIDVersion, p.RawLeaves = 1, true
		case 2:
			p.CIDVersion = 1
		}
		assertSameAsBoxo(t, data, p)
	})
}

// BenchmarkBuild256MiB compares Build with Import (boxo) on the same input,
// blocks kept by a put that does nothing else.
func BenchmarkBuild256MiB(b *testing.B) {
	data := randData(1, 256<<20)
	b.Run("build", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, _, err := Build(context.Background(), bytes.NewReader(data), KuboV0, func(cid.Cid, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("import", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Import(context.Background(), bytes.NewReader(data), KuboV0, &discardDAG{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
