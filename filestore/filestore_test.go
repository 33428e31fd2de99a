package filestore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	car "github.com/ipld/go-car/v2"

	"github.com/go-aleph/go-aleph/unixfs"
)

// TestGoldenCIDs adds every vector of cids.json under each profile, then again
// with the golden CID as want (which picks the profile from the CID), and reads
// it back.
func TestGoldenCIDs(t *testing.T) {
	vs := loadVectors(t)
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	for _, v := range vs.Vectors {
		data := generate(t, v.Generator.Kind, v.Generator.Text, v.Generator.N, v.Generator.Count)
		if int64(len(data)) != v.Size || sha256Hex(data) != v.SHA256 {
			t.Fatalf("%s: generated input does not match its size and sha256", v.Input)
		}
		for _, p := range unixfs.Profiles() {
			golden := v.CIDs[p.Name]
			if golden == "" {
				t.Fatalf("%s: no cid for %s", v.Input, p.Name)
			}
			t.Run(v.Input+"/"+p.Name, func(t *testing.T) {
				info, err := s.AddUnixFS(ctx, bytes.NewReader(data), 0, "", &p)
				if err != nil {
					t.Fatalf("add: %v", err)
				}
				want := Info{Hash: golden, Engine: EngineIPFS, Kind: KindFile, Size: v.Size}
				if info != want {
					t.Fatalf("add = %+v, want %+v", info, want)
				}
				info, err = s.AddUnixFS(ctx, bytes.NewReader(data), 0, golden, nil)
				if err != nil {
					t.Fatalf("add with want: %v", err)
				}
				if info != want {
					t.Fatalf("add with want = %+v, want %+v", info, want)
				}
				st, err := s.Stat(ctx, golden)
				if err != nil || st != want {
					t.Fatalf("stat = %+v, %v; want %+v", st, err, want)
				}
				if got := readAll(t, s, golden); !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes, sha256 %s; want %d, %s", len(got), sha256Hex(got), len(data), v.SHA256)
				}
				assertRootComplete(t, s, golden)
			})
		}
	}
	if n := entries(t, s, tmpDir); len(n) != 0 {
		t.Errorf("tmp/ holds %v", n)
	}
}

func TestPutStorageRoundTrip(t *testing.T) {
	s := newStore(t, Options{})
	ctx := testCtx(t)
	data := randBytes(7, 3<<20+123)
	info, err := s.PutStorage(ctx, bytes.NewReader(data), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Hash: sha256Hex(data), Engine: EngineStorage, Kind: KindFile, Size: int64(len(data))}
	if info != want {
		t.Fatalf("put = %+v, want %+v", info, want)
	}
	if st, err := s.Stat(ctx, want.Hash); err != nil || st != want {
		t.Fatalf("stat = %+v, %v", st, err)
	}
	if got := readAll(t, s, want.Hash); !bytes.Equal(got, data) {
		t.Fatal("read back different bytes")
	}
	// The file sits at storage/<hh>/<hash>.
	if _, err := os.Stat(filepath.Join(s.dir, storageDir, want.Hash[:2], want.Hash)); err != nil {
		t.Fatalf("storage layout: %v", err)
	}
	// With want, and a second time (dedup).
	info, err = s.PutStorage(ctx, bytes.NewReader(data), int64(len(data)), want.Hash)
	if err != nil || info != want {
		t.Fatalf("put again = %+v, %v", info, err)
	}
	if n := storageFiles(t, s); len(n) != 1 {
		t.Fatalf("storage holds %v, want one file", n)
	}
	if n := entries(t, s, tmpDir); len(n) != 0 {
		t.Fatalf("tmp/ holds %v", n)
	}
	// A storage file archives as one entry named by its hash.
	var buf bytes.Buffer
	if err := s.WriteTar(ctx, want.Hash, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	h, err := tr.Next()
	if err != nil || h.Name != want.Hash || h.Size != want.Size || h.Typeflag != tar.TypeReg {
		t.Fatalf("tar entry %+v, %v", h, err)
	}
	if b, _ := io.ReadAll(tr); !bytes.Equal(b, data) {
		t.Fatal("tar entry content differs")
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("second tar entry: %v", err)
	}
}

// TestSeek reads ranges of a storage file and of ipfs files of each profile,
// as an HTTP Range request does.
func TestSeek(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	data := randBytes(9, 2<<20+4097)
	hashes := map[string]string{}
	info, err := s.PutStorage(ctx, bytes.NewReader(data), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	hashes["storage"] = info.Hash
	for _, p := range unixfs.Profiles() {
		info, err := s.AddUnixFS(ctx, bytes.NewReader(data), 0, "", &p)
		if err != nil {
			t.Fatal(err)
		}
		hashes[p.Name] = info.Hash
	}
	n := int64(len(data))
	ranges := []struct {
		name        string
		off         int64
		whence, len int
		wantPos     int64
	}{
		{"start", 0, io.SeekStart, 100, 0},
		{"inside first chunk", 1000, io.SeekStart, 5000, 1000},
		{"across a 256 KiB boundary", 256<<10 - 10, io.SeekStart, 20, 256<<10 - 10},
		{"across a 1 MiB boundary", 1<<20 - 3, io.SeekStart, 1 << 20, 1<<20 - 3},
		{"last bytes", -7, io.SeekEnd, 7, n - 7},
		{"from end, long", -(1 << 20), io.SeekEnd, 1 << 20, n - 1<<20},
	}
	for name, h := range hashes {
		for _, r := range ranges {
			t.Run(name+"/"+r.name, func(t *testing.T) {
				f, err := s.Open(ctx, h)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Info().Size != n {
					t.Fatalf("info size %d, want %d", f.Info().Size, n)
				}
				// Read a little first, so the seek moves a reader in use.
				if _, err := io.ReadFull(f, make([]byte, 10)); err != nil {
					t.Fatal(err)
				}
				pos, err := f.Seek(r.off, r.whence)
				if err != nil || pos != r.wantPos {
					t.Fatalf("seek = %d, %v; want %d", pos, err, r.wantPos)
				}
				buf := make([]byte, r.len)
				if _, err := io.ReadFull(f, buf); err != nil {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(buf, data[pos:pos+int64(r.len)]) {
					t.Fatal("range differs")
				}
			})
		}
	}
}

func TestLimit(t *testing.T) {
	data := randBytes(3, 600<<10)
	size := int64(len(data))
	tree := buildTree(t, false)
	carData := carBytes([]cid.Cid{tree.root}, tree.blocks)
	carSize := int64(len(carData))
	adds := []struct {
		name  string
		size  int64
		input []byte
		add   func(s *Store, r io.Reader, limit int64) (Info, error)
	}{
		{"storage", size, data, func(s *Store, r io.Reader, limit int64) (Info, error) {
			return s.PutStorage(testCtx(t), r, limit, "")
		}},
		{"unixfs v0", size, data, func(s *Store, r io.Reader, limit int64) (Info, error) {
			return s.AddUnixFS(testCtx(t), r, limit, "", nil)
		}},
		{"unixfs staged v1", size, data, func(s *Store, r io.Reader, limit int64) (Info, error) {
			want, _ := unixfs.SumBytes(data, unixfs.V1_2025)
			return s.AddUnixFS(testCtx(t), r, limit, want.String(), nil)
		}},
		{"car", carSize, carData, func(s *Store, r io.Reader, limit int64) (Info, error) {
			return s.AddCAR(testCtx(t), r, limit, "")
		}},
	}
	for _, a := range adds {
		t.Run(a.name+"/exactly at the limit", func(t *testing.T) {
			s := newStore(t, Options{NoSync: true})
			if _, err := a.add(s, bytes.NewReader(a.input), a.size); err != nil {
				t.Fatalf("add at the limit: %v", err)
			}
		})
		t.Run(a.name+"/one byte over", func(t *testing.T) {
			s := newStore(t, Options{NoSync: true})
			_, err := a.add(s, bytes.NewReader(a.input), a.size-1)
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Limit != a.size-1 || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want a TooLargeError with limit %d", err, a.size-1)
			}
			assertClean(t, s)
		})
	}
}

func TestMismatch(t *testing.T) {
	data := randBytes(4, 700<<10)
	other := randBytes(5, 10)
	otherV0, _ := unixfs.SumBytes(other, unixfs.KuboV0)
	otherV1, _ := unixfs.SumBytes(other, unixfs.KuboV1)
	v1Multi, _ := unixfs.SumBytes(randBytes(6, 700<<10), unixfs.V1_2025)
	cases := []struct {
		name string
		want string
		add  func(s *Store, want string) (Info, error)
	}{
		{"storage", sha256Hex(other), func(s *Store, want string) (Info, error) {
			return s.PutStorage(testCtx(t), bytes.NewReader(data), 0, want)
		}},
		{"unixfs v0", otherV0.String(), func(s *Store, want string) (Info, error) {
			return s.AddUnixFS(testCtx(t), bytes.NewReader(data), 0, want, nil)
		}},
		{"unixfs v1 raw leaf", otherV1.String(), func(s *Store, want string) (Info, error) {
			return s.AddUnixFS(testCtx(t), bytes.NewReader(data), 0, want, nil)
		}},
		{"unixfs v1 2025", v1Multi.String(), func(s *Store, want string) (Info, error) {
			return s.AddUnixFS(testCtx(t), bytes.NewReader(data), 0, want, nil)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t, Options{NoSync: true})
			_, err := c.add(s, c.want)
			var me *MismatchError
			if !errors.As(err, &me) || me.Want != c.want || me.Got == "" || me.Got == c.want || !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("err = %v, want a MismatchError for %s", err, c.want)
			}
			assertClean(t, s)
			if _, err := s.Stat(testCtx(t), c.want); !errors.Is(err, ErrNotFound) {
				t.Fatalf("stat after mismatch: %v, want ErrNotFound", err)
			}
			// The blocks of the failed import are garbage: a sweep removes them.
			if _, err := s.Sweep(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if n := blockCount(t, s); n != 0 {
				t.Fatalf("%d blocks left after sweep", n)
			}
		})
	}
}

// TestInterrupted feeds each add a reader that fails mid-way or a context that
// is cancelled mid-way: the error says so and nothing is kept.
func TestInterrupted(t *testing.T) {
	data := randBytes(8, 3<<20)
	v1, _ := unixfs.SumBytes(data, unixfs.KuboV1)
	tree := buildTree(t, false)
	carData := carBytes([]cid.Cid{tree.root}, tree.blocks)
	cause := errors.New("connection reset by peer")
	adds := []struct {
		name  string
		input []byte
		add   func(ctx context.Context, s *Store, r io.Reader) (Info, error)
	}{
		{"storage", data, func(ctx context.Context, s *Store, r io.Reader) (Info, error) {
			return s.PutStorage(ctx, r, 0, "")
		}},
		{"unixfs streamed", data, func(ctx context.Context, s *Store, r io.Reader) (Info, error) {
			return s.AddUnixFS(ctx, r, 0, "", nil)
		}},
		{"unixfs staged", data, func(ctx context.Context, s *Store, r io.Reader) (Info, error) {
			return s.AddUnixFS(ctx, r, 0, v1.String(), nil)
		}},
		{"car", carData, func(ctx context.Context, s *Store, r io.Reader) (Info, error) {
			return s.AddCAR(ctx, r, 0, "")
		}},
	}
	for _, a := range adds {
		half := int64(len(a.input) / 2)
		t.Run(a.name+"/reader error", func(t *testing.T) {
			s := newStore(t, Options{})
			_, err := a.add(testCtx(t), s, &failingReader{r: bytes.NewReader(a.input), n: half, err: cause})
			if !errors.Is(err, ErrTruncated) || !errors.Is(err, cause) {
				t.Fatalf("err = %v, want ErrTruncated wrapping the cause", err)
			}
			assertClean(t, s)
		})
		t.Run(a.name+"/unexpected EOF", func(t *testing.T) {
			s := newStore(t, Options{})
			_, err := a.add(testCtx(t), s, &failingReader{r: bytes.NewReader(a.input), n: half, err: io.ErrUnexpectedEOF})
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("err = %v, want ErrTruncated", err)
			}
			assertClean(t, s)
		})
		t.Run(a.name+"/context cancelled", func(t *testing.T) {
			s := newStore(t, Options{})
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			_, err := a.add(ctx, s, &cancelReader{r: bytes.NewReader(a.input), n: half, cancel: cancel})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			assertClean(t, s)
		})
	}
}

func TestInvalidHash(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	bad := []string{
		"",
		"hello",
		strings.Repeat("A", 64), // uppercase hex
		strings.Repeat("a", 63), // short
		strings.Repeat("0", 65), // long
		"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5",   // truncated CIDv0
		" QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", // whitespace
		"../../etc/passwd",
		"bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje", // dag-cbor
		strings.Repeat("z", 10000),
	}
	for _, h := range bad {
		if _, err := s.Stat(ctx, h); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("Stat(%.20q) = %v, want ErrInvalidHash", h, err)
		}
		if _, err := s.Open(ctx, h); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("Open(%.20q) = %v, want ErrInvalidHash", h, err)
		}
		if err := s.Delete(ctx, h); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("Delete(%.20q) = %v, want ErrInvalidHash", h, err)
		}
		if err := s.WriteTar(ctx, h, io.Discard); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("WriteTar(%.20q) = %v, want ErrInvalidHash", h, err)
		}
		if h == "" {
			continue // empty want means "no expectation"
		}
		if _, err := s.PutStorage(ctx, strings.NewReader("x"), 0, h); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("PutStorage(want %.20q) = %v, want ErrInvalidHash", h, err)
		}
		if _, err := s.AddUnixFS(ctx, strings.NewReader("x"), 0, h, nil); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("AddUnixFS(want %.20q) = %v, want ErrInvalidHash", h, err)
		}
		if _, err := s.AddCAR(ctx, strings.NewReader("x"), 0, h); !errors.Is(err, ErrInvalidHash) {
			t.Errorf("AddCAR(want %.20q) = %v, want ErrInvalidHash", h, err)
		}
	}
	// A CID for a storage want, a sha256 for an ipfs want.
	if _, err := s.PutStorage(ctx, strings.NewReader("x"), 0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"); !errors.Is(err, ErrInvalidHash) {
		t.Errorf("PutStorage with a CID: %v", err)
	}
	if _, err := s.AddUnixFS(ctx, strings.NewReader("x"), 0, sha256Hex([]byte("x")), nil); !errors.Is(err, ErrInvalidHash) {
		t.Errorf("AddUnixFS with a sha256: %v", err)
	}
	assertClean(t, s)
}

func TestNotFoundAndKeysAsGiven(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	absent := []string{sha256Hex([]byte("absent")), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"}
	for _, h := range absent {
		if _, err := s.Stat(ctx, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat(%s) = %v, want ErrNotFound", h, err)
		}
		if _, err := s.Open(ctx, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%s) = %v, want ErrNotFound", h, err)
		}
		if err := s.WriteTar(ctx, h, io.Discard); !errors.Is(err, ErrNotFound) {
			t.Errorf("WriteTar(%s) = %v, want ErrNotFound", h, err)
		}
		if err := s.Delete(ctx, h); err != nil {
			t.Errorf("Delete(%s) = %v, want nil", h, err)
		}
	}
	// A CIDv0 and its CIDv1 form are different keys.
	info, err := s.AddUnixFS(ctx, strings.NewReader("hello world\n"), 0, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cid.Decode(info.Hash)
	v1 := cid.NewCidV1(c.Type(), c.Hash()).String()
	if _, err := s.Stat(ctx, v1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat(v1 form %s) = %v, want ErrNotFound", v1, err)
	}
	// A base64 CID that contains "/" is still a plain file name under roots/.
	var b64 string
	var content []byte
	for i := 0; b64 == ""; i++ {
		content = []byte(strconv.Itoa(i))
		c, _ := unixfs.SumBytes(content, unixfs.KuboV1)
		if m, _ := c.StringOfBase('m'); strings.Contains(m, "/") {
			b64 = m
		}
	}
	if _, err := s.AddUnixFS(ctx, bytes.NewReader(content), 0, b64, nil); err != nil {
		t.Fatalf("add under base64 %s: %v", b64, err)
	}
	if st, err := s.Stat(ctx, b64); err != nil || st.Hash != b64 || st.Size != int64(len(content)) {
		t.Fatalf("stat base64 = %+v, %v", st, err)
	}
	if !bytes.Equal(readAll(t, s, b64), content) {
		t.Fatal("read back differs")
	}
	if n := entries(t, s, rootsDir); len(n) != 2 || !strings.HasPrefix(n[0], "_") && !strings.HasPrefix(n[1], "_") {
		t.Fatalf("roots/ holds %v, want the hex-escaped name of %s", n, b64)
	}
}

func TestCARDirectory(t *testing.T) {
	for _, hamt := range []bool{false, true} {
		name := "basic"
		if hamt {
			name = "hamt"
		}
		t.Run(name, func(t *testing.T) {
			s := newStore(t, Options{})
			ctx := testCtx(t)
			tree := buildTree(t, hamt)
			info, err := s.AddCAR(ctx, bytes.NewReader(carBytes([]cid.Cid{tree.root}, tree.blocks)), 0, tree.root.String())
			if err != nil {
				t.Fatal(err)
			}
			// same.bin has the bytes (and CID) of big.bin: counted once.
			var size int64
			for n, b := range tree.files {
				if n != "same.bin" {
					size += int64(len(b))
				}
			}
			want := Info{Hash: tree.root.String(), Engine: EngineIPFS, Kind: KindDir, Size: size}
			if info != want {
				t.Fatalf("add car = %+v, want %+v", info, want)
			}
			if st, err := s.Stat(ctx, info.Hash); err != nil || st != want {
				t.Fatalf("stat = %+v, %v", st, err)
			}
			if _, err := s.Open(ctx, info.Hash); !errors.Is(err, ErrIsDir) {
				t.Fatalf("open dir: %v, want ErrIsDir", err)
			}
			assertRootComplete(t, s, info.Hash)

			var buf bytes.Buffer
			if err := s.WriteTar(ctx, info.Hash, &buf); err != nil {
				t.Fatal(err)
			}
			first := bytes.Clone(buf.Bytes())
			got := map[string][]byte{}
			var dirs []string
			tr := tar.NewReader(&buf)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch h.Typeflag {
				case tar.TypeDir:
					dirs = append(dirs, h.Name)
				case tar.TypeReg:
					b, err := io.ReadAll(tr)
					if err != nil {
						t.Fatal(err)
					}
					got[strings.TrimPrefix(h.Name, info.Hash+"/")] = b
				default:
					t.Fatalf("entry %s of type %c", h.Name, h.Typeflag)
				}
			}
			if len(dirs) != 2 || dirs[0] != info.Hash || dirs[1] != info.Hash+"/sub" {
				t.Fatalf("tar dirs %v", dirs)
			}
			if len(got) != len(tree.files) {
				t.Fatalf("tar has %d files, want %d", len(got), len(tree.files))
			}
			for n, b := range tree.files {
				if !bytes.Equal(got[n], b) {
					t.Fatalf("tar entry %s differs", n)
				}
			}
			if !hamt {
				// A basic directory lists entries in name order.
				var again bytes.Buffer
				if err := s.WriteTar(ctx, info.Hash, &again); err != nil || !bytes.Equal(again.Bytes(), first) {
					t.Fatalf("a second archive differs (%v)", err)
				}
			}
		})
	}
}

func TestCARFile(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	ctx := testCtx(t)
	data := randBytes(11, 1<<20+5)
	dag := memDAG()
	nd, err := unixfs.Import(ctx, bytes.NewReader(data), unixfs.KuboV0, dag)
	if err != nil {
		t.Fatal(err)
	}
	blks := dagBlocks(t, dag, nd.Cid())
	// Reversed order (children first) and a duplicate block are fine.
	rev := append([]blocks.Block{blks[1]}, blks...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	info, err := s.AddCAR(ctx, bytes.NewReader(carBytes([]cid.Cid{nd.Cid()}, rev)), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Hash: nd.Cid().String(), Engine: EngineIPFS, Kind: KindFile, Size: int64(len(data))}
	if info != want {
		t.Fatalf("add car = %+v, want %+v", info, want)
	}
	if !bytes.Equal(readAll(t, s, info.Hash), data) {
		t.Fatal("read back differs")
	}
	var buf bytes.Buffer
	if err := s.WriteTar(ctx, info.Hash, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	h, err := tr.Next()
	if err != nil || h.Name != info.Hash || h.Size != int64(len(data)) {
		t.Fatalf("tar entry %+v, %v", h, err)
	}
}

func TestCARv2(t *testing.T) {
	s := newStore(t, Options{NoSync: true})
	tree := buildTree(t, false)
	var v2 bytes.Buffer
	if err := car.WrapV1(bytes.NewReader(carBytes([]cid.Cid{tree.root}, tree.blocks)), &v2); err != nil {
		t.Fatal(err)
	}
	info, err := s.AddCAR(testCtx(t), &v2, 0, tree.root.String())
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != KindDir || info.Hash != tree.root.String() {
		t.Fatalf("add car v2 = %+v", info)
	}
	assertRootComplete(t, s, info.Hash)
}

// badDAGs are CARs whose blocks all match their CIDs but whose DAG is not a
// servable UnixFS tree.
func badDAGs(t testing.TB) map[string][]byte {
	t.Helper()
	ctx := testCtx(t)
	dag := memDAG()
	out := map[string][]byte{}
	leaf := merkledag.NewRawNode([]byte("content"))

	// A directory entry named "..", and one containing a slash.
	for name, entry := range map[string]string{"dotdot entry": "..", "slash entry": "a/b", "empty entry": ""} {
		dir := ft.EmptyDirNode()
		if err := dir.AddRawLink(entry, &ipld.Link{Cid: leaf.Cid(), Size: 7}); err != nil {
			t.Fatal(err)
		}
		out[name] = carBytes([]cid.Cid{dir.Cid()}, []blocks.Block{dir, leaf})
	}

	// A file root whose block sizes do not match its children.
	nd, err := unixfs.Import(ctx, bytes.NewReader(randBytes(60, 600<<10)), unixfs.KuboV0, dag)
	if err != nil {
		t.Fatal(err)
	}
	pn := nd.(*merkledag.ProtoNode)
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		t.Fatal(err)
	}
	fsn.RemoveBlockSize(0)
	fsn.AddBlockSize(100) // the sizes no longer describe the children
	data, _ := fsn.GetBytes()
	bad := pn.Copy().(*merkledag.ProtoNode)
	bad.SetData(data)
	kids := dagBlocks(t, dag, nd.Cid())[1:]
	out["wrong block sizes"] = carBytes([]cid.Cid{bad.Cid()}, append([]blocks.Block{bad}, kids...))

	// A dag-pb node that is not UnixFS, as root and as a file's child.
	plain := merkledag.NodeWithData([]byte("not unixfs"))
	out["non-unixfs root"] = carBytes([]cid.Cid{plain.Cid()}, []blocks.Block{plain})

	// A directory as a part of a file.
	sub := ft.EmptyDirNode()
	file := merkledag.NodeWithData(ft.FilePBData(nil, 0))
	fileFS, _ := ft.FSNodeFromBytes(file.Data())
	fileFS.AddBlockSize(0)
	fd, _ := fileFS.GetBytes()
	file.SetData(fd)
	if err := file.AddNodeLink("", sub); err != nil {
		t.Fatal(err)
	}
	out["directory inside a file"] = carBytes([]cid.Cid{file.Cid()}, []blocks.Block{file, sub})

	// A symlink as root.
	ln, _ := ft.SymlinkData("target")
	sym := merkledag.NodeWithData(ln)
	out["symlink root"] = carBytes([]cid.Cid{sym.Cid()}, []blocks.Block{sym})
	return out
}

func TestCARInvalid(t *testing.T) {
	tree := buildTree(t, false)
	other := buildTree(t, true)
	corrupt := func() []blocks.Block {
		bs := append([]blocks.Block(nil), tree.blocks...)
		i := len(bs) - 1
		d := append([]byte(nil), bs[i].RawData()...)
		d[len(d)/2] ^= 1
		b, _ := blocks.NewBlockWithCid(d, bs[i].Cid())
		bs[i] = b
		return bs
	}
	cases := []struct {
		name string
		car  []byte
		want string
	}{
		{"wrong root", carBytes([]cid.Cid{tree.root}, tree.blocks), other.root.String()},
		{"no root", carBytes(nil, tree.blocks), ""},
		{"two roots", carBytes([]cid.Cid{tree.root, other.root}, append(tree.blocks, other.blocks...)), ""},
		{"corrupted block", carBytes([]cid.Cid{tree.root}, corrupt()), ""},
		{"missing block", carBytes([]cid.Cid{tree.root}, tree.blocks[:len(tree.blocks)-1]), ""},
		{"missing root", carBytes([]cid.Cid{tree.root}, tree.blocks[1:]), ""},
		{"empty", nil, ""},
		{"garbage", []byte("not a car at all, just some text"), ""},
		{"truncated", carBytes([]cid.Cid{tree.root}, tree.blocks)[:500], ""},
	}
	for name, b := range badDAGs(t) {
		cases = append(cases, struct {
			name string
			car  []byte
			want string
		}{name, b, ""})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t, Options{NoSync: true})
			_, err := s.AddCAR(testCtx(t), bytes.NewReader(c.car), 0, c.want)
			if !errors.Is(err, ErrInvalidCAR) {
				t.Fatalf("err = %v, want ErrInvalidCAR", err)
			}
			t.Log(err)
			assertClean(t, s)
		})
	}
}
