package kernel

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzExtractVmlinux feeds arbitrary images to the bzImage parser and
// decompressors: errors are fine, panics and runaway output are not. Seeds
// are in testdata/fuzz/FuzzExtractVmlinux.
func FuzzExtractVmlinux(f *testing.F) {
	f.Fuzz(func(t *testing.T, img []byte) {
		cw := &countWriter{w: io.Discard}
		err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), cw)
		if cw.n > MaxVmlinuxSize {
			t.Fatalf("wrote %d bytes, over the limit", cw.n)
		}
		if err == nil {
			// Whatever was accepted must pass the standalone check too.
			var out bytes.Buffer
			if err := ExtractVmlinux(bytes.NewReader(img), int64(len(img)), &out); err != nil {
				t.Fatalf("second extraction failed: %v", err)
			}
			if _, err := PVHEntry(bytes.NewReader(out.Bytes()), int64(out.Len())); err != nil {
				t.Fatalf("extracted kernel fails PVHEntry: %v", err)
			}
		}
	})
}

// FuzzParseModinfo checks the .modinfo parser never panics and only
// returns names that are safe as file names. Seeds are in
// testdata/fuzz/FuzzParseModinfo.
func FuzzParseModinfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		mi, err := ParseModinfo(b)
		if err != nil {
			if !errors.Is(err, ErrBadModinfo) {
				t.Fatalf("error %v is not ErrBadModinfo", err)
			}
			return
		}
		if mi.Name != "" && !ValidModuleName(mi.Name) {
			t.Fatalf("accepted name %q", mi.Name)
		}
		for _, d := range mi.Depends {
			if !ValidModuleName(d) {
				t.Fatalf("accepted dependency %q", d)
			}
		}
	})
}
