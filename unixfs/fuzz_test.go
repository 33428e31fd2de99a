package unixfs

import (
	"bytes"
	"context"
	"testing"
	"testing/iotest"
)

// FuzzSum: for any bytes, every profile succeeds, Sum is deterministic, SumBytes
// agrees with Sum over a 1-byte-at-a-time reader, and Verify accepts the result. A
// tiny custom profile derived from the input (1–64 byte chunks, 2–6 links) drives
// multi-level trees (first 2 KiB) through Sum, Import and the reference encoder.
func FuzzSum(f *testing.F) {
	for _, v := range loadCIDs(f).Vectors {
		if v.Size <= 4096 {
			f.Add(v.readAllChecked(f))
		}
	}
	f.Add(pattern(f, 1000))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range Profiles() {
			a, err := Sum(bytes.NewReader(data), p)
			if err != nil {
				t.Fatalf("%s: Sum: %v", p.Name, err)
			}
			b, err := Sum(bytes.NewReader(data), p)
			if err != nil || !a.Equals(b) {
				t.Fatalf("%s: Sum not deterministic: %s then %s (%v)", p.Name, a, b, err)
			}
			c, err := SumBytes(data, p)
			if err != nil || !c.Equals(a) {
				t.Fatalf("%s: SumBytes %s (%v), Sum %s", p.Name, c, err, a)
			}
			d, err := Sum(iotest.OneByteReader(bytes.NewReader(data)), p)
			if err != nil || !d.Equals(a) {
				t.Fatalf("%s: Sum(1-byte reader) %s (%v), Sum %s", p.Name, d, err, a)
			}
			if err := Verify(bytes.NewReader(data), a.String()); err != nil {
				t.Fatalf("%s: Verify own cid %s: %v", p.Name, a, err)
			}
		}
		if len(data) < 2 {
			return
		}
		p := Profiles()[int(data[0])%3]
		p.Name, p.ChunkSize, p.MaxLinks = "fuzz", int64(1+data[0]%64), 2+int(data[1]%5)
		// Thousands of one-byte leaves only slow the fuzzer down; depth is what matters.
		data = data[:min(len(data), 2048)]
		s, err := SumBytes(data, p)
		if err != nil {
			t.Fatalf("tiny profile %+v: %v", p, err)
		}
		if r := refSum(t, bytes.NewReader(data), p); !r.Equals(s) {
			t.Fatalf("tiny profile %+v: Sum %s, refSum %s", p, s, r)
		}
		nd, err := Import(context.Background(), bytes.NewReader(data), p, newMemDAG())
		if err != nil || !nd.Cid().Equals(s) {
			t.Fatalf("tiny profile %+v: Import %v (%v), Sum %s", p, nd, err, s)
		}
	})
}
