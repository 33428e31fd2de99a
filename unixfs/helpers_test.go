package unixfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// cidsFile is testdata/cids.json.
type cidsFile struct {
	Profiles map[string]struct {
		CIDVersion int   `json:"cid_version"`
		ChunkSize  int64 `json:"chunk_size"`
		MaxLinks   int   `json:"max_links"`
		RawLeaves  bool  `json:"raw_leaves"`
	} `json:"profiles"`
	Vectors []cidVector `json:"vectors"`
}

type cidVector struct {
	Input     string            `json:"input"`
	Generator generator         `json:"generator"`
	Size      int64             `json:"size"`
	SHA256    string            `json:"sha256"`
	CIDs      map[string]string `json:"cids"`
}

type generator struct {
	Kind  string `json:"kind"`
	Text  string `json:"text"`
	N     int64  `json:"n"`
	Count int64  `json:"count"`
}

func loadCIDs(t testing.TB) cidsFile {
	t.Helper()
	raw, err := os.ReadFile("../testdata/cids.json")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var f cidsFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors in cids.json")
	}
	return f
}

// reader rebuilds a vector's input as a stream (see testdata/README.md).
func (g generator) reader(t testing.TB) io.Reader {
	t.Helper()
	switch g.Kind {
	case "literal":
		return strings.NewReader(g.Text)
	case "pattern":
		return newPattern(g.N)
	case "repeat":
		return io.LimitReader(&cycleReader{unit: []byte("unit")}, 4*g.Count)
	}
	t.Fatalf("unknown generator kind %q", g.Kind)
	return nil
}

// readAllChecked reads a vector's input and checks its size and sha256.
func (v cidVector) readAllChecked(t testing.TB) []byte {
	t.Helper()
	b, err := io.ReadAll(v.Generator.reader(t))
	if err != nil {
		t.Fatalf("%s: generate: %v", v.Input, err)
	}
	checkInput(t, v.Input, b, v.Size, v.SHA256)
	return b
}

func checkInput(t testing.TB, name string, b []byte, size int64, sum string) {
	t.Helper()
	if int64(len(b)) != size {
		t.Fatalf("%s: generated %d bytes, want %d", name, len(b), size)
	}
	if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
		t.Fatalf("%s: sha256 %x, want %s", name, got, sum)
	}
}

// patternReader yields n bytes with byte i = i % 251, without holding them.
type patternReader struct {
	n, off int64
	table  []byte // 251 repeated, so any offset has a long run to copy from
}

func newPattern(n int64) *patternReader {
	t := make([]byte, 251*261) // ≈64 KiB
	for i := range t {
		t[i] = byte(i % 251)
	}
	return &patternReader{n: n, table: t}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	total := 0
	for len(b) > 0 && p.off < p.n {
		src := p.table[p.off%251:]
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

type cycleReader struct {
	unit []byte
	off  int
}

func (c *cycleReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = c.unit[c.off%len(c.unit)]
		c.off++
	}
	return len(b), nil
}

// memDAG is an in-memory DAG service that keeps every node added.
type memDAG struct {
	mu    sync.Mutex
	nodes map[cid.Cid]ipld.Node
	order []cid.Cid
}

func newMemDAG() *memDAG { return &memDAG{nodes: map[cid.Cid]ipld.Node{}} }

func (m *memDAG) Add(_ context.Context, n ipld.Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nodes[n.Cid()]; !ok {
		m.order = append(m.order, n.Cid())
	}
	m.nodes[n.Cid()] = n
	return nil
}

func (m *memDAG) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		if err := m.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (m *memDAG) Get(_ context.Context, c cid.Cid) (ipld.Node, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[c]
	if !ok {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return n, nil
}

func (m *memDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		n, err := m.Get(ctx, c)
		ch <- &ipld.NodeOption{Node: n, Err: err}
	}
	close(ch)
	return ch
}

func (m *memDAG) Remove(_ context.Context, c cid.Cid) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodes, c)
	return nil
}

func (m *memDAG) RemoveMany(ctx context.Context, cs []cid.Cid) error {
	for _, c := range cs {
		_ = m.Remove(ctx, c)
	}
	return nil
}

// failingDAG fails every Add.
type failingDAG struct{ memDAG }

var errStore = fmt.Errorf("store full")

func (f *failingDAG) Add(context.Context, ipld.Node) error { return errStore }

// errAfterReader returns n bytes of pattern, then err.
type errAfterReader struct {
	r   io.Reader
	n   int64
	err error
}

func (e *errAfterReader) Read(b []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	if int64(len(b)) > e.n {
		b = b[:e.n]
	}
	k, err := e.r.Read(b)
	e.n -= int64(k)
	return k, err
}

// stallReader never makes progress.
type stallReader struct{}

func (stallReader) Read([]byte) (int, error) { return 0, nil }
