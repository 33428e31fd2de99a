package executor

import (
	"io"
	"testing"
)

func TestRing(t *testing.T) {
	r := NewRing(8)
	for _, s := range []string{"abc", "defgh", "ij"} {
		_, _ = r.Write([]byte(s))
	}
	if b, _ := io.ReadAll(r.Reader()); string(b) != "cdefghij" {
		t.Errorf("ring = %q", b)
	}
	_, _ = r.Write([]byte("0123456789"))
	if b, _ := io.ReadAll(r.Reader()); string(b) != "23456789" {
		t.Errorf("ring = %q", b)
	}
}
