package unixfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

func TestProfilesMatchBoxo(t *testing.T) {
	tests := []struct {
		name    string
		got     Profile
		boxo    uio.UnixFSProfile
		version int
		raw     bool
	}{
		{"v0", KuboV0, uio.UnixFS_v0_2015, 0, false},
		// kubo --cid-version=1 is the 2015 profile with CIDv1 and raw leaves.
		{"v1", KuboV1, uio.UnixFS_v0_2015, 1, true},
		{"2025", V1_2025, uio.UnixFS_v1_2025, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.boxo
			if tt.got.ChunkSize != b.ChunkSize || tt.got.MaxLinks != b.FileDAGWidth || b.MhType != mh.SHA2_256 {
				t.Errorf("%s: chunk %d links %d, boxo has chunk %d links %d mh 0x%x",
					tt.got.Name, tt.got.ChunkSize, tt.got.MaxLinks, b.ChunkSize, b.FileDAGWidth, b.MhType)
			}
			if tt.got.CIDVersion != tt.version || tt.got.RawLeaves != tt.raw {
				t.Errorf("%s: version %d raw %v, want %d %v", tt.got.Name, tt.got.CIDVersion, tt.got.RawLeaves, tt.version, tt.raw)
			}
			if err := tt.got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	// The 2025 profile is exactly boxo's.
	if V1_2025.CIDVersion != uio.UnixFS_v1_2025.CIDVersion || V1_2025.RawLeaves != uio.UnixFS_v1_2025.RawLeaves {
		t.Errorf("V1_2025 version/leaves differ from boxo")
	}
	if KuboV0.CIDVersion != uio.UnixFS_v0_2015.CIDVersion || KuboV0.RawLeaves != uio.UnixFS_v0_2015.RawLeaves {
		t.Errorf("KuboV0 version/leaves differ from boxo")
	}
}

func TestProfilesMatchTestdata(t *testing.T) {
	f := loadCIDs(t)
	if len(f.Profiles) != len(Profiles()) {
		t.Fatalf("cids.json has %d profiles, package has %d", len(f.Profiles), len(Profiles()))
	}
	for _, p := range Profiles() {
		want, ok := f.Profiles[p.Name]
		if !ok {
			t.Errorf("profile %q not in cids.json", p.Name)
			continue
		}
		if p.CIDVersion != want.CIDVersion || p.ChunkSize != want.ChunkSize || p.MaxLinks != want.MaxLinks || p.RawLeaves != want.RawLeaves {
			t.Errorf("profile %q = %+v, cids.json has %+v", p.Name, p, want)
		}
	}
}

func TestProfileByName(t *testing.T) {
	tests := []struct {
		name    string
		want    Profile
		wantErr bool
	}{
		{"kubo-default-cidv0", KuboV0, false},
		{"kubo-cidv1-raw-leaves", KuboV1, false},
		{"unixfs-v1-2025", V1_2025, false},
		{"", Profile{}, true},
		{"UNIXFS-V1-2025", Profile{}, true},
		{"unixfs-v0-2015", Profile{}, true},
	}
	for _, tt := range tests {
		got, err := ProfileByName(tt.name)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ProfileByName(%q) = %+v, %v; want %+v, err %v", tt.name, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "unknown profile") {
			t.Errorf("ProfileByName(%q) error %q does not say why", tt.name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Profile{Name: "x", CIDVersion: 1, ChunkSize: 1, MaxLinks: 2, RawLeaves: true}
	tests := []struct {
		name string
		mod  func(*Profile)
		want string // "" = valid
	}{
		{"minimal", func(*Profile) {}, ""},
		{"v2", func(p *Profile) { p.CIDVersion = 2 }, "cid version"},
		{"negative version", func(p *Profile) { p.CIDVersion = -1 }, "cid version"},
		{"v0 raw", func(p *Profile) { p.CIDVersion = 0 }, "raw leaves"},
		{"zero chunk", func(p *Profile) { p.ChunkSize = 0 }, "chunk size"},
		{"huge chunk", func(p *Profile) { p.ChunkSize = 4 << 20 }, "chunk size"},
		{"one link", func(p *Profile) { p.MaxLinks = 1 }, "max links"},
		{"too many links", func(p *Profile) { p.MaxLinks = 1 << 20 }, "max links"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.mod(&p)
			err := p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want error mentioning %q", err, tt.want)
			}
			// Every entry point refuses the profile rather than looping or panicking.
			if _, err := SumBytes([]byte("abc"), p); err == nil {
				t.Error("SumBytes accepted an invalid profile")
			}
			if _, err := Import(context.Background(), strings.NewReader("abc"), p, newMemDAG()); err == nil {
				t.Error("Import accepted an invalid profile")
			}
		})
	}
}

// TestVectors checks every vector of testdata/cids.json under every profile, along
// every path: Sum, SumBytes, Sum over a 1-byte reader, Import into a real DAG service
// (then read back), and the independent reference encoder.
func TestVectors(t *testing.T) {
	f := loadCIDs(t)
	for _, v := range f.Vectors {
		data := v.readAllChecked(t)
		for _, p := range Profiles() {
			want := v.CIDs[p.Name]
			if want == "" {
				t.Fatalf("%s: no cid for %s", v.Input, p.Name)
			}
			t.Run(v.Input+"/"+p.Name, func(t *testing.T) {
				checkAllPaths(t, data, p, want)
			})
		}
	}
}

func checkAllPaths(t *testing.T, data []byte, p Profile, want string) {
	t.Helper()
	c, err := Sum(bytes.NewReader(data), p)
	if err != nil {
		t.Fatalf("Sum: %v", err)
	}
	// String() is what ipfs prints: base58btc for v0, base32 (bafy…/bafk…) for v1.
	if c.String() != want {
		t.Fatalf("Sum = %s, want %s", c, want)
	}
	if c2, err := SumBytes(data, p); err != nil || c2.String() != want {
		t.Errorf("SumBytes = %s, %v", c2, err)
	}
	if c3, err := Sum(iotest.OneByteReader(bytes.NewReader(data)), p); err != nil || c3.String() != want {
		t.Errorf("Sum(1-byte reader) = %s, %v", c3, err)
	}
	if c4 := refSum(t, bytes.NewReader(data), p); c4.String() != want {
		t.Errorf("refSum = %s", c4)
	}
	dag := newMemDAG()
	root, err := Import(context.Background(), bytes.NewReader(data), p, dag)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if root.Cid().String() != want {
		t.Fatalf("Import root = %s, want %s", root.Cid(), want)
	}
	if last := dag.order[len(dag.order)-1]; !last.Equals(root.Cid()) {
		t.Errorf("root stored as %s, not last", last)
	}
	r, err := uio.NewDagReader(context.Background(), root, dag)
	if err != nil {
		t.Fatalf("NewDagReader: %v", err)
	}
	back, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back %d bytes (%v), want the %d imported", len(back), err, len(data))
	}
}

func TestEmptyAndShape(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		p      Profile
		want   string
		prefix string
	}{
		{"empty v0", nil, KuboV0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "Qm"},
		{"empty v1", []byte{}, KuboV1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "bafkrei"},
		{"empty 2025", nil, V1_2025, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "bafkrei"},
		// One chunk under raw leaves is the raw block itself (bafk…); two chunks give
		// a dag-pb root (bafy…). 256 KiB + 1 is one chunk for the 2025 profile only.
		{"two chunks v1", pattern(t, 262145), KuboV1, "bafybeiexg2oqkfnj56l7fcmawswqbijt5shq4b5rg6a546uwpkqqzwjioi", "bafybei"},
		{"one chunk 2025", pattern(t, 262145), V1_2025, "bafkreidkcavdl3yt2jt36sd4cuqnqk2p6vaxq66iykemz6mk527hnbqbni", "bafkrei"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.HasPrefix(tt.want, tt.prefix) {
				t.Fatalf("bad test: %s lacks prefix %s", tt.want, tt.prefix)
			}
			checkAllPaths(t, tt.data, tt.p, tt.want)
		})
	}
}

func pattern(t testing.TB, n int64) []byte {
	t.Helper()
	b, err := io.ReadAll(newPattern(n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFiftyMiB is the 2-level DAG case of dependencies-and-peers.md §0.4
// (pattern(50 MiB): 200 chunks of 256 KiB, so 174 + 26 under the root).
func TestFiftyMiB(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MiB per profile")
	}
	const n = 50 << 20
	want := map[string]string{
		KuboV0.Name:  "QmQMTBSHqHsUg1xgFQWfpJFC3A2gJkiL4YoKovHAF7iQpT",
		KuboV1.Name:  "bafybeib36v34v7aqrbffbhtongtcq3xseakzlsoddoblzg3tykpepq5gt4",
		V1_2025.Name: "bafybeigchohdok35kacsoox7yh5krcg222y7bq6jgkx5ywbw7mjpbhxahy",
	}
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			c, err := Sum(newPattern(n), p)
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != want[p.Name] {
				t.Fatalf("Sum = %s, want %s", c, want[p.Name])
			}
			if r := refSum(t, newPattern(n), p); !r.Equals(c) {
				t.Fatalf("refSum = %s", r)
			}
			if err := Verify(newPattern(n), want[p.Name]); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestWideLevel imports 174 chunks + 1 byte: one more leaf than a node can link,
// so the root must have two children, a full 174-link node and a node holding the
// 1-byte leaf. The Sum CID is checked against the DAG boxo stores and against the
// reference encoder (a different construction).
func TestWideLevel(t *testing.T) {
	if testing.Short() {
		t.Skip("43.5 MiB per profile")
	}
	const links, chunk = 174, 256 << 10 // kubo's width and chunk, not read from the profile
	for _, p := range []Profile{KuboV0, KuboV1} {
		t.Run(p.Name, func(t *testing.T) {
			n := int64(links*chunk + 1)
			c, err := Sum(newPattern(n), p)
			if err != nil {
				t.Fatal(err)
			}
			if r := refSum(t, newPattern(n), p); !r.Equals(c) {
				t.Fatalf("Sum = %s, refSum = %s", c, r)
			}
			dag := newMemDAG()
			root, err := Import(context.Background(), newPattern(n), p, dag)
			if err != nil {
				t.Fatal(err)
			}
			if !root.Cid().Equals(c) {
				t.Fatalf("Import root %s, Sum %s", root.Cid(), c)
			}
			if c.Version() != uint64(p.CIDVersion) || c.Type() != cid.DagProtobuf {
				t.Fatalf("root cid %s: version %d codec 0x%x", c, c.Version(), c.Type())
			}
			checkFileNode(t, dag, root.Cid(), uint64(n), []uint64{links * chunk, 1})
			full := root.Links()[0].Cid
			sizes := make([]uint64, links)
			for i := range sizes {
				sizes[i] = chunk
			}
			checkFileNode(t, dag, full, links*chunk, sizes)
			tail := root.Links()[1].Cid
			checkFileNode(t, dag, tail, 1, []uint64{1})
			tailNode, _ := dag.Get(context.Background(), tail)
			leaf, err := dag.Get(context.Background(), tailNode.Links()[0].Cid)
			if err != nil {
				t.Fatal(err)
			}
			if p.RawLeaves {
				if leaf.Cid().Type() != cid.Raw || !bytes.Equal(leaf.RawData(), []byte{byte((n - 1) % 251)}) {
					t.Fatalf("tail leaf %s = %x", leaf.Cid(), leaf.RawData())
				}
			} else {
				checkFileNode(t, dag, leaf.Cid(), 1, nil)
			}
			// 174 distinct leaves (the pattern repeats only every 251 chunks), the
			// 1-byte leaf, the full node, the tail node and the root.
			if got := len(dag.nodes); got != links+4 {
				t.Fatalf("%d blocks stored, want %d", got, links+4)
			}
		})
	}
}

// checkFileNode checks a stored dag-pb UnixFS file node: its filesize, and its
// children's block sizes (nil for a leaf with data).
func checkFileNode(t *testing.T, dag *memDAG, c cid.Cid, size uint64, blocks []uint64) {
	t.Helper()
	nd, err := dag.Get(context.Background(), c)
	if err != nil {
		t.Fatalf("get %s: %v", c, err)
	}
	pn, ok := nd.(*merkledag.ProtoNode)
	if !ok {
		t.Fatalf("%s is %T, not a dag-pb node", c, nd)
	}
	fs, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		t.Fatalf("%s: unixfs data: %v", c, err)
	}
	if fs.Type() != ft.TFile || fs.FileSize() != size {
		t.Fatalf("%s: type %v filesize %d, want file of %d", c, fs.Type(), fs.FileSize(), size)
	}
	if got := fs.BlockSizes(); len(got) != len(blocks) || len(pn.Links()) != len(blocks) {
		t.Fatalf("%s: %d block sizes and %d links, want %d", c, len(got), len(pn.Links()), len(blocks))
	}
	for i, b := range blocks {
		if fs.BlockSize(i) != b {
			t.Fatalf("%s: block %d size %d, want %d", c, i, fs.BlockSize(i), b)
		}
	}
}

// TestMemoryBounded sums 64 MiB of generated input under every profile and samples
// HeapInuse from inside the reader (every 1 MiB read, so the samples do not depend
// on timing). A Sum that buffered the input would need > 64 MiB.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB per profile")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100)) // GOGC=off would void the bound
	const n = 64 << 20
	const limit = 32 << 20
	paths := []struct {
		name string
		run  func(r io.Reader, p Profile) error
	}{
		{"Sum", func(r io.Reader, p Profile) error { _, err := Sum(r, p); return err }},
		{"Verify", func(r io.Reader, p Profile) error {
			err := Verify(r, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
			if !errors.Is(err, ErrMismatch) {
				return err
			}
			return nil
		}},
	}
	for _, path := range paths {
		for _, p := range Profiles() {
			if path.name == "Verify" && p != V1_2025 {
				continue // Verify runs both CIDv1 profiles at once
			}
			t.Run(path.name+"/"+p.Name, func(t *testing.T) {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base := ms.HeapInuse
				sr := &sampler{r: newPattern(n), every: 1 << 20}
				if err := path.run(sr, p); err != nil {
					t.Fatal(err)
				}
				if sr.samples < 32 {
					t.Fatalf("only %d samples", sr.samples)
				}
				growth := int64(sr.peak) - int64(base)
				t.Logf("HeapInuse: base %.1f MiB, peak %.1f MiB (+%.1f MiB), %d samples",
					mib(base), mib(sr.peak), float64(growth)/(1<<20), sr.samples)
				if growth > limit {
					t.Fatalf("heap grew by %.1f MiB over a 64 MiB input, limit %d MiB", float64(growth)/(1<<20), limit>>20)
				}
			})
		}
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// sampler records peak HeapInuse every `every` bytes read.
type sampler struct {
	r            io.Reader
	every, since int
	peak         uint64
	samples      int
}

func (s *sampler) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.since += n
	if s.since >= s.every || err != nil {
		s.since = 0
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.peak = max(s.peak, ms.HeapInuse)
		s.samples++
	}
	return n, err
}

func TestReadErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		r    func() io.Reader
		want error
	}{
		{"at start", func() io.Reader { return iotest.ErrReader(errBoom) }, errBoom},
		{"mid chunk", func() io.Reader { return &errAfterReader{r: newPattern(1 << 30), n: 100, err: errBoom} }, errBoom},
		{"after chunks", func() io.Reader { return &errAfterReader{r: newPattern(1 << 30), n: 3<<20 + 5, err: errBoom} }, errBoom},
		{"at chunk boundary", func() io.Reader { return &errAfterReader{r: newPattern(1 << 30), n: 1 << 20, err: errBoom} }, errBoom},
		{"timeout", func() io.Reader { return iotest.TimeoutReader(bytes.NewReader(pattern(t, 10))) }, iotest.ErrTimeout},
		{"no progress", func() io.Reader { return stallReader{} }, io.ErrNoProgress},
	}
	for _, tt := range tests {
		for _, p := range Profiles() {
			t.Run(tt.name+"/"+p.Name, func(t *testing.T) {
				_, err := Sum(tt.r(), p)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Sum error = %v, want %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), "read input") || !strings.HasPrefix(err.Error(), "unixfs: ") {
					t.Errorf("error %q lacks context", err)
				}
				_, err = Import(context.Background(), tt.r(), p, newMemDAG())
				if !errors.Is(err, tt.want) {
					t.Fatalf("Import error = %v, want %v", err, tt.want)
				}
			})
		}
	}
}

// TestReaderShapes: readers that return short reads, data with EOF, or half
// buffers give the same CID.
func TestReaderShapes(t *testing.T) {
	data := pattern(t, 3<<20+17)
	want, err := SumBytes(data, KuboV1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    io.Reader
	}{
		{"half", iotest.HalfReader(bytes.NewReader(data))},
		{"data+eof", iotest.DataErrReader(bytes.NewReader(data))},
		{"one byte", iotest.OneByteReader(bytes.NewReader(data[:300<<10]))},
		{"generated", newPattern(int64(len(data)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := want
			if tt.name == "one byte" {
				w, _ = SumBytes(data[:300<<10], KuboV1)
			}
			got, err := Sum(tt.r, KuboV1)
			if err != nil || !got.Equals(w) {
				t.Fatalf("Sum = %s, %v; want %s", got, err, w)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	data := pattern(t, 600<<10)
	t.Run("nil dag", func(t *testing.T) {
		if _, err := Import(context.Background(), bytes.NewReader(data), KuboV0, nil); err == nil {
			t.Fatal("nil dag service accepted")
		}
	})
	t.Run("nil reader", func(t *testing.T) {
		if _, err := Sum(nil, KuboV0); err == nil {
			t.Fatal("nil reader accepted")
		}
	})
	t.Run("store fails", func(t *testing.T) {
		_, err := Import(context.Background(), bytes.NewReader(data), KuboV0, &failingDAG{})
		if !errors.Is(err, errStore) || !strings.Contains(err.Error(), "add block") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Import(ctx, bytes.NewReader(data), KuboV1, newMemDAG())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("cancel mid-import", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		dag := &cancelDAG{memDAG: newMemDAG(), cancel: cancel, after: 2}
		_, err := Import(ctx, newPattern(10<<20), KuboV1, dag)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if len(dag.nodes) > 3 {
			t.Fatalf("%d blocks stored after cancel", len(dag.nodes))
		}
	})
	t.Run("non-canonical field order", func(t *testing.T) {
		defer func(o merkledag.PBNodeFieldOrder) { merkledag.DefaultPBNodeFieldOrder = o }(merkledag.DefaultPBNodeFieldOrder)
		merkledag.DefaultPBNodeFieldOrder = merkledag.PBNodeDataFirst
		if _, err := SumBytes(data, KuboV0); err == nil || !strings.Contains(err.Error(), "links-first") {
			t.Fatalf("err = %v", err)
		}
	})
}

// cancelDAG cancels its context after `after` blocks.
type cancelDAG struct {
	*memDAG
	cancel func()
	after  int
}

func (c *cancelDAG) Add(ctx context.Context, n ipld.Node) error {
	if err := c.memDAG.Add(ctx, n); err != nil {
		return err
	}
	if len(c.nodes) >= c.after {
		c.cancel()
	}
	return nil
}

// TestSmallProfiles drives deep trees (tiny chunks, 2–5 links) through Sum, Import
// and the reference encoder; this exercises buffer reuse across many levels.
func TestSmallProfiles(t *testing.T) {
	data := pattern(t, 5000)
	for _, chunk := range []int64{1, 7, 251, 1000, 4999, 5000, 5001} {
		for _, links := range []int{2, 3, 5, 174} {
			for _, base := range Profiles() {
				p := base
				p.ChunkSize, p.MaxLinks = chunk, links
				for _, n := range []int{0, 1, 2, 3, 4, 9, 27, 1000, 5000} {
					c, err := SumBytes(data[:n], p)
					if err != nil {
						t.Fatal(err)
					}
					if r := refSum(t, bytes.NewReader(data[:n]), p); !r.Equals(c) {
						t.Fatalf("%s chunk %d links %d n %d: Sum %s, refSum %s", p.Name, chunk, links, n, c, r)
					}
					if n%9 == 0 {
						nd, err := Import(context.Background(), bytes.NewReader(data[:n]), p, newMemDAG())
						if err != nil || !nd.Cid().Equals(c) {
							t.Fatalf("Import = %v, %v; Sum %s", nd, err, c)
						}
					}
				}
			}
		}
	}
}
