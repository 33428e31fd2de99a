package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
)

// dagPeer is a real DAGSource: another file store, whose DAGs it streams as
// CARs (filestore.WriteCAR), possibly with one byte of the last block
// flipped. It counts the calls of each kind.
type dagPeer struct {
	name    string
	fs      *filestore.Store
	corrupt bool

	mu         sync.Mutex
	dags, cats int
}

func newDAGPeer(t testing.TB, name string) *dagPeer {
	t.Helper()
	fs, err := filestore.Open(t.TempDir(), filestore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return &dagPeer{name: name, fs: fs}
}

func (p *dagPeer) Name() string { return p.name }

func (p *dagPeer) Fetch(ctx context.Context, _ filestore.Engine, hash string, _ int64) (io.ReadCloser, error) {
	p.mu.Lock()
	p.cats++
	p.mu.Unlock()
	f, err := p.fs.Open(ctx, hash)
	if errors.Is(err, filestore.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", p.name, ErrUnavailable)
	}
	return f, err
}

func (p *dagPeer) FetchDAG(ctx context.Context, hash string, _ int64) (io.ReadCloser, error) {
	p.mu.Lock()
	p.dags++
	p.mu.Unlock()
	if _, err := p.fs.Stat(ctx, hash); errors.Is(err, filestore.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", p.name, ErrUnavailable)
	}
	var buf bytes.Buffer
	if err := p.fs.WriteCAR(ctx, hash, &buf); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if p.corrupt {
		b[len(b)-1] ^= 0xff
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (p *dagPeer) calls() (dags, cats int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dags, p.cats
}

// fanout is a Fanout over fixed sources.
type fanout struct{ members []Source }

func (f fanout) Name() string { return "fanout" }

func (f fanout) Fetch(context.Context, filestore.Engine, string, int64) (io.ReadCloser, error) {
	return nil, errors.New("fanout: Fetch called: the service must ask the members")
}

func (f fanout) Sources(context.Context, filestore.Engine, string) []Source { return f.members }

// TestDAGSource: an ipfs file or directory from a DAGSource is imported as
// a DAG (its Fetch is never used), checked block by block, bounded, and
// kept with a row; a corrupt DAG is refused and the next source used.
func TestDAGSource(t *testing.T) {
	data := []byte(strings.Repeat("a file in a DAG ", 40_000))
	content := []byte(`{"address":"0xA","time":3,"content":{"y":2},"type":"test"}`)
	car, dirHash := dirCAR(t) // 28 bytes in two files

	forBackends(t, func(t *testing.T, pg bool) {
		liar, honest := newDAGPeer(t, "liar"), newDAGPeer(t, "honest")
		liar.corrupt = true
		var hashes []string
		for _, p := range []*dagPeer{liar, honest} {
			hashes = nil
			for _, b := range [][]byte{data, content} {
				info, err := p.fs.AddUnixFS(context.Background(), bytes.NewReader(b), 0, "", nil)
				if err != nil {
					t.Fatal(err)
				}
				hashes = append(hashes, info.Hash)
			}
			if _, err := p.fs.AddCAR(context.Background(), bytes.NewReader(car), 0, dirHash); err != nil {
				t.Fatal(err)
			}
		}
		fileHash, contentHash := hashes[0], hashes[1]

		t.Run("file and directory, liar refused", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg, sources: []Source{liar, honest}})
			for _, tc := range []struct {
				hash string
				kind string
				size int64
			}{{fileHash, filestore.KindFile, int64(len(data))}, {dirHash, filestore.KindDir, 28}} {
				row, err := e.svc.EnsureFile(e.ctx, filestore.EngineIPFS, tc.hash)
				if err != nil {
					t.Fatalf("ensure %s: %v", tc.hash, err)
				}
				if row.Type != tc.kind || row.Size != tc.size || e.pins(tc.hash) != 1 {
					t.Errorf("row %+v with %d pins, want a %s of %d bytes with a grace pin", row, e.pins(tc.hash), tc.kind, tc.size)
				}
			}
			if b, ok := e.local(fileHash); !ok || !bytes.Equal(b, data) {
				t.Error("file not kept byte for byte")
			}
			var tarBuf bytes.Buffer
			if err := e.fs.WriteTar(e.ctx, dirHash, &tarBuf); err != nil {
				t.Errorf("directory not kept: %v", err)
			}
			if dags, cats := liar.calls(); dags != 2 || cats != 0 {
				t.Errorf("liar: %d DAG fetches, %d byte fetches; want 2 and 0", dags, cats)
			}
			if dags, cats := honest.calls(); dags != 2 || cats != 0 {
				t.Errorf("honest: %d DAG fetches, %d byte fetches; want 2 and 0", dags, cats)
			}
		})

		t.Run("content", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg, sources: []Source{liar, honest}})
			got, err := e.svc.FetchContent(e.ctx, message.ItemIPFS, contentHash)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("fetch content = %q, %v", got, err)
			}
			if e.row(contentHash) == nil || e.pins(contentHash) != 1 {
				t.Error("content not kept with a row and a grace pin")
			}
			// A directory is no content, and is not kept.
			if _, err := e.svc.FetchContent(e.ctx, message.ItemIPFS, dirHash); !errors.Is(err, pipeline.ErrContentUnavailable) || !errors.Is(err, filestore.ErrIsDir) {
				t.Errorf("fetch a directory as content: %v", err)
			}
			if _, err := e.fs.Stat(e.ctx, dirHash); !errors.Is(err, filestore.ErrNotFound) || e.row(dirHash) != nil {
				t.Errorf("directory kept after being refused as content: %v", err)
			}
		})

		t.Run("only a liar", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg, sources: []Source{liar}})
			_, err := e.svc.EnsureFile(e.ctx, filestore.EngineIPFS, fileHash)
			if !errors.Is(err, pipeline.ErrFileUnavailable) || !errors.Is(err, filestore.ErrInvalidCAR) {
				t.Errorf("ensure from a liar: %v", err)
			}
			if _, err := e.fs.Stat(e.ctx, fileHash); !errors.Is(err, filestore.ErrNotFound) || e.row(fileHash) != nil {
				t.Error("corrupt DAG kept")
			}
		})

		t.Run("over the limit", func(t *testing.T) {
			e := newEnv(t, envOpts{postgres: pg, sources: []Source{honest}, cfg: Config{MaxFetchSize: 20, MaxContentSize: 10}})
			for _, h := range []string{fileHash, dirHash} {
				if _, err := e.svc.EnsureFile(e.ctx, filestore.EngineIPFS, h); !errors.Is(err, filestore.ErrTooLarge) {
					t.Errorf("ensure %s: %v, want ErrTooLarge", h, err)
				}
				if _, err := e.fs.Stat(e.ctx, h); !errors.Is(err, filestore.ErrNotFound) || e.row(h) != nil {
					t.Errorf("%s kept over the limit", h)
				}
			}
			if _, err := e.svc.FetchContent(e.ctx, message.ItemIPFS, contentHash); !errors.Is(err, filestore.ErrTooLarge) {
				t.Errorf("content over the limit: %v", err)
			}
		})
	})
}

// TestFanout: the members of a Fanout are asked in turn, so wrong bytes from
// one of them end at the next, not at the next source.
func TestFanout(t *testing.T) {
	data := []byte("a file some peers have")
	h := sha(data)
	liar, empty, honest, after := newPeer(t, "liar"), newPeer(t, "empty"), newPeer(t, "honest"), newPeer(t, "after")
	liar.put(h, []byte("forged"))
	honest.put(h, data)
	after.put(h, data)
	e := newEnv(t, envOpts{sources: []Source{fanout{[]Source{liar, empty, honest}}, after}})
	row, err := e.svc.EnsureFile(e.ctx, filestore.EngineStorage, h)
	if err != nil || row.Hash != h {
		t.Fatalf("ensure = %+v, %v", row, err)
	}
	if liar.hitCount(h) != 1 || empty.hitCount(h) != 1 || honest.hitCount(h) != 1 || after.hitCount(h) != 0 {
		t.Errorf("hits liar %d, empty %d, honest %d, after %d; want 1, 1, 1, 0",
			liar.hitCount(h), empty.hitCount(h), honest.hitCount(h), after.hitCount(h))
	}
	content := []byte(`{"fanout":true}`)
	ch := sha(content)
	liar.put(ch, []byte(`{"forged":true}`))
	honest.put(ch, content)
	if got, err := e.svc.FetchContent(e.ctx, message.ItemStorage, ch); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("fetch content = %q, %v", got, err)
	}
}
