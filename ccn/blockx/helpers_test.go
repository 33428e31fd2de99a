package blockx_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/go-aleph/go-aleph/ccn/blockx"
	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/store/sqlstore"
	"github.com/go-aleph/go-aleph/unixfs"
)

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// node is a libp2p host on loopback with a file store, a bitswap exchange
// over it and a files service that fetches through the exchange.
type node struct {
	h   host.Host
	fs  *filestore.Store
	ex  *blockx.Exchange
	svc *files.Service
}

// newHost starts a real libp2p host on a random loopback port.
func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatalf("libp2p host: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newNode(t testing.TB, cfg blockx.Config) *node {
	t.Helper()
	ctx := testCtx(t)
	h := newHost(t)
	fs, err := filestore.Open(t.TempDir(), filestore.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open filestore: %v", err)
	}
	t.Cleanup(func() { fs.Close() })
	db := newDB(t)
	ex, err := blockx.New(ctx, h, fs.Blockstore(), cfg, nil)
	if err != nil {
		t.Fatalf("new exchange: %v", err)
	}
	t.Cleanup(func() { ex.Close() })
	svc, err := files.New(files.Deps{Files: fs, DB: db, Sources: []files.Source{ex}}, files.Config{})
	if err != nil {
		t.Fatalf("files service: %v", err)
	}
	t.Cleanup(func() { svc.Close() }) // runs before the exchange and stores close
	return &node{h: h, fs: fs, ex: ex, svc: svc}
}

// newDB opens a real SQLite store in a temporary directory.
func newDB(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlstore.Open(testCtx(t), filepath.Join(t.TempDir(), "ccn.db"), sqlstore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// connect connects a to b.
func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readFile reads a file a store keeps.
func readFile(t testing.TB, fs *filestore.Store, hash string) []byte {
	t.Helper()
	f, err := fs.Open(testCtx(t), hash)
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

// tree is a directory DAG: its root and its files by path.
type tree struct {
	root  cid.Cid
	car   []byte
	files map[string][]byte
}

// buildTree builds a UnixFS directory with a sub-directory in memory (boxo)
// and returns it as a CAR.
func buildTree(t testing.TB) tree {
	t.Helper()
	ctx := testCtx(t)
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dag := merkledag.NewDAGService(blockservice.New(bs, nil))
	fl := map[string][]byte{
		"a.txt":     []byte("hello\n"),
		"big.bin":   randBytes(1, 700<<10),
		"sub/c.txt": []byte("nested file\n"),
		"sub/d.bin": randBytes(2, 300<<10),
	}
	top, err := uio.NewDirectory(dag)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := uio.NewDirectory(dag)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range fl {
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
	var buf bytes.Buffer
	w, err := carstorage.NewWritable(&buf, []cid.Cid{rootNode.Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	err = merkledag.Walk(ctx, merkledag.GetLinksWithDAG(dag), rootNode.Cid(), func(c cid.Cid) bool {
		nd, err := dag.Get(ctx, c)
		if err != nil {
			t.Fatalf("get %s: %v", c, err)
		}
		if err := w.Put(ctx, c.KeyString(), nd.RawData()); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree{root: rootNode.Cid(), car: buf.Bytes(), files: fl}
}

// untar reads the files of a tar archive the store wrote for a directory,
// by path under the top entry.
func untar(t testing.TB, fs *filestore.Store, hash string) map[string][]byte {
	t.Helper()
	var buf bytes.Buffer
	if err := fs.WriteTar(testCtx(t), hash, &buf); err != nil {
		t.Fatalf("tar %s: %v", hash, err)
	}
	return readTar(t, &buf, hash+"/")
}

// leaked lists the goroutines of bitswap or of this package still running,
// waiting up to 10 s for them to end (they end on their own after Close).
func leaked(t testing.TB, match ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		var found []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if containsAny(g, match) {
				found = append(found, g)
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			return strings.Join(found, "\n\n")
		}
		runtime.Gosched()
		time.Sleep(50 * time.Millisecond) // polling for goroutines to exit: there is no event to await
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// readTar reads the regular files of a tar archive, by name without prefix.
func readTar(t testing.TB, r io.Reader, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar %s: %v", h.Name, err)
		}
		out[strings.TrimPrefix(h.Name, prefix)] = b
	}
}
