package executor

import (
	"bytes"
	"io"
	"sync"
)

// Ring keeps the last size bytes written to it: the console tail that
// Instance.Logs returns.
type Ring struct {
	mu   sync.Mutex
	buf  []byte
	size int
}

// NewRing keeps up to size bytes.
func NewRing(size int) *Ring { return &Ring{size: size} }

func (r *Ring) Write(p []byte) (int, error) {
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
func (r *Ring) Reader() io.Reader {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.NewReader(bytes.Clone(r.buf))
}

// Lenient forwards writes to W and never fails, so a broken console does
// not stop the ring (or the copy from the guest's pipe).
type Lenient struct{ W io.Writer }

func (l Lenient) Write(p []byte) (int, error) {
	_, _ = l.W.Write(p)
	return len(p), nil
}
