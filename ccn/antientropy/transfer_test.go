package antientropy

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/store"
)

func TestWantRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		hashes []string
		max    int
		err    bool
	}{
		{"empty", nil, 10, false},
		{"some", []string{"a", "b", strings.Repeat("c", maxHashLen)}, 10, false},
		{"too many", []string{"a", "b", "c"}, 2, true},
		{"hash too long", []string{strings.Repeat("c", maxHashLen+1)}, 10, true},
		{"empty hash", []string{""}, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeWant(&buf, tt.hashes); err != nil {
				t.Fatal(err)
			}
			got, err := readWant(bufio.NewReader(&buf), tt.max)
			if tt.err {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("err = %v, want ErrProtocol", err)
				}
				return
			}
			if err != nil || len(got) != len(tt.hashes) {
				t.Fatalf("readWant = %v, %v", got, err)
			}
		})
	}
}

func TestReadFrameLimit(t *testing.T) {
	var buf bytes.Buffer
	writeFrame(&buf, bytes.Repeat([]byte("x"), 100))
	if _, err := readFrame(bufio.NewReader(&buf), 99); !errors.Is(err, ErrProtocol) {
		t.Fatalf("oversized frame: err %v", err)
	}
	buf.Reset()
	buf.Write([]byte{0x80}) // a truncated varint
	if _, err := readFrame(bufio.NewReader(&buf), 99); err == nil {
		t.Fatal("truncated frame accepted")
	}
}

func FuzzReadWant(f *testing.F) {
	var buf bytes.Buffer
	writeWant(&buf, []string{"abc", "def"})
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Add([]byte{5, '[', '"', 'a', '"', ']'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		hashes, err := readWant(bufio.NewReader(bytes.NewReader(data)), 1000)
		if err == nil && len(hashes) > 1000 {
			t.Fatalf("%d hashes past the limit", len(hashes))
		}
	})
}

func TestTombstonesBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := NewTombstones(2, time.Minute, func() time.Time { return now })
	for _, h := range []string{"a", "b", "c"} {
		ts.add(&store.Forgotten{ItemHash: h})
	}
	if _, ok := ts.Tombstone("c"); ok {
		t.Fatal("a full store took a third tombstone")
	}
	if _, ok := ts.Tombstone("a"); !ok {
		t.Fatal("tombstone a is missing")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := ts.Tombstone("a"); ok {
		t.Fatal("an expired tombstone was served")
	}
	ts.add(&store.Forgotten{ItemHash: "c"}) // expired ones make room
	if _, ok := ts.Tombstone("c"); !ok {
		t.Fatal("no room made by expired tombstones")
	}
}
