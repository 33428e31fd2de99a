package api

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadAhead(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (3*readAheadSize+12345)/16)
	boom := errors.New("boom")
	tests := []struct {
		name    string
		src     io.Reader
		want    []byte
		wantErr error
	}{
		{"whole", bytes.NewReader(data), data, nil},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data[:5000])), data[:5000], nil},
		{"empty", bytes.NewReader(nil), nil, nil},
		{"error mid-way", io.MultiReader(bytes.NewReader(data[:readAheadSize+7]), iotest.ErrReader(boom)), data[:readAheadSize+7], boom},
		{"truncated multipart", io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(io.ErrUnexpectedEOF)), data[:100], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra := newReadAhead(tt.src)
			got, err := io.ReadAll(ra)
			ra.Close()
			ra.Close() // idempotent
			if !errors.Is(err, tt.wantErr) && !(tt.wantErr == nil && err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
	t.Run("close before the end stops reading", func(t *testing.T) {
		ra := newReadAhead(bytes.NewReader(data))
		buf := make([]byte, 10)
		if _, err := io.ReadFull(ra, buf); err != nil {
			t.Fatal(err)
		}
		ra.Close()
		select {
		case <-ra.done:
		default:
			t.Fatal("the read-ahead goroutine is still running after Close")
		}
	})
}
