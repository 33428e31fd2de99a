package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/go-aleph/go-aleph/unixfs"
)

// testCtx is a context that ends with the test (or after a minute).
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newStore opens a store in a fresh directory and closes it with the test.
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	return openAt(t, t.TempDir(), opts)
}

func openAt(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// pattern is n bytes with byte i = (i + seed) % 251, as a stream.
type pattern struct {
	n, off int64
	seed   int64
}

func newPattern(n int64) *pattern { return &pattern{n: n} }

var patternTable = func() []byte {
	t := make([]byte, 251*4200) // ≈1 MiB, a whole number of periods
	for i := range t {
		t[i] = byte(i % 251)
	}
	return t
}()

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	total := 0
	for len(b) > 0 && p.off < p.n {
		src := patternTable[(p.off+p.seed)%251:]
		if rem := p.n - p.off; int64(len(src)) > rem {
			src = src[:rem]
		}
		k := copy(b, src)
		b = b[k:]
		p.off += int64(k)
		total += k
	}
	return total, nil
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// cidVectors is testdata/cids.json (a copy of the repository's ../testdata).
type cidVectors struct {
	Vectors []struct {
		Input     string `json:"input"`
		Generator struct {
			Kind  string `json:"kind"`
			Text  string `json:"text"`
			N     int64  `json:"n"`
			Count int64  `json:"count"`
		} `json:"generator"`
		Size   int64             `json:"size"`
		SHA256 string            `json:"sha256"`
		CIDs   map[string]string `json:"cids"`
	} `json:"vectors"`
}

func loadVectors(t testing.TB) cidVectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/cids.json")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v cidVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

// generate builds a vector's input per the file's "generators".
func generate(t testing.TB, kind, text string, n, count int64) []byte {
	t.Helper()
	switch kind {
	case "literal":
		return []byte(text)
	case "pattern":
		b, _ := io.ReadAll(newPattern(n))
		return b
	case "repeat":
		return bytes.Repeat([]byte("unit"), int(count))
	}
	t.Fatalf("unknown generator %q", kind)
	return nil
}

// readAll opens hash and reads it whole.
func readAll(t testing.TB, s *Store, hash string) []byte {
	t.Helper()
	f, err := s.Open(testCtx(t), hash)
	if err != nil {
		t.Fatalf("open %s: %v", hash, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", hash, err)
	}
	return b
}

// entries lists the names in dir under the store (nil if it is missing).
func entries(t testing.TB, s *Store, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.dir, dir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// assertClean checks that no temporary file and no root was left behind.
func assertClean(t testing.TB, s *Store) {
	t.Helper()
	if n := entries(t, s, tmpDir); len(n) != 0 {
		t.Errorf("tmp/ holds %v", n)
	}
	if n := entries(t, s, rootsDir); len(n) != 0 {
		t.Errorf("roots/ holds %v", n)
	}
	if n := storageFiles(t, s); len(n) != 0 {
		t.Errorf("storage/ holds %v", n)
	}
}

func storageFiles(t testing.TB, s *Store) []string {
	t.Helper()
	var out []string
	for _, d := range entries(t, s, storageDir) {
		for _, f := range entries(t, s, filepath.Join(storageDir, d)) {
			out = append(out, f)
		}
	}
	return out
}

// blockCount counts the blocks in the blockstore.
func blockCount(t testing.TB, s *Store) int {
	t.Helper()
	ch, err := s.Blockstore().AllKeysChan(testCtx(t))
	if err != nil {
		t.Fatalf("list blocks: %v", err)
	}
	n := 0
	for range ch {
		n++
	}
	return n
}

// assertRootComplete checks that every block hash's manifest lists is stored.
func assertRootComplete(t testing.TB, s *Store, hash string) {
	t.Helper()
	b, err := os.ReadFile(s.rootPath(hash))
	if err != nil {
		t.Fatalf("read root %s: %v", hash, err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		t.Fatalf("decode root %s: %v", hash, err)
	}
	if len(m.cids) == 0 {
		t.Fatalf("root %s lists no blocks", hash)
	}
	for _, c := range m.cids {
		ok, err := s.Blockstore().Has(context.Background(), c)
		if err != nil || !ok {
			t.Fatalf("root %s: block %s missing (%v)", hash, c, err)
		}
	}
}

// failingReader yields the bytes of r, then fails with err once n bytes are read.
type failingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	m, err := f.r.Read(p)
	f.n -= int64(m)
	return m, err
}

// cancelReader cancels its context once n bytes have been read, and then
// keeps yielding data (as a body would until the server notices).
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	m, err := c.r.Read(p)
	if c.n -= int64(m); c.n <= 0 {
		c.cancel()
	}
	return m, err
}

// memDAG is an in-memory DAG service for building test DAGs.
func memDAG() ipld.DAGService {
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	return merkledag.NewDAGService(blockservice.New(bs, nil))
}

// testTree is a directory DAG built in memory: file name → content.
type testTree struct {
	root   cid.Cid
	blocks []blocks.Block // root first, depth-first
	files  map[string][]byte
	dag    ipld.DAGService
}

// buildTree builds a UnixFS directory (with a sub-directory) with boxo.
func buildTree(t testing.TB, hamt bool) testTree {
	t.Helper()
	ctx := testCtx(t)
	dag := memDAG()
	files := map[string][]byte{
		"a.txt":     []byte("hello\n"),
		"big.bin":   randBytes(1, 700<<10),
		"sub/c.txt": []byte("nested file\n"),
		"sub/d.bin": randBytes(2, 300<<10),
		"same.bin":  randBytes(1, 700<<10), // same as big.bin: counted once
	}
	mkdir := func() uio.Directory {
		if hamt {
			d, err := uio.NewHAMTDirectory(dag, 0)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		d, err := uio.NewDirectory(dag)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	top, sub := mkdir(), mkdir()
	for name, data := range files {
		nd, err := unixfs.Import(ctx, bytes.NewReader(data), unixfs.KuboV1, dag)
		if err != nil {
			t.Fatal(err)
		}
		d, base := top, name
		if rest, ok := strings.CutPrefix(name, "sub/"); ok {
			d, base = sub, rest
		}
		if err := d.AddChild(ctx, base, nd); err != nil {
			t.Fatal(err)
		}
	}
	subNode, err := sub.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dag.Add(ctx, subNode); err != nil {
		t.Fatal(err)
	}
	if err := top.AddChild(ctx, "sub", subNode); err != nil {
		t.Fatal(err)
	}
	rootNode, err := top.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dag.Add(ctx, rootNode); err != nil {
		t.Fatal(err)
	}
	tr := testTree{root: rootNode.Cid(), files: files, dag: dag}
	tr.blocks = dagBlocks(t, dag, rootNode.Cid())
	return tr
}

// dagBlocks lists the distinct blocks reachable from root, root first.
func dagBlocks(t testing.TB, dag ipld.DAGService, root cid.Cid) []blocks.Block {
	t.Helper()
	ctx := testCtx(t)
	seen := map[cid.Cid]bool{}
	var out []blocks.Block
	var visit func(c cid.Cid)
	visit = func(c cid.Cid) {
		if seen[c] {
			return
		}
		seen[c] = true
		nd, err := dag.Get(ctx, c)
		if err != nil {
			t.Fatalf("get %s: %v", c, err)
		}
		out = append(out, nd)
		for _, l := range nd.Links() {
			visit(l.Cid)
		}
	}
	visit(root)
	return out
}

// carBytes writes a CARv1: header {roots, version 1} in DAG-CBOR, then one
// section per block (varint length, CID, data).
func carBytes(roots []cid.Cid, blks []blocks.Block) []byte {
	var h []byte
	h = append(h, 0xa2)                  // map(2)
	h = append(h, 0x65)                  // text(5)
	h = append(h, "roots"...)            //
	h = append(h, 0x80|byte(len(roots))) // array(n), n < 24
	for _, c := range roots {
		cb := append([]byte{0}, c.Bytes()...) // multibase identity prefix
		h = append(h, 0xd8, 0x2a, 0x58, byte(len(cb)))
		h = append(h, cb...)
	}
	h = append(h, 0x67)
	h = append(h, "version"...)
	h = append(h, 0x01)
	var out []byte
	out = binary.AppendUvarint(out, uint64(len(h)))
	out = append(out, h...)
	for _, b := range blks {
		cb := b.Cid().Bytes()
		out = binary.AppendUvarint(out, uint64(len(cb)+len(b.RawData())))
		out = append(out, cb...)
		out = append(out, b.RawData()...)
	}
	return out
}

func mustBlock(t testing.TB, data []byte, c cid.Cid) blocks.Block {
	t.Helper()
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHash(t testing.TB, b []byte) mh.Multihash {
	t.Helper()
	h, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
