package unixfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	cid "github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
)

func TestParseCID(t *testing.T) {
	sha3, err := mh.Sum([]byte("x"), mh.SHA3_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	sha2, err := mh.Sum([]byte("x"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	v1 := cid.NewCidV1(cid.DagProtobuf, sha2)
	b36, err := v1.StringOfBase(multibase.Base36)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   string
		want string // "" = valid
	}{
		{"v0", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", ""},
		{"v1 dag-pb", "bafybeifofps7oqlveyur54t4opj4y6jhjlyc5du6zqjlf6lhakt2w2c25u", ""},
		{"v1 raw", "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4", ""},
		{"v1 base36", b36, ""},
		{"empty", "", "empty"},
		{"too long", strings.Repeat("b", 200), "longer than"},
		{"whitespace", " QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "whitespace"},
		{"newline", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o\n", "whitespace"},
		{"garbage", "not a cid", "invalid cid"},
		{"bad base58", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff50", "invalid cid"},
		{"truncated v0", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff", "invalid cid"},
		{"truncated v1", "bafybeifofps7oqlveyur54t4opj4y6jhjlyc5du6zqjlf6lhakt2w2c2", "invalid cid"},
		{"sha256 hex", "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447", "invalid cid"},
		{"dag-cbor", cid.NewCidV1(cid.DagCBOR, sha2).String(), "codec"},
		{"sha3", cid.NewCidV1(cid.Raw, sha3).String(), "not sha2-256"},
		{"identity", func() string {
			m, _ := mh.Sum([]byte("x"), mh.IDENTITY, -1)
			return cid.NewCidV1(cid.Raw, m).String()
		}(), "not sha2-256"},
		{"truncated sha2", func() string {
			m, _ := mh.Sum([]byte("x"), mh.SHA2_256, 20)
			return cid.NewCidV1(cid.Raw, m).String()
		}(), "not sha2-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCID(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseCID(%q): %v", tt.in, err)
				}
				if c.String() != tt.in && tt.name != "v1 base36" {
					t.Fatalf("round trip %q -> %s", tt.in, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseCID(%q) = %s, want error", tt.in, c)
			}
			if !errors.Is(err, ErrInvalidCID) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseCID(%q) error %q, want ErrInvalidCID mentioning %q", tt.in, err, tt.want)
			}
			if err := Verify(strings.NewReader("x"), tt.in); !errors.Is(err, ErrInvalidCID) {
				t.Fatalf("Verify with %q: %v", tt.in, err)
			}
		})
	}
}

// TestVerifyVectors: every vector verifies against each of its CIDs, whatever the
// profile that made it, and fails against a one-byte change.
func TestVerifyVectors(t *testing.T) {
	f := loadCIDs(t)
	for _, v := range f.Vectors {
		data := v.readAllChecked(t)
		for _, p := range Profiles() {
			want := v.CIDs[p.Name]
			t.Run(v.Input+"/"+p.Name, func(t *testing.T) {
				if err := Verify(bytes.NewReader(data), want); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if err := Verify(iotest.HalfReader(bytes.NewReader(data)), want); err != nil {
					t.Fatalf("Verify(half reader): %v", err)
				}
				changed := append([]byte{}, data...)
				if len(changed) == 0 {
					changed = []byte{0}
				} else {
					changed[len(changed)/2] ^= 1
				}
				err := Verify(bytes.NewReader(changed), want)
				if !errors.Is(err, ErrMismatch) {
					t.Fatalf("Verify(changed) = %v, want ErrMismatch", err)
				}
				if !strings.Contains(err.Error(), want) {
					t.Errorf("mismatch error %q does not name the wanted cid", err)
				}
			})
		}
	}
}

func TestVerifyMismatchNamesProfiles(t *testing.T) {
	tests := []struct {
		name     string
		want     string
		profiles []Profile
	}{
		{"v0", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", []Profile{KuboV0}},
		{"v1", "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4", []Profile{KuboV1, V1_2025}},
	}
	data := pattern(t, 1<<20+7)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(bytes.NewReader(data), tt.want)
			if !errors.Is(err, ErrMismatch) {
				t.Fatalf("err = %v", err)
			}
			for _, p := range tt.profiles {
				got, _ := SumBytes(data, p)
				if !strings.Contains(err.Error(), p.Name+" gives "+got.String()) {
					t.Errorf("error %q does not name %s = %s", err, p.Name, got)
				}
			}
		})
	}
}

// TestVerifyOtherShapes: a CIDv1 that only a CIDv0-style (dag-pb leaves) import
// gives is not accepted: CIDv1 means raw leaves, as with kubo --cid-version=1.
func TestVerifyOtherShapes(t *testing.T) {
	data := []byte("hello world\n")
	v0, err := SumBytes(data, KuboV0)
	if err != nil {
		t.Fatal(err)
	}
	asV1 := cid.NewCidV1(cid.DagProtobuf, v0.Hash()).String()
	if err := Verify(bytes.NewReader(data), asV1); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify(dag-pb-leaf cidv1) = %v, want ErrMismatch", err)
	}
	// The v1 spelling in another multibase is the same CID.
	v1, _ := SumBytes(data, KuboV1)
	b36, _ := v1.StringOfBase(multibase.Base36)
	if err := Verify(bytes.NewReader(data), b36); err != nil {
		t.Fatalf("Verify(base36): %v", err)
	}
}

func TestVerifyReadErrors(t *testing.T) {
	errBoom := errors.New("boom")
	for _, want := range []string{
		"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
		"bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
	} {
		for _, after := range []int64{0, 10, 1 << 20, 5<<20 + 3} {
			r := &errAfterReader{r: newPattern(1 << 30), n: after, err: errBoom}
			err := Verify(r, want)
			if !errors.Is(err, errBoom) || errors.Is(err, ErrMismatch) {
				t.Fatalf("%s after %d: err = %v, want the read error", want, after, err)
			}
			if !strings.Contains(err.Error(), "read input") {
				t.Errorf("error %q lacks context", err)
			}
		}
		if err := Verify(stallReader{}, want); !errors.Is(err, io.ErrNoProgress) {
			t.Errorf("stalled reader: %v", err)
		}
		if err := Verify(nil, want); err == nil {
			t.Error("nil reader accepted")
		}
	}
}

func TestVerifyContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := VerifyContext(ctx, newPattern(8<<20), "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	//lint:ignore SA1012 a nil context must not panic
	if err := VerifyContext(nil, strings.NewReader("hello world\n"), "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"); err != nil {
		t.Fatalf("nil context: %v", err)
	}
	//lint:ignore SA1012 a nil context must not panic
	if _, err := Import(nil, strings.NewReader("x"), KuboV0, newMemDAG()); err != nil {
		t.Fatalf("Import with nil context: %v", err)
	}
}

// TestSumManyAgrees: the single-pass fan-out gives the same CIDs as separate Sums,
// including for inputs smaller than its buffers and for slow readers.
func TestSumManyAgrees(t *testing.T) {
	for _, n := range []int64{0, 1, 128<<10 - 1, 128 << 10, 3<<20 + 1} {
		data := pattern(t, n)
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data[:min(len(data), 4096)]))} {
			in := data
			if _, ok := r.(*bytes.Reader); !ok {
				in = data[:min(len(data), 4096)]
			}
			got, err := sumMany(context.Background(), r, Profiles())
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range Profiles() {
				want, _ := SumBytes(in, p)
				if !got[i].Equals(want) {
					t.Fatalf("n=%d %s: sumMany %s, Sum %s", len(in), p.Name, got[i], want)
				}
			}
		}
	}
}
