package api

import (
	"io"
	"sync"
)

// readAhead reads its source in a goroutine into a few large buffers, so that
// receiving an upload from the network overlaps with hashing and storing it
// (a plain reader leaves the socket unread while the importer works, and the
// client stalls on a full TCP window).
//
// Close must be called before the source is used again: it stops the
// goroutine and waits for its current Read to return.
type readAhead struct {
	filled chan chunk
	free   chan []byte
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	cur  []byte
	back []byte // the buffer cur points into, returned to free once consumed
	err  error
}

type chunk struct {
	buf []byte
	n   int
	err error
}

const (
	readAheadBuffers = 4
	readAheadSize    = 1 << 20
)

func newReadAhead(r io.Reader) *readAhead {
	ra := &readAhead{
		filled: make(chan chunk, readAheadBuffers),
		free:   make(chan []byte, readAheadBuffers),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for range readAheadBuffers {
		ra.free <- make([]byte, readAheadSize)
	}
	go ra.fill(r)
	return ra
}

func (ra *readAhead) fill(r io.Reader) {
	defer close(ra.done)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		// Fill the buffer, keeping the source's own error (io.ReadFull would
		// turn a clean end into ErrUnexpectedEOF, and a truncated multipart
		// body already reports ErrUnexpectedEOF).
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		select {
		case ra.filled <- chunk{buf, n, err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.back != nil {
			ra.free <- ra.back
			ra.back = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		c, ok := <-ra.filled
		if !ok {
			return 0, io.ErrClosedPipe
		}
		ra.cur, ra.back, ra.err = c.buf[:c.n], c.buf, c.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the read-ahead and waits until it no longer reads the source.
func (ra *readAhead) Close() {
	ra.once.Do(func() { close(ra.stop) })
	<-ra.done
}
