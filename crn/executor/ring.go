package sandbox

import (
	"bytes"
	"io"
	"sync"
)

// ring keeps the last size bytes written to it: the console tail.
type ring struct {
	mu   sync.Mutex
	buf  []byte
	size int
}

func newRing(size int) *ring { return &ring{size: size} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	if len(p) >= r.size {
		r.buf = append(r.buf[:0], p[len(p)-r.size:]...)
		return n, nil
	}
	if over := len(r.buf) + len(p) - r.size; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, p...)
	return n, nil
}

// Reader returns a snapshot of the kept bytes.
func (r *ring) Reader() io.Reader {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.NewReader(bytes.Clone(r.buf))
}

// lenient forwards writes to w and never fails, so a broken console does not
// stop the ring (or the copy from the container's pipe).
type lenient struct{ w io.Writer }

func (l lenient) Write(p []byte) (int, error) {
	_, _ = l.w.Write(p)
	return len(p), nil
}
